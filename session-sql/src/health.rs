//! Bounded waits: the operation timeout and the "server down" state.
//!
//! Every store operation runs through [`Guard::run`]. It bounds the operation by the
//! operation timeout, and for a database server (PostgreSQL, MySQL) it watches for a
//! server that is gone: when an operation has waited [`PROBE_AFTER`] (or fails with an
//! I/O error), one background probe opens a fresh connection, allowed half the operation
//! timeout (at least [`MIN_PROBE_TIMEOUT`]; [`DEFAULT_PROBE_TIMEOUT`] without one). A probe
//! that cannot connect (refused, reset, or no answer in time) marks the server down: operations waiting on it are answered
//! [`StoreError::Unavailable`] at once, and new ones fail fast without touching the pool,
//! while the probe retries every [`PROBE_INTERVAL`]. The first probe that connects marks
//! the server up again, so the same store recovers without a restart. sqlx's pool by
//! itself retries a refused connection until the acquire timeout runs out, so without
//! this every request would wait that long (5 s by default) while the server is down.
//!
//! Why half the operation timeout: a slow network is not an outage. With 200 ms added each
//! way, opening a MariaDB connection (TCP, greeting, authentication, session setup: about
//! four round trips) takes 1.5-2 s while operations on pooled connections still finish; a
//! probe bounded at 1 s declared that server down and turned every request into a 503
//! (found by `scripts/faults 5 mysql-delay`). A connect slower than half the operation
//! timeout would leave an operation that needs it too little time anyway.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use session_core::{StoreError, StoreResult};
use tokio::sync::Notify;

/// How long an operation may wait before a probe checks whether the server is there.
pub(crate) const PROBE_AFTER: Duration = Duration::from_millis(100);
/// The least time a probe is given to open a connection before the server counts as down.
pub(crate) const MIN_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The probe's time without an operation timeout.
pub(crate) const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(2500);
/// How often a probe retries while the server is down.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Opens (and drops) one fresh connection to the server.
pub(crate) type Probe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send>> + Send + Sync>;

/// A probe for a pool: a fresh connection with the pool's own connect options.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn probe_for<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Probe {
    let options = pool.connect_options();
    Arc::new(move || {
        let options = options.clone();
        Box::pin(async move {
            let conn = <DB::Connection as sqlx::Connection>::connect_with(&*options).await?;
            // Not waiting for a polite close: the answer is in.
            drop(conn);
            Ok(())
        })
    })
}

/// The bounds shared by every operation of one store.
pub(crate) struct Guard {
    operation_timeout: Option<Duration>,
    server: Option<Arc<Server>>,
}

/// The time a probe gets under an operation timeout: half of it, at least
/// [`MIN_PROBE_TIMEOUT`].
fn probe_timeout(operation_timeout: Option<Duration>) -> Duration {
    operation_timeout.map_or(DEFAULT_PROBE_TIMEOUT, |t| (t / 2).max(MIN_PROBE_TIMEOUT))
}

