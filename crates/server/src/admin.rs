//! Admin routes behind a bearer token: trigger an import of files on the server (answers 202
//! with a job link; the import runs in a background task), and list jobs.
//!
//! The token comes from the environment or a file (never from the query string), is compared in
//! constant time, and is never logged or served. Without a configured token the admin routes
//! answer 403 `admin_disabled`.
//!
//! Concurrency contract: jobs live in one mutex-guarded list, locked only to copy or update a
//! job; the import itself runs on a blocking thread and holds no lock.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use sadomap_core::{Kind, Region};
use sadomap_store::{import_files, Format, ImportFile};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;

/// Jobs kept in the list; older finished ones are dropped.
const MAX_JOBS: usize = 1000;

/// The admin bearer token. Its `Debug` form hides the value.
#[derive(Clone)]
pub struct AdminToken(Vec<u8>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// A token from its text (surrounding whitespace trimmed); `None` when empty.
    pub fn new(token: &str) -> Option<AdminToken> {
        let t = token.trim();
        (!t.is_empty()).then(|| AdminToken(t.as_bytes().to_vec()))
    }

    /// Reads the token from a file (its first line).
    pub fn from_file(path: &std::path::Path) -> std::io::Result<Option<AdminToken>> {
        let text = std::fs::read_to_string(path)?;
        Ok(AdminToken::new(text.lines().next().unwrap_or("")))
    }

    fn matches(&self, given: &[u8]) -> bool {
        self.0.ct_eq(given).into()
    }
}

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// What an import job did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobReport {
    read: u64,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    id_conflicts: u64,
}

/// One admin job, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Job {
    id: u64,
    kind: &'static str,
    state: JobState,
    files: Vec<String>,
    created_at: String,
    finished_at: Option<String>,
    report: Option<JobReport>,
    error: Option<String>,
    href: String,
}

/// The job list.
#[derive(Default)]
pub(crate) struct Jobs {
    inner: Mutex<(u64, Vec<Job>)>,
}

fn now_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Jobs {
    fn create(&self, files: Vec<String>) -> Job {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 += 1;
        let id = g.0;
        let job = Job {
            id,
            kind: "import",
            state: JobState::Queued,
            files,
            created_at: now_text(Utc::now()),
            finished_at: None,
            report: None,
            error: None,
            href: format!("/v1/admin/jobs/{id}"),
        };
        if g.1.len() >= MAX_JOBS {
            if let Some(i) =
                g.1.iter()
                    .position(|j| matches!(j.state, JobState::Succeeded | JobState::Failed))
            {
                g.1.remove(i);
            }
        }
        g.1.push(job.clone());
        job
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(j) = g.1.iter_mut().find(|j| j.id == id) {
            f(j);
        }
    }

    fn get(&self, id: u64) -> Option<Job> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.1.iter().find(|j| j.id == id).cloned()
    }

    fn all(&self) -> Vec<Job> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.1.iter().rev().cloned().collect()
    }
}

/// The admin routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/imports", post(imports_create))
        .route("/v1/admin/jobs", get(jobs_list))
        .route("/v1/admin/jobs/{id}", get(jobs_get))
}

/// 401 without a bearer token, 403 with a wrong one or when admin is off.
pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                "unauthorized",
                Some("Authorization"),
                "admin routes need an Authorization: Bearer <token> header",
            )
        })?;
    let Some(token) = state.admin_token() else {
        return Err(ApiError::new(
            "admin_disabled",
            None,
            "admin routes are off: no admin token is configured (SADOMAP_ADMIN_TOKEN or --admin-token-file)",
        ));
    };
    if token.matches(given) {
        Ok(())
    } else {
        Err(ApiError::new(
            "forbidden",
            Some("Authorization"),
            "the bearer token is not the admin token",
        ))
    }
}

/// The body of `POST /v1/admin/imports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    /// A file on the server.
    path: PathBuf,
    /// Its format, when not to be told from the name and content.
    #[serde(default, deserialize_with = "present")]
    format: Option<String>,
    /// Kind of its places, where the format does not say.
    #[serde(default, deserialize_with = "present")]
    kind: Option<String>,
}

