//! A request's deadline: one instant that bounds every attempt, retry and backoff of the
//! request, and a committed stream until its end.

use std::future::Future;
use std::time::Duration;

use fazztv_core::{Error, ErrorKind, Result};
use tokio::time::Instant;

/// When a request must be over, and the length it was given (for messages).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    length: Duration,
}

impl Deadline {
    /// A deadline `length` from now.
    pub(crate) fn after(length: Duration) -> Self {
        Self {
            at: Instant::now() + length,
            length,
        }
    }

    /// The instant itself.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// The time left; zero once it passed.
    pub(crate) fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The error of a request whose deadline passed.
    pub(crate) fn exceeded(&self) -> Error {
        Error::new(
            ErrorKind::DeadlineExceeded,
            format!(
                "the request's deadline of {} s passed (`deadline` in the manager settings or \
                 the request's options)",
                self.length.as_secs_f64()
            ),
        )
    }

    /// `future`, ended with [`exceeded`](Self::exceeded) if it is not done by the deadline.
    pub(crate) async fn bound<T>(self, future: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout_at(self.at, future)
            .await
            .unwrap_or_else(|_| Err(self.exceeded()))
    }
}
