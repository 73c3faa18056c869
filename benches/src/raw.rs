//! The raw floors: the least work a backend can do for each operation.
//!
//! - memory: a `Mutex<HashMap<String, String>>` holding the pre-encoded session;
//! - Redis: one shared `MultiplexedConnection` doing `GET` / `SET EX` / `EXPIRE` / `DEL`;
//! - SQL: single sqlx statements (upsert, primary-key select of the record's columns with
//!   the expiry filter, expiry update, delete) on a table of the same shape as
//!   `session-sql`'s (see [`create_table_sql`] for its indexes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redis::aio::MultiplexedConnection;
use serde_json::{Map, Value};
use session_core::chrono::{DateTime, Duration as TimeDelta, Utc};
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

use crate::ours::encoded;
use crate::runner::{created_n, key, slot, Op, Worker, TTL_SECS};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The handle-level request on raw bytes: decode, read two keys, write one, encode.
pub fn raw_request(data: &str, seq: u64) -> Result<String, String> {
    let json = data
        .strip_prefix("j1:")
        .ok_or("raw request: unknown format")?;
    let mut map: Map<String, Value> = serde_json::from_str(json).map_err(err)?;
    let user = map
        .get("user_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let csrf = map
        .get("csrf_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if user.is_none() || csrf.is_none() {
        return Err("raw request: session data missing".into());
    }
    map.insert("csrf_token".into(), Value::from(format!("csrf{seq:028}")));
    let mut out = String::with_capacity(data.len() + 8);
    out.push_str("j1:");
    out.push_str(&serde_json::to_string(&map).map_err(err)?);
    Ok(out)
}

/// Which key a worker uses, shared by the raw floors.
#[derive(Clone)]
struct Keys {
    prefill: usize,
    op: Op,
    task: usize,
    tasks: usize,
    round: u32,
}

impl Keys {
    fn for_seq(&self, seq: u64) -> String {
        let i = slot(self.task, self.tasks, self.prefill, seq) as u64;
        match self.op {
            Op::Create | Op::Delete => key(b'c', created_n(self.round, self.tasks, self.task, seq)),
            Op::LoadMiss => key(b'm', i),
            Op::Request => key(b'q', i),
            _ => key(b'p', i),
        }
    }
}

fn keyset(prefill: usize, op: Op, tasks: usize, round: u32) -> Vec<Keys> {
    (0..tasks)
        .map(|task| Keys {
            prefill,
            op,
            task,
            tasks,
            round,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Memory

/// The raw memory floor.
pub struct RawMemory {
    map: Arc<Mutex<HashMap<String, String>>>,
    prefill: usize,
    prefilled: Arc<Vec<String>>,
    missing: Arc<Vec<String>>,
}

impl RawMemory {
    /// A map with `prefill` sessions under `p` keys and as many under `q` keys.
    pub fn new(prefill: usize) -> RawMemory {
        let data = encoded(0);
        let mut map = HashMap::new();
        for n in 0..prefill as u64 {
            map.insert(key(b'p', n), data.clone());
            map.insert(key(b'q', n), data.clone());
        }
        RawMemory {
            map: Arc::new(Mutex::new(map)),
            prefill,
            prefilled: Arc::new((0..prefill as u64).map(|n| key(b'p', n)).collect()),
            missing: Arc::new((0..prefill as u64).map(|n| key(b'm', n)).collect()),
        }
    }

    /// One worker per task.
    pub fn workers(&self, op: Op, tasks: usize, round: u32) -> Vec<RawMemoryWorker> {
        keyset(self.prefill, op, tasks, round)
            .into_iter()
            .map(|keys| RawMemoryWorker {
                map: self.map.clone(),
                keys,
                prefilled: self.prefilled.clone(),
                missing: self.missing.clone(),
                data: encoded(0),
                data_b: encoded(1),
            })
            .collect()
    }
}

/// One task against the raw map.
pub struct RawMemoryWorker {
    map: Arc<Mutex<HashMap<String, String>>>,
    keys: Keys,
    /// Prefilled keys, pre-built so hits do not format a key (ours do not either).
    prefilled: Arc<Vec<String>>,
    missing: Arc<Vec<String>>,
    data: String,
    data_b: String,
}

impl RawMemoryWorker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Worker for RawMemoryWorker {
    async fn op(&mut self, seq: u64) -> Result<(), String> {
        let k = &self.keys;
        let i = slot(k.task, k.tasks, k.prefill, seq);
        match k.op {
            Op::Create => {
                let key = k.for_seq(seq);
                let data = self.data.clone();
                match self.lock().entry(key) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(data);
                        Ok(())
                    }
                    std::collections::hash_map::Entry::Occupied(_) => Err("exists".into()),
                }
            }
            Op::LoadHit => match self.lock().get(&self.prefilled[i]).cloned() {
                Some(_) => Ok(()),
                None => Err("miss".into()),
            },
            Op::LoadMiss => match self.lock().get(&self.missing[i]).cloned() {
                None => Ok(()),
                Some(_) => Err("hit".into()),
            },
            Op::Update => match self.lock().get_mut(&self.prefilled[i]) {
                Some(v) => {
                    v.clone_from(&self.data);
                    Ok(())
                }
                None => Err("miss".into()),
            },
            Op::Touch => match self.lock().get_mut(&self.prefilled[i]) {
                Some(_) => Ok(()),
                None => Err("miss".into()),
            },
            Op::LoadUpdate => {
                let key = &self.prefilled[i];
                let Some(_loaded) = self.lock().get(key).cloned() else {
                    return Err("miss".into());
                };
                match self.lock().get_mut(key) {
                    Some(v) => {
                        v.clone_from(&self.data_b);
                        Ok(())
                    }
                    None => Err("miss".into()),
                }
            }
            Op::Request => {
                let key = k.for_seq(seq);
                let Some(loaded) = self.lock().get(&key).cloned() else {
                    return Err("miss".into());
                };
                let new = raw_request(&loaded, seq)?;
                self.lock().insert(key, new);
                Ok(())
            }
            Op::Delete => {
                let key = k.for_seq(seq);
                match self.lock().remove(&key) {
                    Some(_) => Ok(()),
                    None => Err("delete missed".into()),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Redis

/// The raw Redis floor: one multiplexed connection shared by every task.
pub struct RawRedis {
    conn: MultiplexedConnection,
    prefix: String,
    prefill: usize,
}

impl RawRedis {
    /// Connects and prefills `prefill` sessions (twice: `p` and `q` keys) under `prefix`.
    pub async fn new(url: &str, prefix: &str, prefill: usize) -> Result<RawRedis, String> {
        let client = redis::Client::open(url).map_err(err)?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(err)?;
        let data = encoded(0);
        for chunk in (0..prefill as u64).collect::<Vec<_>>().chunks(500) {
            let mut pipe = redis::pipe();
            for &n in chunk {
                for kind in [b'p', b'q'] {
                    pipe.cmd("SET")
                        .arg(format!("{prefix}{}", key(kind, n)))
                        .arg(&data)
                        .arg("EX")
                        .arg(TTL_SECS)
                        .ignore();
                }
            }
            let () = pipe.query_async(&mut conn).await.map_err(err)?;
        }
        Ok(RawRedis {
            conn,
            prefix: prefix.to_owned(),
            prefill,
        })
    }

    /// One worker per task, all on the same connection.
    pub fn workers(&self, op: Op, tasks: usize, round: u32) -> Vec<RawRedisWorker> {
        keyset(self.prefill, op, tasks, round)
            .into_iter()
            .map(|keys| RawRedisWorker {
                conn: self.conn.clone(),
                prefix: self.prefix.clone(),
                keys,
                data: encoded(0),
                data_b: encoded(1),
            })
            .collect()
    }
}

/// One task on the shared multiplexed connection.
pub struct RawRedisWorker {
    conn: MultiplexedConnection,
    prefix: String,
    keys: Keys,
    data: String,
    data_b: String,
}

impl RawRedisWorker {
    async fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn)
            .await
            .map_err(err)
    }

    async fn set(&mut self, key: &str, data: &str) -> Result<(), String> {
        redis::cmd("SET")
            .arg(key)
            .arg(data)
            .arg("EX")
            .arg(TTL_SECS)
            .query_async(&mut self.conn)
            .await
            .map_err(err)
    }
}

impl Worker for RawRedisWorker {
    async fn op(&mut self, seq: u64) -> Result<(), String> {
        let key = format!("{}{}", self.prefix, self.keys.for_seq(seq));
        match self.keys.op {
            Op::Create | Op::Update => {
                let data = std::mem::take(&mut self.data);
                let r = self.set(&key, &data).await;
                self.data = data;
                r
            }
            Op::LoadHit => match self.get(&key).await? {
                Some(_) => Ok(()),
                None => Err("miss".into()),
            },
            Op::LoadMiss => match self.get(&key).await? {
                None => Ok(()),
                Some(_) => Err("hit".into()),
            },
            Op::Touch => {
                let n: i64 = redis::cmd("EXPIRE")
                    .arg(&key)
                    .arg(TTL_SECS)
                    .query_async(&mut self.conn)
                    .await
                    .map_err(err)?;
                if n == 1 {
                    Ok(())
                } else {
                    Err("touch missed".into())
                }
            }
            Op::LoadUpdate => {
                if self.get(&key).await?.is_none() {
                    return Err("miss".into());
                }
                let data = std::mem::take(&mut self.data_b);
                let r = self.set(&key, &data).await;
                self.data_b = data;
                r
            }
            Op::Request => {
                let Some(loaded) = self.get(&key).await? else {
                    return Err("miss".into());
                };
                let new = raw_request(&loaded, seq)?;
                self.set(&key, &new).await
            }
            Op::Delete => {
                let n: i64 = redis::cmd("DEL")
                    .arg(&key)
                    .query_async(&mut self.conn)
                    .await
                    .map_err(err)?;
                if n == 1 {
                    Ok(())
                } else {
                    Err("delete missed".into())
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// SQL

/// The raw floor's PostgreSQL pool: 16 connections and no ping before each acquire
/// (sqlx's default is to ping): one round trip per statement, as in our store. See
/// FINDINGS.md.
pub async fn raw_pg_pool(url: &str) -> Result<PgPool, String> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .test_before_acquire(false)
        .connect(url)
        .await
        .map_err(|e| format!("postgres: {e}"))
}

/// A raw sqlx pool: PostgreSQL or SQLite.
#[derive(Clone)]
pub enum RawPool {
    /// PostgreSQL (`TIMESTAMPTZ` times).
    Pg(PgPool),
    /// SQLite (`INTEGER` microseconds since the epoch).
    Sqlite(SqlitePool),
}

#[derive(Clone)]
struct SqlText {
    upsert: String,
    load: String,
    touch: String,
    delete: String,
}

impl SqlText {
    fn new(pool: &RawPool, t: &str) -> SqlText {
        let (a, b, c, d, e) = match pool {
            RawPool::Pg(_) => ("$1", "$2", "$3", "$4", "$5"),
            RawPool::Sqlite(_) => ("?1", "?2", "?3", "?4", "?5"),
        };
        SqlText {
            upsert: format!(
                "INSERT INTO {t} (session_key, data, expires_at, version, created_at) \
                 VALUES ({a}, {b}, {c}, {d}, {e}) ON CONFLICT (session_key) DO UPDATE SET \
                 data = excluded.data, expires_at = excluded.expires_at"
            ),
            // Every column a session record has, as `session-sql` reads them: the floor
            // pays for the same row width.
            load: format!(
                "SELECT data, expires_at, version, user_id, created_at, last_active_at, \
                 user_agent, ip FROM {t} WHERE session_key = {a} AND expires_at > {b}"
            ),
            touch: format!(
                "UPDATE {t} SET expires_at = {a} WHERE session_key = {b} AND expires_at > {c}"
            ),
            delete: format!("DELETE FROM {t} WHERE session_key = {a}"),
        }
    }
}

/// The table shape of `session-sql` (native layout), for the raw floor, as a careful
/// hand-written store would make it. On PostgreSQL: no index on `expires_at` and pages with
/// free space (`fillfactor = 70`), so that every update and touch can be HOT (heap-only, no
/// index entry written), the least a write can cost. (`session-sql` indexes an hourly
/// expiry bucket so that its cleanup keeps an index; the floor runs no cleanup, so it
/// does without.) On SQLite, where there is no HOT update to lose, the expiry index
/// stays, as in `session-sql`.
pub fn create_table_sql(pool: &RawPool, t: &str) -> Vec<String> {
    let (time, key, with) = match pool {
        RawPool::Pg(_) => ("TIMESTAMPTZ", "VARCHAR(64)", " WITH (fillfactor = 70)"),
        RawPool::Sqlite(_) => ("INTEGER", "TEXT", ""),
    };
    let mut statements = vec![
        format!("DROP TABLE IF EXISTS {t}"),
        format!(
            "CREATE TABLE {t} (session_key {key} PRIMARY KEY NOT NULL, data TEXT NOT NULL, \
             expires_at {time} NOT NULL, version BIGINT NOT NULL, user_id TEXT, \
             created_at {time} NOT NULL, last_active_at {time}, user_agent TEXT, ip TEXT){with}"
        ),
    ];
    if matches!(pool, RawPool::Sqlite(_)) {
        statements.push(format!(
            "CREATE INDEX {t}_expires_at_idx ON {t} (expires_at)"
        ));
    }
    statements.push(format!(
        "CREATE INDEX {t}_user_id_idx ON {t} (user_id) WHERE user_id IS NOT NULL"
    ));
    statements
}

/// Runs one statement with no parameters.
pub async fn exec(pool: &RawPool, sql: &str) -> Result<(), String> {
    let q = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match pool {
        RawPool::Pg(p) => q.execute(p).await.map(drop).map_err(err),
        RawPool::Sqlite(p) => q.execute(p).await.map(drop).map_err(err),
    }
}

/// The raw SQL floor over one table.
pub struct RawSql {
    pool: RawPool,
    text: SqlText,
    prefill: usize,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

impl RawSql {
    /// Creates table `table` (dropping an old one) and prefills it.
    pub async fn new(pool: RawPool, table: &str, prefill: usize) -> Result<RawSql, String> {
        for stmt in create_table_sql(&pool, table) {
            exec(&pool, &stmt).await?;
        }
        let text = SqlText::new(&pool, table);
        let raw = RawSql {
            pool,
            text,
            prefill,
        };
        let data = encoded(0);
        let mut handles = Vec::new();
        let tasks = 16;
        for t in 0..tasks {
            let w = RawSqlWorker {
                pool: raw.pool.clone(),
                text: raw.text.clone(),
                keys: Keys {
                    prefill,
                    op: Op::Create,
                    task: t,
                    tasks,
                    round: 0,
                },
                data: data.clone(),
                data_b: data.clone(),
            };
            handles.push(tokio::spawn(async move {
                let mut w = w;
                let mut n = t as u64;
                while n < prefill as u64 {
                    for kind in [b'p', b'q'] {
                        let data = w.data.clone();
                        w.upsert(&key(kind, n), &data).await?;
                    }
                    n += tasks as u64;
                }
                Ok::<(), String>(())
            }));
        }
        for h in handles {
            h.await.map_err(err)??;
        }
        Ok(raw)
    }

    /// One worker per task.
    pub fn workers(&self, op: Op, tasks: usize, round: u32) -> Vec<RawSqlWorker> {
        keyset(self.prefill, op, tasks, round)
            .into_iter()
            .map(|keys| RawSqlWorker {
                pool: self.pool.clone(),
                text: self.text.clone(),
                keys,
                data: encoded(0),
                data_b: encoded(1),
            })
            .collect()
    }
}

/// One task on the raw SQL pool.
pub struct RawSqlWorker {
    pool: RawPool,
    text: SqlText,
    keys: Keys,
    data: String,
    data_b: String,
}

impl RawSqlWorker {
    async fn upsert(&mut self, key: &str, data: &str) -> Result<(), String> {
        let now = Utc::now();
        let exp = now + TimeDelta::seconds(TTL_SECS as i64);
        let q = AssertSqlSafe(self.text.upsert.as_str());
        let n = match &self.pool {
            RawPool::Pg(p) => sqlx::query(q)
                .bind(key)
                .bind(data)
                .bind(exp)
                .bind(1i64)
                .bind(now)
                .execute(p)
                .await
                .map_err(err)?
                .rows_affected(),
            RawPool::Sqlite(p) => sqlx::query(q)
                .bind(key)
                .bind(data)
                .bind(micros(exp))
                .bind(1i64)
                .bind(micros(now))
                .execute(p)
                .await
                .map_err(err)?
                .rows_affected(),
        };
        if n == 1 {
            Ok(())
        } else {
            Err(format!("upsert affected {n} rows"))
        }
    }

    async fn load(&mut self, key: &str) -> Result<Option<String>, String> {
        use sqlx::Row;
        let now = Utc::now();
        let q = AssertSqlSafe(self.text.load.as_str());
        match &self.pool {
            RawPool::Pg(p) => {
                let row = sqlx::query(q)
                    .bind(key)
                    .bind(now)
                    .fetch_optional(p)
                    .await
                    .map_err(err)?;
                row.map(|r| {
                    let _: DateTime<Utc> = r.try_get(1).map_err(err)?;
                    let _: i64 = r.try_get(2).map_err(err)?;
                    let _: Option<String> = r.try_get(3).map_err(err)?;
                    let _: DateTime<Utc> = r.try_get(4).map_err(err)?;
                    let _: Option<DateTime<Utc>> = r.try_get(5).map_err(err)?;
                    let _: Option<String> = r.try_get(6).map_err(err)?;
                    let _: Option<String> = r.try_get(7).map_err(err)?;
                    r.try_get::<String, _>(0).map_err(err)
                })
                .transpose()
            }
            RawPool::Sqlite(p) => {
                let row = sqlx::query(q)
                    .bind(key)
                    .bind(micros(now))
                    .fetch_optional(p)
                    .await
                    .map_err(err)?;
                row.map(|r| {
                    let _: i64 = r.try_get(1).map_err(err)?;
                    let _: i64 = r.try_get(2).map_err(err)?;
                    let _: Option<String> = r.try_get(3).map_err(err)?;
                    let _: i64 = r.try_get(4).map_err(err)?;
                    let _: Option<i64> = r.try_get(5).map_err(err)?;
                    let _: Option<String> = r.try_get(6).map_err(err)?;
                    let _: Option<String> = r.try_get(7).map_err(err)?;
                    r.try_get::<String, _>(0).map_err(err)
                })
                .transpose()
            }
        }
    }

    async fn touch(&mut self, key: &str) -> Result<u64, String> {
        let now = Utc::now();
        let exp = now + TimeDelta::seconds(TTL_SECS as i64);
        let q = AssertSqlSafe(self.text.touch.as_str());
        Ok(match &self.pool {
            RawPool::Pg(p) => sqlx::query(q)
                .bind(exp)
                .bind(key)
                .bind(now)
                .execute(p)
                .await
                .map_err(err)?
                .rows_affected(),
            RawPool::Sqlite(p) => sqlx::query(q)
                .bind(micros(exp))
                .bind(key)
                .bind(micros(now))
                .execute(p)
                .await
                .map_err(err)?
                .rows_affected(),
        })
    }

    async fn delete(&mut self, key: &str) -> Result<u64, String> {
        let q = AssertSqlSafe(self.text.delete.as_str());
        Ok(match &self.pool {
            RawPool::Pg(p) => sqlx::query(q)
                .bind(key)
                .execute(p)
                .await
                .map_err(err)?
                .rows_affected(),
            RawPool::Sqlite(p) => sqlx::query(q)
                .bind(key)
                .execute(p)
                .await
                .map_err(err)?
                .rows_affected(),
        })
    }
}

impl Worker for RawSqlWorker {
    async fn op(&mut self, seq: u64) -> Result<(), String> {
        let key = self.keys.for_seq(seq);
        match self.keys.op {
            Op::Create | Op::Update => {
                let data = std::mem::take(&mut self.data);
                let r = self.upsert(&key, &data).await;
                self.data = data;
                r
            }
            Op::LoadHit => match self.load(&key).await? {
                Some(_) => Ok(()),
                None => Err("miss".into()),
            },
            Op::LoadMiss => match self.load(&key).await? {
                None => Ok(()),
                Some(_) => Err("hit".into()),
            },
            Op::Touch => match self.touch(&key).await? {
                1 => Ok(()),
                n => Err(format!("touch affected {n} rows")),
            },
            Op::LoadUpdate => {
                if self.load(&key).await?.is_none() {
                    return Err("miss".into());
                }
                let data = std::mem::take(&mut self.data_b);
                let r = self.upsert(&key, &data).await;
                self.data_b = data;
                r
            }
            Op::Request => {
                let Some(loaded) = self.load(&key).await? else {
                    return Err("miss".into());
                };
                let new = raw_request(&loaded, seq)?;
                self.upsert(&key, &new).await
            }
            Op::Delete => match self.delete(&key).await? {
                1 => Ok(()),
                n => Err(format!("delete affected {n} rows")),
            },
        }
    }
}
