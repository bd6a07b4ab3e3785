//! The one way to wait for an optional deadline inside `tokio::select!`.

use std::time::Instant;

/// Sleeps until `at`; never finishes when there is no deadline.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
