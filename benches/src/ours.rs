//! Our side: any [`SessionStore`] driven through the store trait, plus the [`Session`]
//! handle for the `request` operation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use session_core::chrono::{Duration as TimeDelta, Utc};
use session_core::{Codec, JsonCodec, Record, Session, SessionConfig, SessionKey, SessionStore};

use crate::runner::{created_n, key, session_map, slot, Op, Worker, TTL_SECS};

/// The keys and versions one of our stores was prefilled with.
pub struct OursState {
    /// The store under test.
    pub store: Arc<dyn SessionStore>,
    /// Handle configuration for `request`.
    pub config: Arc<SessionConfig>,
    /// Prefilled keys for store-level operations.
    pub keys: Arc<Vec<SessionKey>>,
    /// Current version of each prefilled key (kept exact: tasks own disjoint slices).
    pub versions: Arc<Vec<AtomicU64>>,
    /// Prefilled keys for handle requests (their versions move without us tracking them).
    pub request_keys: Arc<Vec<SessionKey>>,
    /// Keys never stored.
    pub miss_keys: Arc<Vec<SessionKey>>,
    /// Encoded session map.
    pub data: String,
}

fn parse(k: String) -> SessionKey {
    SessionKey::try_from(k).expect("benchmark keys are valid session keys")
}

/// The encoded benchmark session.
pub fn encoded(variant: u32) -> String {
    JsonCodec
        .encode(&session_map(variant))
        .expect("the benchmark map encodes")
}

fn record(key: SessionKey, data: String) -> Record {
    Record::new(key, data, Utc::now() + TimeDelta::seconds(TTL_SECS as i64))
}

impl OursState {
    /// Prefills `store` with `prefill` sessions for store operations and as many for
    /// handle requests, using `tasks` concurrent writers.
    pub async fn prefill(
        store: Arc<dyn SessionStore>,
        prefill: usize,
        tasks: usize,
    ) -> Result<OursState, String> {
        let data = encoded(0);
        let keys: Vec<SessionKey> = (0..prefill as u64).map(|n| parse(key(b'p', n))).collect();
        let request_keys: Vec<SessionKey> =
            (0..prefill as u64).map(|n| parse(key(b'q', n))).collect();
        let miss_keys: Vec<SessionKey> = (0..prefill as u64).map(|n| parse(key(b'm', n))).collect();
        let all: Arc<Vec<SessionKey>> =
            Arc::new(keys.iter().chain(request_keys.iter()).cloned().collect());
        let mut handles = Vec::new();
        for t in 0..tasks {
            let store = store.clone();
            let all = all.clone();
            let data = data.clone();
            handles.push(tokio::spawn(async move {
                let mut i = t;
                while i < all.len() {
                    let rec = record(all[i].clone(), data.clone());
                    // A previous run may have left the key: replace it.
                    store
                        .delete(&rec.key)
                        .await
                        .map_err(|e| format!("prefill delete: {e}"))?;
                    store
                        .create(&rec)
                        .await
                        .map_err(|e| format!("prefill create: {e}"))?;
                    i += tasks;
                }
                Ok::<(), String>(())
            }));
        }
        for h in handles {
            h.await.map_err(|e| e.to_string())??;
        }
        Ok(OursState {
            store,
            config: Arc::new(SessionConfig::default()),
            versions: Arc::new((0..keys.len()).map(|_| AtomicU64::new(1)).collect()),
            keys: Arc::new(keys),
            request_keys: Arc::new(request_keys),
            miss_keys: Arc::new(miss_keys),
            data,
        })
    }

    /// One worker per task for `op`.
    pub fn workers(&self, op: Op, tasks: usize, round: u32) -> Vec<OursWorker> {
        (0..tasks)
            .map(|task| OursWorker {
                store: self.store.clone(),
                config: self.config.clone(),
                keys: self.keys.clone(),
                versions: self.versions.clone(),
                request_keys: self.request_keys.clone(),
                miss_keys: self.miss_keys.clone(),
                record: record(self.keys[0].clone(), self.data.clone()),
                data_b: encoded(1),
                op,
                task,
                tasks,
                round,
            })
            .collect()
    }
}

/// One task of one phase against one of our stores.
pub struct OursWorker {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    keys: Arc<Vec<SessionKey>>,
    versions: Arc<Vec<AtomicU64>>,
    request_keys: Arc<Vec<SessionKey>>,
    miss_keys: Arc<Vec<SessionKey>>,
    record: Record,
    data_b: String,
    op: Op,
    task: usize,
    tasks: usize,
    round: u32,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Worker for OursWorker {
    async fn op(&mut self, seq: u64) -> Result<(), String> {
        let i = slot(self.task, self.tasks, self.keys.len(), seq);
        match self.op {
            Op::Create => {
                let n = created_n(self.round, self.tasks, self.task, seq);
                self.record.key = parse(key(b'c', n));
                self.record.version = 1;
                self.store.create(&self.record).await.map_err(err)
            }
            Op::LoadHit => match self.store.load(&self.keys[i]).await.map_err(err)? {
                Some(_) => Ok(()),
                None => Err("load hit missed".into()),
            },
            Op::LoadMiss => match self.store.load(&self.miss_keys[i]).await.map_err(err)? {
                None => Ok(()),
                Some(_) => Err("load miss hit".into()),
            },
            Op::Update => {
                self.record.key = self.keys[i].clone();
                self.record.version = self.versions[i].load(Ordering::Relaxed);
                let v = self.store.update(&self.record).await.map_err(err)?;
                self.versions[i].store(v, Ordering::Relaxed);
                Ok(())
            }
            Op::Touch => {
                let at = Utc::now() + TimeDelta::seconds(TTL_SECS as i64);
                match self.store.touch(&self.keys[i], at).await.map_err(err)? {
                    true => Ok(()),
                    false => Err("touch found no session".into()),
                }
            }
            Op::LoadUpdate => {
                let Some(mut rec) = self.store.load(&self.keys[i]).await.map_err(err)? else {
                    return Err("load+update missed".into());
                };
                rec.data.clone_from(&self.data_b);
                let v = self.store.update(&rec).await.map_err(err)?;
                self.versions[i].store(v, Ordering::Relaxed);
                Ok(())
            }
            Op::Request => {
                let k = &self.request_keys[i];
                let session = Session::with_key(
                    self.store.clone(),
                    self.config.clone(),
                    Some(k.clone()),
                    true,
                );
                let user: Option<String> = session.get("user_id").await.map_err(err)?;
                let csrf: Option<String> = session.get("csrf_token").await.map_err(err)?;
                if user.is_none() || csrf.is_none() {
                    return Err("request: session data missing".into());
                }
                session
                    .insert("csrf_token", format!("csrf{seq:028}"))
                    .await
                    .map_err(err)?;
                session.save().await.map_err(err)?;
                Ok(())
            }
            Op::Delete => {
                let n = created_n(self.round, self.tasks, self.task, seq);
                match self.store.delete(&parse(key(b'c', n))).await.map_err(err)? {
                    true => Ok(()),
                    false => Err("delete found no session".into()),
                }
            }
        }
    }
}