/// The reachability of one database server.
struct Server {
    probe: Probe,
    /// How long one probe may take to connect before the server counts as down.
    probe_timeout: Duration,
    down: AtomicBool,
    went_down: Notify,
    probing: Mutex<bool>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("operation_timeout", &self.operation_timeout)
            .field(
                "server_down",
                &self.server.as_ref().map(|s| s.down.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

impl Guard {
    /// A guard with an operation timeout (if any) and, for a server, a probe.
    pub(crate) fn new(operation_timeout: Option<Duration>, probe: Option<Probe>) -> Self {
        Self {
            operation_timeout,
            server: probe.map(|probe| {
                Arc::new(Server {
                    probe,
                    probe_timeout: probe_timeout(operation_timeout),
                    down: AtomicBool::new(false),
                    went_down: Notify::new(),
                    probing: Mutex::new(false),
                })
            }),
        }
    }

    /// Runs one operation under the bounds. `bounded` is false for operations that may
    /// legitimately run long (`delete_expired`, `migrate`): those skip the operation
    /// timeout but still fail fast while the server is down.
    pub(crate) async fn run<T>(
        &self,
        operation: &'static str,
        bounded: bool,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let limit = if bounded {
            self.operation_timeout
        } else {
            None
        };
        let start = tokio::time::Instant::now();
        let deadline = limit.map(|l| start + l);
        let Some(server) = &self.server else {
            return match deadline {
                None => fut.await,
                Some(deadline) => match tokio::time::timeout_at(deadline, fut).await {
                    Ok(result) => result,
                    Err(_) => Err(timed_out(operation, limit)),
                },
            };
        };
        let went_down = server.went_down.notified();
        tokio::pin!(went_down);
        went_down.as_mut().enable();
        if server.down.load(Ordering::Acquire) {
            return Err(server_down(operation));
        }
        tokio::pin!(fut);
        // One timer for both bounds (each armed timer costs a registration in the
        // runtime's timer wheel and its removal, on every operation): first the moment
        // to probe, then, reset, the deadline. A deadline before the probe moment comes
        // first, and the operation ends there unprobed.
        let probe_at = start + PROBE_AFTER;
        let timer = tokio::time::sleep_until(match deadline {
            Some(deadline) if deadline <= probe_at => deadline,
            _ => probe_at,
        });
        tokio::pin!(timer);
        let mut armed = true;
        loop {
            tokio::select! {
                biased;
                result = &mut fut => {
                    if let Err(StoreError::Unavailable { .. }) = &result {
                        // A broken connection or a pool timeout: is the server there?
                        Server::check(server);
                    }
                    return result;
                }
                () = &mut went_down => return Err(server_down(operation)),
                () = &mut timer, if armed => {
                    if Some(timer.deadline()) == deadline {
                        tracing::warn!(operation, ?limit, "session store operation timed out");
                        return Err(timed_out(operation, limit));
                    }
                    Server::check(server);
                    match deadline {
                        Some(deadline) => timer.as_mut().reset(deadline),
                        None => armed = false,
                    }
                }
            }
        }
    }
}

impl Server {
    /// Starts a probe unless one is running.
    fn check(this: &Arc<Self>) {
        {
            let Ok(mut probing) = this.probing.lock() else {
                return;
            };
            if *probing {
                return;
            }
            *probing = true;
        }
        let weak = Arc::downgrade(this);
        let probe = this.probe.clone();
        let timeout = this.probe_timeout;
        // Outside a runtime there is nothing to probe for.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            if let Ok(mut probing) = this.probing.lock() {
                *probing = false;
            }
            return;
        };
        handle.spawn(probe_loop(weak, probe, timeout));
    }
}

/// Probes until the server answers (or the store is dropped).
async fn probe_loop(server: Weak<Server>, probe: Probe, timeout: Duration) {
    loop {
        let outcome = tokio::time::timeout(timeout, probe()).await;
        let Some(this) = server.upgrade() else {
            return;
        };
        let reachable = match outcome {
            Ok(Ok(())) => true,
            // The server answered, if only to refuse us (bad password, too many
            // connections): it is up, and operations will report what it says.
            Ok(Err(sqlx::Error::Database(_))) => true,
            Ok(Err(ref e)) if !crate::error::is_unavailable(e) => true,
            Ok(Err(e)) => {
                if !this.down.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "session store database server down; failing fast until it answers");
                }
                this.went_down.notify_waiters();
                false
            }
            Err(_) => {
                if !this.down.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        ?timeout,
                        "session store database server not answering; failing fast until it does"
                    );
                }
                this.went_down.notify_waiters();
                false
            }
        };
        if reachable {
            if this.down.swap(false, Ordering::AcqRel) {
                tracing::info!("session store database server reachable again");
            }
            if let Ok(mut probing) = this.probing.lock() {
                *probing = false;
            }
            return;
        }
        drop(this);
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

fn timed_out(operation: &'static str, limit: Option<Duration>) -> StoreError {
    StoreError::unavailable(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("session store {operation} did not finish within {limit:?}"),
    ))
}

