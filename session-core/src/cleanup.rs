//! A background task that removes expired sessions periodically.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::SessionStore;

/// Handle to a running cleanup task (see [`spawn_cleanup`]). Dropping it stops the task too.
#[derive(Debug)]
pub struct CleanupTask {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

impl CleanupTask {
    /// Asks the task to stop and waits until it has (an in-flight `delete_expired` finishes
    /// first).
    ///
    /// # Examples
    ///
    /// See [`spawn_cleanup`].
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The task may already be gone; nothing to report then.
            let _ = stop.send(());
        }
        if let Err(err) = (&mut self.handle).await {
            tracing::warn!(%err, "session cleanup task ended abnormally");
        }
    }
}

/// Spawns a task on the current tokio runtime that calls the store's
/// [`ExpiredCleanup::delete_expired`](crate::ExpiredCleanup::delete_expired) every `every`.
/// Failures are logged and the task keeps going (a database restart does not end it). For a
/// store without that capability (its engine expires records by itself) the task ends at
/// once.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::{sync::Arc, time::Duration};
/// use session_kit::{spawn_cleanup, SessionStore};
///
/// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
/// let task = spawn_cleanup(store, Duration::from_secs(300));
/// // ... serve requests ...
/// task.shutdown().await;
/// # }
/// ```
pub fn spawn_cleanup(store: Arc<dyn SessionStore>, every: Duration) -> CleanupTask {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let every = every.max(Duration::from_millis(1));
    let handle = tokio::spawn(async move {
        if store.expired_cleanup().is_none() {
            tracing::debug!("session store expires records by itself; no cleanup task needed");
            return;
        }
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(every) => {}
            }
            match crate::observe::Observed(&*store).delete_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "expired sessions removed"),
                Err(err) => tracing::warn!(%err, "expired-session cleanup failed; will retry"),
            }
        }
    });
    CleanupTask {
        stop: Some(stop),
        handle,
    }
}
