//! Group commit on the SQLite writer.
//!
//! A write does not take the writer for itself: it queues its statement, then waits for
//! either its answer or its turn on the writer. Whoever gets the writer takes every
//! statement queued at that moment and runs them in one transaction (`BEGIN IMMEDIATE` ..
//! `COMMIT`), so N concurrent writes pay one commit instead of N. Each statement keeps its
//! own outcome: the caller turns its row count into `KeyExists`, `NotFound` or `Conflict`
//! exactly as for a statement run alone, and a statement that fails fails alone (SQLite
//! rolls back only that statement). Answers are sent only after the `COMMIT`; if the
//! transaction cannot start or commit, every statement of the batch runs again on its own
//! (autocommit), so each gets its real result. A lone write runs without a transaction,
//! as before. If the leading task is cancelled mid-batch, its connection is dropped
//! (SQLite rolls the open transaction back) and the next write reopens it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_core::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection};
use sqlx::{Row, Sqlite};
use tokio::sync::{oneshot, Mutex};

use crate::error::map_err;

/// A statement with its bound values, owned so another task can run it.
pub(super) type Statement = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// Builds a queued statement (again, if the batch has to be replayed one by one).
pub(super) type Build = Box<dyn Fn() -> Statement + Send + Sync>;

/// How a queued statement answers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// The number of rows it changed.
    Execute,
    /// The boolean its `RETURNING` clause gives for the row it touched, if any.
    ReturningBool,
}

/// What a queued statement answered.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Rows(u64),
    Returned(Option<bool>),
}

impl Outcome {
    pub(super) fn rows(self) -> u64 {
        match self {
            Outcome::Rows(n) => n,
            Outcome::Returned(v) => u64::from(v.is_some()),
        }
    }

    pub(super) fn returned(self) -> Option<bool> {
        match self {
            Outcome::Returned(v) => v,
            Outcome::Rows(n) => (n > 0).then_some(true),
        }
    }
}

struct Job {
    id: u64,
    build: Build,
    shape: Shape,
    reply: oneshot::Sender<StoreResult<Outcome>>,
}

/// The queue in front of the writer connection.
#[derive(Default)]
pub(super) struct Queue {
    jobs: std::sync::Mutex<Vec<Job>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

/// The writer a queue feeds.
pub(super) struct Writer<'a> {
    pub(super) conn: &'a Mutex<Option<SqliteConnection>>,
    pub(super) options: &'a SqliteConnectOptions,
    pub(super) timeout: Duration,
    pub(super) closed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one statement and returns its outcome once committed.
    pub(super) async fn submit(
        &self,
        writer: Writer<'_>,
        build: Build,
        shape: Shape,
    ) -> StoreResult<Outcome> {
        let (reply, mut answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Job {
            id,
            build,
            shape,
            reply,
        });
        let turn = tokio::time::timeout(writer.timeout, writer.conn.lock());
        tokio::pin!(turn);
        tokio::select! {
            biased;
            answered = &mut answer => return answered.unwrap_or_else(|_| Err(lost())),
            turn = &mut turn => match turn {
                Ok(mut guard) => {
                    self.lead(&mut guard, &writer).await;
                }
                Err(_elapsed) => {
                    // Still queued? Then withdraw it: it will not run.
                    let mut jobs = self.lock();
                    if let Some(i) = jobs.iter().position(|j| j.id == id) {
                        jobs.remove(i);
                        return Err(map_err(sqlx::Error::PoolTimedOut));
                    }
                }
            },
        }
        answer.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Runs everything queued, on the writer this task holds.
    async fn lead(&self, slot: &mut Option<SqliteConnection>, writer: &Writer<'_>) {
        let jobs = std::mem::take(&mut *self.lock());
        if jobs.is_empty() {
            return;
        }
        if slot.is_none() {
            if writer.closed {
                return answer_all(jobs, &map_err(sqlx::Error::PoolClosed));
            }
            match super::connect(writer.options, writer.timeout).await {
                Ok(conn) => *slot = Some(conn),
                Err(e) => return answer_all(jobs, &e),
            }
        }
        // Dropped (with the connection) if this task is cancelled mid-batch.
        let mut held = Held { slot, done: false };
        let Some(conn) = held.slot.as_mut() else {
            return;
        };
        if jobs.len() == 1 {
            let results = vec![run(conn, &jobs[0]).await];
            held.done = true;
            return held.answer(jobs, results);
        }
        match batch(conn, &jobs).await {
            Ok(results) => {
                held.done = true;
                held.answer(jobs, results);
            }
            Err(e) if is_broken(&e) => {
                held.done = true;
                tracing::warn!(error = %e, "SQLite writer connection broke; reopening on next write");
                *held.slot = None;
                answer_all(jobs, &map_err(e));
            }
            Err(e) => {
                tracing::debug!(error = %e, batch = jobs.len(), "group commit failed; running the batch one by one");
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                let mut results = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    results.push(run(conn, job).await);
                }
                held.done = true;
                held.answer(jobs, results);
            }
        }
    }
}