fn server_down(operation: &'static str) -> StoreError {
    StoreError::unavailable(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!(
            "session store {operation} not attempted: the database server is down (re-probed every {PROBE_INTERVAL:?})"
        ),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe that connects after `connect` (a slow network), or never (`None`: a frozen
    /// server).
    fn probe_taking(connect: Option<Duration>) -> Probe {
        Arc::new(move || {
            Box::pin(async move {
                match connect {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
                Ok(())
            })
        })
    }

    /// An operation that answers after `d`.
    async fn slow_operation(d: Duration) -> StoreResult<u32> {
        tokio::time::sleep(d).await;
        Ok(7)
    }

    #[test]
    fn the_probe_gets_half_the_operation_timeout_and_at_least_a_second() {
        assert_eq!(
            probe_timeout(Some(Duration::from_secs(5))),
            Duration::from_millis(2500)
        );
        assert_eq!(
            probe_timeout(Some(Duration::from_millis(300))),
            MIN_PROBE_TIMEOUT
        );
        assert_eq!(probe_timeout(None), DEFAULT_PROBE_TIMEOUT);
    }

    /// A probe that connects at once and counts its runs.
    fn counting_probe(runs: Arc<std::sync::atomic::AtomicUsize>) -> Probe {
        Arc::new(move || {
            runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
    }

    /// One timer serves both bounds: the probe starts at [`PROBE_AFTER`] and the operation
    /// still times out at its deadline; a deadline before [`PROBE_AFTER`] ends the
    /// operation unprobed.
    #[tokio::test(start_paused = true)]
    async fn the_probe_moment_and_the_deadline() {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for (limit, probes) in [
            (Duration::from_millis(300), 1),
            (Duration::from_millis(50), 0),
        ] {
            runs.store(0, Ordering::SeqCst);
            let guard = Guard::new(Some(limit), Some(counting_probe(runs.clone())));
            let started = tokio::time::Instant::now();
            let answer = guard
                .run("load", true, slow_operation(Duration::from_secs(60)))
                .await;
            assert!(
                matches!(&answer, Err(StoreError::Unavailable { source })
                    if source.to_string().contains("did not finish within")),
                "{answer:?}"
            );
            assert_eq!(started.elapsed(), limit, "answered at the deadline");
            assert_eq!(
                runs.load(Ordering::SeqCst),
                probes,
                "probes under {limit:?}"
            );
            // Unbounded (`delete_expired`): probed once, then waits for the operation.
            let answer = guard
                .run(
                    "delete_expired",
                    false,
                    slow_operation(Duration::from_secs(3)),
                )
                .await;
            assert_eq!(answer.ok(), Some(7));
        }
    }

    /// Regression (scripts/faults mysql-delay): with 200 ms added each way a MariaDB
    /// connect took ~1.5 s; the probe, then bounded at 1 s, marked the server down and
    /// failed operations that were about to succeed.
    #[tokio::test(start_paused = true)]
    async fn a_slow_connect_is_not_an_outage() {
        let guard = Guard::new(
            Some(Duration::from_secs(5)),
            Some(probe_taking(Some(Duration::from_millis(1500)))),
        );
        for _ in 0..3 {
            let answer = guard
                .run("load", true, slow_operation(Duration::from_millis(800)))
                .await;
            assert_eq!(answer.ok(), Some(7), "a slow server is up");
        }
        let server = guard.server.as_ref().expect("a server guard");
        assert!(!server.down.load(Ordering::Acquire));
    }

    /// A server that never answers the probe is down within the probe's time: the waiting
    /// operation is answered then, not at its own timeout, and the next fails at once.
    #[tokio::test(start_paused = true)]
    async fn a_frozen_server_is_down_after_the_probe_timeout() {
        let guard = Guard::new(Some(Duration::from_secs(5)), Some(probe_taking(None)));
        let started = tokio::time::Instant::now();
        let answer = guard
            .run("load", true, slow_operation(Duration::from_secs(60)))
            .await;
        let took = started.elapsed();
        assert!(
            matches!(answer, Err(StoreError::Unavailable { .. })),
            "{answer:?}"
        );
        assert!(
            took >= Duration::from_millis(2500) && took < Duration::from_secs(3),
            "answered after {took:?}: PROBE_AFTER + the probe's 2.5 s"
        );
        let started = tokio::time::Instant::now();
        let next = guard
            .run("load", true, slow_operation(Duration::from_secs(60)))
            .await;
        assert!(
            matches!(next, Err(StoreError::Unavailable { .. })),
            "{next:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(10),
            "fails fast while down"
        );
    }
}
