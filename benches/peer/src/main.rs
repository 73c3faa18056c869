//! The tower-sessions side of the session benchmarks.
//!
//! A long-lived child of the `session-bench` harness: it reads one JSON command per line
//! on stdin and answers one JSON line on stdout. It lives in a workspace of its own
//! because `tower-sessions-sqlx-store` 0.15 needs sqlx 0.8 while our stores use sqlx 0.9,
//! and both link `sqlite3`, which cargo refuses in one dependency graph.
//!
//! Commands:
//! - `{"cmd":"setup","backend":"memory|redis|postgres|sqlite","url":..,"prefill":N,"table":..}`
//! - `{"cmd":"run","op":"load_hit","tasks":32,"round":0,"duration_ms":1000}` answers the
//!   phase result (`ops`, `errors`, `elapsed_ns`, `p50_ns`, `p99_ns`, `per_task`, `first_error`)
//! - `{"cmd":"teardown"}`
#![forbid(unsafe_code)]

#[path = "../../src/runner.rs"]
#[allow(dead_code)]
mod runner;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::{Session, SessionStore};
use tower_sessions_memory_store::MemoryStore;
use tower_sessions_redis_store::fred::prelude::{Builder, ClientLike, Config, Pool};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use runner::{created_n, run_phase, session_map, slot, Op, Worker, TTL_SECS};

type Data = HashMap<String, Value>;

fn id(kind: u8, n: u64) -> Id {
    Id((i128::from(kind) << 64) | i128::from(n))
}

fn data(variant: u32) -> Data {
    session_map(variant).into_iter().collect()
}

fn expiry() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(TTL_SECS as i64)
}

struct Peer<S: SessionStore + Clone> {
    store: Arc<S>,
    prefill: usize,
    created: HashMap<(u32, usize), Vec<u64>>,
}

