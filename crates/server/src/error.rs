//! API errors: one table of codes with their HTTP status, and the JSON body every error answers
//! with (`{"error": code, "field": name or null, "message": text}`).
//!
//! Lower crates give their errors a stable code and a suggested status as a plain number; this
//! module is where those become HTTP. Internal details (SQL errors, paths of the data directory)
//! are logged and never sent: a 5xx answers with a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sadomap_store::{QueryError, StoreError};
use serde::Serialize;

/// Every error code the API answers with: `(code, HTTP status, meaning)`.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "invalid_parameter",
        400,
        "a query parameter's value does not parse or is out of range",
    ),
    (
        "unknown_parameter",
        400,
        "a query parameter this route does not take",
    ),
    (
        "repeated_parameter",
        400,
        "a single-valued query parameter given twice",
    ),
    (
        "invalid_query_string",
        400,
        "the query string is not valid form encoding",
    ),
    (
        "limit_out_of_range",
        400,
        "limit above the largest page size",
    ),
    ("invalid_price_range", 400, "price_min above price_max"),
    ("invalid_rating", 400, "min_rating not within 0 to 5"),
    ("invalid_bbox", 400, "bbox edges crossed or out of range"),
    ("invalid_radius", 400, "radius negative or not finite"),
    (
        "distance_sort_needs_near",
        400,
        "sort=distance without near",
    ),
    ("invalid_cursor", 400, "a cursor this server did not make"),
    (
        "cursor_sort_mismatch",
        400,
        "a cursor from a query with another sort",
    ),
    (
        "invalid_body",
        400,
        "the request body is not the JSON the route expects",
    ),
    ("unauthorized", 401, "no bearer token given"),
    ("forbidden", 403, "the bearer token is wrong"),
    (
        "admin_disabled",
        403,
        "no admin token is configured, so admin routes are off",
    ),
    ("not_found", 404, "no such place, job or route"),
    (
        "not_supervised",
        404,
        "this server is not run by `sadomap up`, so it has no supervisor to show",
    ),
    (
        "unknown_service",
        404,
        "the supervisor has no service of that name",
    ),
    (
        "method_not_allowed",
        405,
        "the route exists but not with this method",
    ),
    (
        "payload_too_large",
        413,
        "the request body exceeds the size limit",
    ),
    (
        "unsupported_media_type",
        415,
        "the request body is not application/json",
    ),
    ("invalid_place", 422, "a place was rejected by the store"),
    ("conflict", 409, "a concurrent write conflicted; retry"),
    (
        "rate_limited",
        429,
        "too many requests from this client; see Retry-After",
    ),
    ("internal", 500, "an internal error (logged on the server)"),
    (
        "not_ready",
        503,
        "the store is unreachable or the index is not loaded",
    ),
    ("store_unavailable", 503, "the store is unreachable"),
    (
        "supervisor_unavailable",
        503,
        "the supervisor did not answer or refused the request",
    ),
    ("store_busy", 503, "the store is busy; retry"),
    (
        "timeout",
        503,
        "the request took longer than the server allows",
    ),
];

/// The status of a code in [`ERROR_CODES`] (500 for a code not in the table).
pub fn status_of(code: &str) -> u16 {
    ERROR_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(500, |(_, s, _)| *s)
}

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    code: &'static str,
    field: Option<String>,
    message: String,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    field: Option<&'a str>,
    message: &'a str,
}

impl ApiError {
    /// An error with a code from [`ERROR_CODES`].
    pub fn new(code: &'static str, field: Option<&str>, message: impl Into<String>) -> ApiError {
        debug_assert!(
            ERROR_CODES.iter().any(|(c, _, _)| *c == code),
            "{code} is not in the error table"
        );
        ApiError {
            code,
            field: field.map(str::to_owned),
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 400 naming the parameter at fault.
    pub fn param(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new("invalid_parameter", Some(field), message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new("not_found", None, message)
    }

    /// A 500 whose cause is logged here and not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            "internal",
            None,
            "internal error; the server log has the details",
        )
    }

    /// A 429 with a `Retry-After` of `secs`.
    pub fn rate_limited(secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(secs),
            ..ApiError::new(
                "rate_limited",
                None,
                format!("too many requests; retry after {secs} s"),
            )
        }
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The parameter at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(status_of(self.code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        // Every query error is a client error naming its field; the table has all their codes.
        let code = ERROR_CODES
            .iter()
            .map(|(c, _, _)| *c)
            .find(|c| *c == e.code())
            .unwrap_or("invalid_parameter");
        ApiError::new(code, Some(e.field()), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e.http_status() {
            404 => ApiError::not_found(e.to_string()),
            503 => {
                tracing::warn!(error = %e, "store unavailable");
                let code = if e.code() == "store_busy" {
                    "store_busy"
                } else {
                    "store_unavailable"
                };
                ApiError::new(code, None, "the place store is unavailable; retry later")
            }
            _ => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            field: self.field.as_deref(),
            message: &self.message,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut r = (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.code == "unauthorized" {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sadomap-admin\""),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_error_code_is_in_the_table() {
        for code in [
            "limit_out_of_range",
            "invalid_price_range",
            "invalid_rating",
            "invalid_bbox",
            "invalid_radius",
            "distance_sort_needs_near",
            "invalid_cursor",
            "cursor_sort_mismatch",
            "invalid_parameter",
        ] {
            assert_eq!(status_of(code), 400, "{code}");
        }
        let mut codes: Vec<&str> = ERROR_CODES.iter().map(|c| c.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ERROR_CODES.len(), "codes are unique");
    }

    #[test]
    fn rate_limited_sets_retry_after() {
        let r = ApiError::rate_limited(3).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
    }
}