/// The writer slot while a batch runs: dropping it unfinished drops the connection.
struct Held<'a> {
    slot: &'a mut Option<SqliteConnection>,
    done: bool,
}

impl Held<'_> {
    fn answer(self, jobs: Vec<Job>, results: Vec<Result<Outcome, sqlx::Error>>) {
        for (job, result) in jobs.into_iter().zip(results) {
            let result = result.map_err(|e| {
                if is_broken(&e) {
                    tracing::warn!(error = %e, "SQLite writer connection broke; reopening on next write");
                    *self.slot = None;
                }
                map_err(e)
            });
            // The caller may have given up (timeout): nobody to tell.
            let _ = job.reply.send(result);
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.done {
            tracing::warn!(
                "SQLite group commit cancelled mid-batch; dropping the writer connection"
            );
            *self.slot = None;
        }
    }
}

/// One transaction over every job; per-job results, valid only if it committed.
async fn batch(
    conn: &mut SqliteConnection,
    jobs: &[Job],
) -> Result<Vec<Result<Outcome, sqlx::Error>>, sqlx::Error> {
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = run(conn, job).await;
        if let Err(e) = &result {
            if is_broken(e) {
                return Err(result.err().unwrap_or(sqlx::Error::WorkerCrashed));
            }
        }
        results.push(result);
    }
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    Ok(results)
}

async fn run(conn: &mut SqliteConnection, job: &Job) -> Result<Outcome, sqlx::Error> {
    run_alone(conn, &job.build, job.shape).await
}

/// Runs one statement (outside the queue: a caller's pool).
pub(super) async fn run_alone(
    conn: &mut SqliteConnection,
    build: &Build,
    shape: Shape,
) -> Result<Outcome, sqlx::Error> {
    let statement = build();
    match shape {
        Shape::Execute => statement
            .execute(conn)
            .await
            .map(|r| Outcome::Rows(r.rows_affected())),
        Shape::ReturningBool => {
            let row = statement.fetch_optional(conn).await?;
            let value = row.map(|row| row.try_get::<bool, _>(0)).transpose()?;
            Ok(Outcome::Returned(value))
        }
    }
}

/// A connection that cannot be used any more.
fn is_broken(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_)
    )
}

/// The same failure for every job of a batch (the first gets nothing special: the
/// error is described, its class kept).
fn answer_all(jobs: Vec<Job>, err: &StoreError) {
    for job in jobs {
        let copy = if err.is_unavailable() {
            StoreError::unavailable(std::io::Error::other(err.to_string()))
        } else {
            StoreError::backend(std::io::Error::other(err.to_string()))
        };
        let _ = job.reply.send(Err(copy));
    }
}

/// The leading task went away without answering (it was cancelled before the batch ran).
fn lost() -> StoreError {
    map_err(sqlx::Error::WorkerCrashed)
}