/// An optional field that, when given, must be a string (`null` is rejected, as the schema says).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

async fn imports_create(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let body = body.map_err(|e| match e.status().as_u16() {
        413 => ApiError::new(
            "payload_too_large",
            None,
            format!("the request body is too large: {e}"),
        ),
        _ => ApiError::new("invalid_body", None, format!("the request body: {e}")),
    })?;
    Params::parse(raw.as_deref(), &[])?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::new(
            "unsupported_media_type",
            Some("Content-Type"),
            "send the import request as application/json",
        ));
    }
    let req: ImportRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new("invalid_body", None, format!("import request: {e}")))?;
    if req.path.as_os_str().is_empty() {
        return Err(ApiError::new(
            "invalid_body",
            Some("path"),
            "path is empty; give a file on the server",
        ));
    }
    let format = match &req.format {
        Some(f) => Some(Format::parse(f).ok_or_else(|| {
            ApiError::new(
                "invalid_body",
                Some("format"),
                format!("{f:?} is not an import format"),
            )
        })?),
        None => None,
    };
    let kind = match &req.kind {
        Some(k) => Some(Kind::parse(k).ok_or_else(|| {
            ApiError::new("invalid_body", Some("kind"), format!("{k:?} is not a kind"))
        })?),
        None => None,
    };
    let file = ImportFile {
        path: req.path.clone(),
        format,
        kind,
    };
    let job = s.jobs().create(vec![req.path.display().to_string()]);
    let id = job.id;
    tracing::info!(job = id, path = %req.path.display(), "import job queued");
    let state = s.clone();
    tokio::spawn(async move {
        state.jobs().update(id, |j| j.state = JobState::Running);
        let store = std::sync::Arc::clone(state.store());
        let result = tokio::task::spawn_blocking(move || {
            import_files(&*store, &[file], Region::sado(), Utc::now(), &mut |_| {})
        })
        .await;
        let finished = Some(now_text(Utc::now()));
        match result {
            Ok(Ok(r)) => {
                // The new data reaches the index before the job reports success, so a client
                // that saw `succeeded` finds the places.
                let _ = state.refresh().await;
                tracing::info!(job = id, read = r.read, "import job succeeded");
                state.jobs().update(id, |j| {
                    j.state = JobState::Succeeded;
                    j.finished_at = finished;
                    j.report = Some(JobReport {
                        read: r.read,
                        inserted: r.inserted,
                        updated: r.updated,
                        unchanged: r.unchanged,
                        id_conflicts: r.id_conflicts,
                    });
                });
            }
            Ok(Err(e)) => {
                tracing::warn!(job = id, error = %e, "import job failed");
                state.jobs().update(id, |j| {
                    j.state = JobState::Failed;
                    j.finished_at = finished;
                    j.error = Some(format!("{e} (nothing was imported)"));
                });
            }
            Err(e) => {
                tracing::error!(job = id, error = %e, "import task panicked");
                state.jobs().update(id, |j| {
                    j.state = JobState::Failed;
                    j.finished_at = finished;
                    j.error = Some("the import task failed; see the server log".into());
                });
            }
        }
    });
    let mut r = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&job.href) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

#[derive(Serialize)]
struct JobList {
    jobs: Vec<Job>,
}

async fn jobs_list(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<JobList>, ApiError> {
    authorize(&s, &headers)?;
    Params::parse(raw.as_deref(), &[])?;
    Ok(Json(JobList {
        jobs: s.jobs().all(),
    }))
}

async fn jobs_get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Job>, ApiError> {
    authorize(&s, &headers)?;
    Params::parse(raw.as_deref(), &[])?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::param("id", format!("{id:?} is not a job id")));
    }
    // Digits beyond u64 name no job that can exist.
    let n: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no job {id}")))?;
    s.jobs()
        .get(n)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no job {n}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_hides_the_value_and_compares_exactly() {
        let t = AdminToken::new(" s3cret\n").unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(t.matches(b"s3cret"));
        assert!(!t.matches(b"s3cre"));
        assert!(!t.matches(b"s3cret "));
        assert!(AdminToken::new("  ").is_none());
    }
}
