//! Observability of store operations: one tracing span per operation the session handle,
//! the [`SessionManager`](crate::SessionManager) and the cleanup task make, and (feature
//! `metrics`) counters and latency histograms through the `metrics` facade.
//!
//! Nothing here ever sees a key or session data: the span and the metrics carry only
//! static strings (operation, backend, outcome) and a duration.

use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::field::Empty;
use tracing::Instrument;

use crate::{Record, SessionKey, SessionStore, StoreError, StoreResult};

/// The target of the per-operation spans.
pub(crate) const TARGET: &str = "session_core::store";

/// A store operation, as named in spans and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Load,
    Update,
    Touch,
    Delete,
    DeleteAtVersion,
    DeleteExpired,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Load => "load",
            Self::Update => "update",
            Self::Touch => "touch",
            Self::Delete => "delete",
            Self::DeleteAtVersion => "delete_at_version",
            Self::DeleteExpired => "delete_expired",
        }
    }
}

/// How an operation ended, as a short fixed string: `ok`, `miss` (no live record: a load
/// that found nothing, a touch or delete answering `false`), or the error kind.
pub(crate) trait Outcome {
    fn outcome(&self) -> &'static str;
}

fn error_outcome(err: &StoreError) -> &'static str {
    match err {
        StoreError::KeyExists => "key_exists",
        StoreError::NotFound => "not_found",
        StoreError::Conflict => "conflict",
        StoreError::Unsupported { .. } => "unsupported",
        StoreError::Unavailable { .. } => "unavailable",
        StoreError::CorruptRecord { .. } => "corrupt",
        _ => "error",
    }
}

impl Outcome for StoreResult<()> {
    fn outcome(&self) -> &'static str {
        self.as_ref().map_or_else(error_outcome, |()| "ok")
    }
}

impl Outcome for StoreResult<u64> {
    fn outcome(&self) -> &'static str {
        self.as_ref().map_or_else(error_outcome, |_| "ok")
    }
}

impl Outcome for StoreResult<bool> {
    fn outcome(&self) -> &'static str {
        match self {
            Ok(true) => "ok",
            Ok(false) => "miss",
            Err(err) => error_outcome(err),
        }
    }
}

impl Outcome for StoreResult<Option<Record>> {
    fn outcome(&self) -> &'static str {
        match self {
            Ok(Some(_)) => "ok",
            Ok(None) => "miss",
            Err(err) => error_outcome(err),
        }
    }
}

/// Runs one store operation inside a `session.store` span (DEBUG, target
/// `session_core::store`) with fields `operation`, `backend`, and, when it ends, `outcome`
/// and `duration_us`; counts it and records its latency with the `metrics` feature.
///
/// With no subscriber listening (and without `metrics`) it costs a disabled span: no
/// clock read, no allocation.
pub(crate) async fn observe<T, F>(op: Op, backend: &'static str, fut: F) -> StoreResult<T>
where
    F: Future<Output = StoreResult<T>>,
    StoreResult<T>: Outcome,
{
    let span = tracing::debug_span!(
        target: TARGET,
        "session.store",
        operation = op.name(),
        backend,
        outcome = Empty,
        duration_us = Empty,
    );
    if !cfg!(feature = "metrics") && span.is_disabled() {
        // Nobody listens: no clock, no instrumented wrapper.
        return fut.await;
    }
    let start = Instant::now();
    let result = fut.instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let outcome = result.outcome();
    span.record("outcome", outcome);
    span.record(
        "duration_us",
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    );
    emit::operation(op, backend, outcome, elapsed);
    result
}

/// The store operations of the handle, each observed.
#[derive(Clone, Copy)]
pub(crate) struct Observed<'a>(pub(crate) &'a dyn SessionStore);

impl Observed<'_> {
    pub(crate) fn backend(&self) -> &'static str {
        self.0.backend_name()
    }

    pub(crate) async fn create(&self, record: &Record) -> StoreResult<()> {
        observe(Op::Create, self.backend(), self.0.create(record)).await
    }

    pub(crate) async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        observe(Op::Load, self.backend(), self.0.load(key)).await
    }

    pub(crate) async fn update(&self, record: &Record) -> StoreResult<u64> {
        observe(Op::Update, self.backend(), self.0.update(record)).await
    }

    pub(crate) async fn touch(
        &self,
        key: &SessionKey,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        observe(Op::Touch, self.backend(), self.0.touch(key, expires_at)).await
    }

    pub(crate) async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        observe(Op::Delete, self.backend(), self.0.delete(key)).await
    }

    pub(crate) async fn delete_at_version(
        &self,
        key: &SessionKey,
        version: u64,
    ) -> StoreResult<()> {
        observe(
            Op::DeleteAtVersion,
            self.backend(),
            self.0.delete_at_version(key, version),
        )
        .await
    }

    pub(crate) async fn delete_expired(&self) -> StoreResult<u64> {
        observe(Op::DeleteExpired, self.backend(), self.0.delete_expired()).await
    }
}

/// The metric names (documented in the crate docs).
#[cfg(feature = "metrics")]
pub(crate) mod names {
    pub(crate) const OPERATIONS: &str = "session_store_operations_total";
    pub(crate) const DURATION: &str = "session_store_operation_duration_seconds";
    pub(crate) const CONFLICTS: &str = "session_save_conflicts_total";
    pub(crate) const RETRIES: &str = "session_save_retries_total";
    pub(crate) const COLLISIONS: &str = "session_create_collisions_total";
    pub(crate) const AUTH_HASH_LOGOUTS: &str = "session_auth_hash_logouts_total";
}

/// The metric emitters; no-ops without the `metrics` feature.
pub(crate) mod emit {
    use std::time::Duration;

    use super::Op;

    #[cfg(feature = "metrics")]
    use super::names;

    /// One store operation: counted by operation, backend and outcome; its latency
    /// recorded by operation and backend.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn operation(op: Op, backend: &'static str, outcome: &'static str, took: Duration) {
        #[cfg(feature = "metrics")]
        {
            ::metrics::counter!(names::OPERATIONS, "operation" => op.name(), "backend" => backend, "outcome" => outcome)
                .increment(1);
            ::metrics::histogram!(names::DURATION, "operation" => op.name(), "backend" => backend)
                .record(took.as_secs_f64());
        }
    }

    /// A save found the record written by another process (compare-and-swap conflict).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn conflict(backend: &'static str) {
        #[cfg(feature = "metrics")]
        ::metrics::counter!(names::CONFLICTS, "backend" => backend).increment(1);
    }

    /// A save replayed its changes on fresh data and tried again.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn retry(backend: &'static str) {
        #[cfg(feature = "metrics")]
        ::metrics::counter!(names::RETRIES, "backend" => backend).increment(1);
    }

    /// A fresh key was already taken at create.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn create_collision(backend: &'static str) {
        #[cfg(feature = "metrics")]
        ::metrics::counter!(names::COLLISIONS, "backend" => backend).increment(1);
    }

    /// A session was logged out because its auth hash no longer matched.
    pub(crate) fn auth_hash_logout() {
        #[cfg(feature = "metrics")]
        ::metrics::counter!(names::AUTH_HASH_LOGOUTS).increment(1);
    }
}
