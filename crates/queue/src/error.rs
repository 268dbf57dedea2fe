//! The queue's errors, each with a stable code.

use thiserror::Error;

/// What went wrong in a queue operation.
#[derive(Debug, Error)]
pub enum QueueError {
    /// A queue, task or worker name that is not 1..=64 of `[a-z0-9_.:-]`.
    #[error("{kind} name {input:?} is invalid: use 1 to 64 of a-z, 0-9, '_', '-', '.', ':'")]
    InvalidName {
        /// Which kind of name.
        kind: &'static str,
        /// What was given.
        input: String,
    },
    /// A job id that is not a number.
    #[error("job id {input:?} is invalid: expected a number")]
    InvalidJobId {
        /// What was given.
        input: String,
    },
    /// No job has this id (or it expired).
    #[error("no job {0}")]
    NoSuchJob(crate::JobId),
    /// The broker cannot be reached (connection refused, reset, timed out); callers retry with
    /// backoff and report themselves degraded.
    #[error("broker unavailable: {message}")]
    Unavailable {
        /// The underlying cause.
        message: String,
    },
    /// The broker answered with something this version does not understand.
    #[error("broker data is corrupt: {message}")]
    Corrupt {
        /// What was wrong.
        message: String,
    },
    /// Any other backend failure.
    #[error("broker error: {message}")]
    Backend {
        /// The underlying cause.
        message: String,
    },
}

impl QueueError {
    /// A stable code for logs, JSON output and the HTTP layer.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::InvalidName { .. } => "invalid_name",
            QueueError::InvalidJobId { .. } => "invalid_job_id",
            QueueError::NoSuchJob(_) => "no_such_job",
            QueueError::Unavailable { .. } => "broker_unavailable",
            QueueError::Corrupt { .. } => "broker_corrupt",
            QueueError::Backend { .. } => "broker_error",
        }
    }

    /// The HTTP status an API should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            QueueError::InvalidName { .. } | QueueError::InvalidJobId { .. } => 400,
            QueueError::NoSuchJob(_) => 404,
            QueueError::Unavailable { .. } => 503,
            QueueError::Corrupt { .. } | QueueError::Backend { .. } => 500,
        }
    }

    /// True when retrying later may help (the worker reconnects with backoff).
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Unavailable { .. })
    }
}