impl<S: SessionStore + Clone> Peer<S> {
    async fn new(store: S, prefill: usize) -> Result<Self, String> {
        let store = Arc::new(store);
        let mut handles = Vec::new();
        let tasks = 16u64;
        for t in 0..tasks {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut n = t;
                while n < prefill as u64 {
                    for kind in [b'p', b'q'] {
                        let mut rec = Record {
                            id: id(kind, n),
                            data: data(0),
                            expiry_date: expiry(),
                        };
                        // Leftovers of an interrupted run would make create pick another id.
                        store.delete(&rec.id).await.map_err(|e| e.to_string())?;
                        store.create(&mut rec).await.map_err(|e| e.to_string())?;
                    }
                    n += tasks;
                }
                Ok::<(), String>(())
            }));
        }
        for h in handles {
            h.await.map_err(|e| e.to_string())??;
        }
        Ok(Peer {
            store,
            prefill,
            created: HashMap::new(),
        })
    }

    async fn run(
        &mut self,
        op: Op,
        tasks: usize,
        round: u32,
        duration: Duration,
    ) -> runner::PhaseResult {
        let workers: Vec<PeerWorker<S>> = (0..tasks)
            .map(|task| PeerWorker {
                store: self.store.clone(),
                record: Record {
                    id: id(b'p', 0),
                    data: data(0),
                    expiry_date: expiry(),
                },
                prefill: self.prefill,
                op,
                task,
                tasks,
                round,
            })
            .collect();
        let limits = match op {
            Op::Delete => Some(
                self.created
                    .get(&(round, tasks))
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let result = run_phase(workers, duration, limits).await;
        if op == Op::Create {
            self.created.insert((round, tasks), result.per_task.clone());
        }
        result
    }

    async fn teardown(&self) {
        for n in 0..self.prefill as u64 {
            for kind in [b'p', b'q'] {
                let _ = self.store.delete(&id(kind, n)).await;
            }
        }
    }
}

struct PeerWorker<S: SessionStore + Clone> {
    store: Arc<S>,
    record: Record,
    prefill: usize,
    op: Op,
    task: usize,
    tasks: usize,
    round: u32,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl<S: SessionStore + Clone> Worker for PeerWorker<S> {
    async fn op(&mut self, seq: u64) -> Result<(), String> {
        let i = slot(self.task, self.tasks, self.prefill, seq) as u64;
        match self.op {
            Op::Create => {
                self.record.id = id(b'c', created_n(self.round, self.tasks, self.task, seq));
                self.record.expiry_date = expiry();
                self.store.create(&mut self.record).await.map_err(err)
            }
            Op::LoadHit => match self.store.load(&id(b'p', i)).await.map_err(err)? {
                Some(_) => Ok(()),
                None => Err("load hit missed".into()),
            },
            Op::LoadMiss => match self.store.load(&id(b'm', i)).await.map_err(err)? {
                None => Ok(()),
                Some(_) => Err("load miss hit".into()),
            },
            // The peer has no touch: its session saves the whole record to move the expiry.
            Op::Update | Op::Touch => {
                self.record.id = id(b'p', i);
                self.record.expiry_date = expiry();
                self.store.save(&self.record).await.map_err(err)
            }
            Op::LoadUpdate => {
                let Some(mut rec) = self.store.load(&id(b'p', i)).await.map_err(err)? else {
                    return Err("load+update missed".into());
                };
                rec.data
                    .insert("csrf_token".into(), Value::from(format!("csrf{seq:028}")));
                rec.expiry_date = expiry();
                self.store.save(&rec).await.map_err(err)
            }
            Op::Request => {
                let session = Session::new(Some(id(b'q', i)), self.store.clone(), None);
                let user: Option<String> = session.get("user_id").await.map_err(err)?;
                let csrf: Option<String> = session.get("csrf_token").await.map_err(err)?;
                if user.is_none() || csrf.is_none() {
                    return Err("request: session data missing".into());
                }
                session
                    .insert("csrf_token", format!("csrf{seq:028}"))
                    .await
                    .map_err(err)?;
                session.save().await.map_err(err)
            }
            Op::Delete => {
                let n = created_n(self.round, self.tasks, self.task, seq);
                self.store.delete(&id(b'c', n)).await.map_err(err)
            }
        }
    }
}

enum AnyPeer {
    Memory(Peer<MemoryStore>),
    Redis(Peer<RedisStore<Pool>>),
    Postgres(Peer<PostgresStore>),
    Sqlite(Peer<SqliteStore>),
}

macro_rules! each {
    ($peer:expr, $p:ident => $body:expr) => {
        match $peer {
            AnyPeer::Memory($p) => $body,
            AnyPeer::Redis($p) => $body,
            AnyPeer::Postgres($p) => $body,
            AnyPeer::Sqlite($p) => $body,
        }
    };
}

async fn setup(cmd: &Value) -> Result<AnyPeer, String> {
    let backend = cmd["backend"].as_str().unwrap_or_default();
    let url = cmd["url"].as_str().unwrap_or_default();
    let prefill = cmd["prefill"].as_u64().unwrap_or(1000) as usize;
    let table = cmd["table"].as_str().unwrap_or("bench_peer");
    let pool_size = cmd["pool"].as_u64().unwrap_or(16) as u32;
    Ok(match backend {
        "memory" => AnyPeer::Memory(Peer::new(MemoryStore::default(), prefill).await?),
        "redis" => {
            let config = Config::from_url(url).map_err(err)?;
            let pool = Builder::from_config(config)
                .build_pool(pool_size as usize)
                .map_err(err)?;
            pool.init().await.map_err(err)?;
            AnyPeer::Redis(Peer::new(RedisStore::new(pool), prefill).await?)
        }
        "postgres" => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(pool_size)
                .connect(url)
                .await
                .map_err(err)?;
            sqlx::query(&format!("DROP TABLE IF EXISTS tower_sessions.{table}"))
                .execute(&pool)
                .await
                .map_err(err)?;
            let store = PostgresStore::new(pool).with_table_name(table)?;
            store.migrate().await.map_err(err)?;
            AnyPeer::Postgres(Peer::new(store, prefill).await?)
        }
        "sqlite" => {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().map_err(err)?;
            let options = options
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(pool_size)
                .connect_with(options)
                .await
                .map_err(err)?;
            let store = SqliteStore::new(pool).with_table_name(table)?;
            store.migrate().await.map_err(err)?;
            AnyPeer::Sqlite(Peer::new(store, prefill).await?)
        }
        other => return Err(format!("unknown backend {other:?}")),
    })
}

async fn handle(peer: &mut Option<AnyPeer>, line: &str) -> Value {
    let cmd: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"error": format!("bad command: {e}")}),
    };
    match cmd["cmd"].as_str().unwrap_or_default() {
        "setup" => match setup(&cmd).await {
            Ok(p) => {
                *peer = Some(p);
                json!({"ok": true})
            }
            Err(e) => json!({"error": e}),
        },
        "run" => {
            let Some(p) = peer.as_mut() else {
                return json!({"error": "run before setup"});
            };
            let Some(op) = cmd["op"].as_str().and_then(Op::parse) else {
                return json!({"error": "unknown op"});
            };
            let tasks = cmd["tasks"].as_u64().unwrap_or(1) as usize;
            let round = cmd["round"].as_u64().unwrap_or(0) as u32;
            let duration = Duration::from_millis(cmd["duration_ms"].as_u64().unwrap_or(1000));
            each!(p, p => p.run(op, tasks, round, duration).await.to_json())
        }
        "teardown" => {
            if let Some(p) = peer.take() {
                each!(&p, p => p.teardown().await);
            }
            json!({"ok": true})
        }
        other => json!({"error": format!("unknown command {other:?}")}),
    }
}

#[tokio::main]
async fn main() {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut peer = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "quit" {
            break;
        }
        let answer = handle(&mut peer, &line).await;
        let mut out = answer.to_string();
        out.push('\n');
        if stdout.write_all(out.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
            break;
        }
    }
}
