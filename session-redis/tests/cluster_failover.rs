//! A Redis Cluster failover under load (`SESSION_TEST_REDIS_CLUSTER_URLS`; the cluster
//! needs a replica per master, as `scripts/services.sh` starts it): `CLUSTER FAILOVER` on
//! the replica of one master while a few tasks create, update and load sessions. During
//! the switch operations may answer `Unavailable`; afterwards the same store must work
//! again on the promoted master, without a restart, within a bound. Prints the time to
//! recover and how many acknowledged writes the failover lost.
//!
//! The test fails the cluster back at its end, so the topology is as it started.
//! Compiled only with the `cluster` and `redis-tests` features.
#![cfg(all(feature = "cluster", feature = "redis-tests"))]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore, StoreError};
use session_redis::redis;
use session_redis::RedisStore;

/// The bound on recovery: the cluster's node timeout is 2 s (services.sh).
const RECOVERY_BOUND: Duration = Duration::from_secs(15);
const TASKS: usize = 4;

async fn node(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connection to a cluster node")
}

/// `(id, "host:port", is_master, master_id)` per line of `CLUSTER NODES`.
fn nodes(text: &str) -> Vec<(String, String, bool, String)> {
    text.lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            let addr = p.get(1)?.split('@').next()?.to_owned();
            let flags = p.get(2)?;
            Some((
                p[0].to_owned(),
                addr,
                flags.contains("master"),
                p.get(3)?.to_string(),
            ))
        })
        .collect()
}

async fn cluster_nodes(url: &str) -> Vec<(String, String, bool, String)> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut node(url).await)
        .await
        .expect("CLUSTER NODES");
    nodes(&text)
}

/// The replica of the master at `master_url`, as a URL.
async fn replica_of(master_url: &str) -> String {
    let all = cluster_nodes(master_url).await;
    let addr = master_url.trim_start_matches("redis://");
    let (id, ..) = all
        .iter()
        .find(|(_, a, m, _)| a == addr && *m)
        .unwrap_or_else(|| panic!("{master_url} is not a master: {all:?}"));
    let (_, replica, ..) = all
        .iter()
        .find(|(_, _, m, of)| !*m && of == id)
        .unwrap_or_else(|| {
            panic!(
                "the master {master_url} has no replica: the failover test needs the \
                 cluster of scripts/services.sh (a replica per master)"
            )
        });
    format!("redis://{replica}")
}

/// Sends `CLUSTER FAILOVER` to the replica at `url` and waits until every node of the
/// cluster sees it as a master (so later tests see a settled topology).
async fn fail_over_to(url: &str) -> Instant {
    let at = Instant::now();
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query_async(&mut node(url).await)
        .await
        .expect("CLUSTER FAILOVER");
    let addr = url.trim_start_matches("redis://").to_owned();
    let peers: Vec<String> = cluster_nodes(url)
        .await
        .into_iter()
        .map(|(_, a, ..)| format!("redis://{a}"))
        .collect();
    for peer in peers {
        loop {
            let all = cluster_nodes(&peer).await;
            let masters = all.iter().filter(|(_, _, m, _)| *m).count();
            if masters == 3 && all.iter().any(|(_, a, m, _)| *a == addr && *m) {
                break;
            }
            assert!(
                at.elapsed() < RECOVERY_BOUND,
                "{url} never became a master for {peer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    at
}

#[derive(Default)]
struct Tally {
    ok: u64,
    unavailable: u64,
    other: Vec<String>,
    last_error: Option<Instant>,
    /// Acknowledged state: key -> last acknowledged version.
    acked: HashMap<SessionKey, u64>,
}

async fn load_task(store: RedisStore, stop: Arc<AtomicBool>) -> Tally {
    let mut t = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let mut r = Record::new(
            SessionKey::generate(),
            "j1:{}".into(),
            Utc::now() + TimeDelta::hours(1),
        );
        let res: Result<(), StoreError> = async {
            store.create(&r).await?;
            t.acked.insert(r.key.clone(), r.version);
            r.data = "j1:{\"n\":1}".into();
            r.version = store.update(&r).await?;
            t.acked.insert(r.key.clone(), r.version);
            store.load(&r.key).await?;
            Ok(())
        }
        .await;
        match res {
            Ok(()) => t.ok += 1,
            Err(e) => {
                t.last_error = Some(Instant::now());
                if e.is_unavailable() {
                    t.unavailable += 1;
                } else {
                    t.other.push(e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_under_load_recovers_without_restart() {
    let urls = common::cluster_urls();
    let master = urls[0].clone();
    let replica = replica_of(&master).await;
    let store = RedisStore::builder()
        .cluster_urls(urls.clone())
        .key_prefix(common::prefix("failover"))
        .response_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .wait_timeout(Duration::from_millis(500))
        .build()
        .expect("build cluster store");
    store.ping().await.expect("ping");

    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| tokio::spawn(load_task(store.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failed_over = fail_over_to(&replica).await;
    let promoted = failed_over.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.expect("task");
        all.ok += t.ok;
        all.unavailable += t.unavailable;
        all.other.extend(t.other);
        all.last_error = all.last_error.max(t.last_error);
        all.acked.extend(t.acked);
    }

    // The same store works on the new master, without a restart, within the bound.
    let deadline = failed_over + RECOVERY_BOUND;
    let mut streak = 0;
    let mut recovered_at = None;
    while streak < 50 {
        assert!(
            Instant::now() < deadline,
            "the store did not recover within {RECOVERY_BOUND:?} of the failover"
        );
        let r = Record::new(
            SessionKey::generate(),
            "j1:{}".into(),
            Utc::now() + TimeDelta::hours(1),
        );
        match store.create(&r).await {
            Ok(()) => {
                streak += 1;
                recovered_at.get_or_insert_with(Instant::now);
            }
            Err(e) => {
                streak = 0;
                recovered_at = None;
                all.last_error = Some(Instant::now());
                assert!(e.is_unavailable(), "after the failover: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let mut lost = 0;
    for (key, version) in &all.acked {
        match store.load(key).await.expect("load after the failover") {
            Some(r) if r.version >= *version => {}
            _ => lost += 1,
        }
    }
    let recovery = all
        .last_error
        .filter(|e| *e > failed_over)
        .map_or(Duration::ZERO, |e| e - failed_over);
    println!(
        "cluster failover: replica promoted in {promoted:?}; {} ok rounds, {} Unavailable, \
         {} other errors {:?}; last error {recovery:?} after the failover; {lost} of {} \
         acknowledged writes lost",
        all.ok,
        all.unavailable,
        all.other.len(),
        all.other.iter().take(3).collect::<Vec<_>>(),
        all.acked.len()
    );
    assert!(all.ok > 0, "the load ran");
    assert!(
        all.other.is_empty(),
        "only Unavailable during the switch: {:?}",
        all.other
    );
    assert_eq!(
        lost, 0,
        "a coordinated CLUSTER FAILOVER loses no acknowledged write"
    );

    // Fail back, so the cluster is left as it started.
    fail_over_to(&master).await;
}
