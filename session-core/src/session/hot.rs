//! Hot sessions: saves of one session inside one process take turns, so that concurrent
//! requests on the same session do not make each other's compare-and-swap fail.
//!
//! One process-wide table of striped async locks (no map to grow or prune). The holder of a
//! key's stripe is the only writer of that key in this process; when it writes, it leaves
//! the record it wrote in the stripe for the writers queued behind it, who replay their
//! changes on it instead of failing a compare-and-swap and reloading. So a queue of N saves
//! on one session costs N writes, and conflicts remain only between processes (the
//! compare-and-swap in the store stays the only source of truth: a stale remembered record
//! only costs the usual conflict and reload). What a stripe remembers is small (records up
//! to 16 KiB), short-lived (ignored after one second) and dropped when its key is deleted.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use crate::{Record, SessionKey};

const STRIPES: usize = 1024;
/// Records larger than this are not remembered (they are reloaded after a conflict).
const MAX_REMEMBERED: usize = 16 << 10;
/// How long a remembered record is worth replaying on.
const FRESH_FOR: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Latest {
    /// Which store the record belongs to (the address of the store object).
    store: usize,
    record: Option<(Record, Instant)>,
}

static STRIPES_TABLE: LazyLock<Box<[Mutex<Latest>]>> =
    LazyLock::new(|| (0..STRIPES).map(|_| Mutex::default()).collect());

fn stripe_of(key: &SessionKey) -> &'static Mutex<Latest> {
    // Keys are random, so any mix of their bytes spreads evenly: 8 bytes per step (a
    // multiply per word, not per byte), and the stripe from the high half (the bits of a
    // product that every bit of its operands reaches).
    let words = key.as_str().as_bytes().chunks_exact(8);
    // Keys are 32 bytes: there is no tail, but any would count.
    let tail = words.remainder().iter().map(|&b| u64::from(b));
    let hash = words
        .map(|w| u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or_default()))
        .chain(tail)
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, w| {
            (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
    &STRIPES_TABLE[((hash >> 32) % STRIPES as u64) as usize]
}

/// This process's turn to write one key of one store.
pub(crate) struct WriteTurn {
    guard: MutexGuard<'static, Latest>,
    store: usize,
}

impl WriteTurn {
    /// Waits for the turn to write `key` in the store at address `store`.
    pub(crate) async fn take(store: usize, key: &SessionKey) -> Self {
        Self {
            guard: stripe_of(key).lock().await,
            store,
        }
    }

    /// The record the previous holder wrote for `key`, if it is still remembered.
    pub(crate) fn latest(&self, key: &SessionKey) -> Option<&Record> {
        if self.guard.store != self.store {
            return None;
        }
        match &self.guard.record {
            Some((record, at)) if &record.key == key && at.elapsed() < FRESH_FOR => Some(record),
            _ => None,
        }
    }

    /// Leaves `record` (just written) for the writers that come next.
    pub(crate) fn remember(&mut self, record: Record) {
        if record.data.len() > MAX_REMEMBERED {
            self.forget();
            return;
        }
        self.guard.store = self.store;
        self.guard.record = Some((record, Instant::now()));
    }

    /// Drops what is remembered (the key was deleted, or the write failed).
    pub(crate) fn forget(&mut self) {
        self.guard.record = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    #[test]
    fn keys_spread_over_the_stripes() {
        let mut used = vec![0u32; STRIPES];
        for _ in 0..STRIPES * 8 {
            let stripe = stripe_of(&SessionKey::generate());
            let i = STRIPES_TABLE
                .iter()
                .position(|s| std::ptr::eq(s, stripe))
                .expect("a stripe of the table");
            used[i] += 1;
        }
        // 8 keys per stripe on average: a fair spread leaves few empty and none crowded.
        assert!(
            used.iter().filter(|&&n| n == 0).count() < STRIPES / 50,
            "{used:?}"
        );
        assert!(used.iter().all(|&n| n < 40), "{used:?}");
    }

    #[tokio::test]
    async fn remembers_for_the_next_writer_of_the_same_key_and_store() {
        let key = SessionKey::generate();
        let record = Record::new(key.clone(), "x".into(), Utc::now() + Duration::hours(1));
        let mut turn = WriteTurn::take(1, &key).await;
        assert!(turn.latest(&key).is_none());
        turn.remember(record.clone());
        drop(turn);
        let turn = WriteTurn::take(1, &key).await;
        assert_eq!(turn.latest(&key).map(|r| r.data.as_str()), Some("x"));
        assert!(turn.latest(&SessionKey::generate()).is_none());
        drop(turn);
        // Another store never sees it.
        let mut turn = WriteTurn::take(2, &key).await;
        assert!(turn.latest(&key).is_none());
        // Large records are not kept; forget drops.
        let mut big = record.clone();
        big.data = "y".repeat(MAX_REMEMBERED + 1);
        turn.remember(big);
        assert!(turn.latest(&key).is_none());
        turn.remember(record);
        turn.forget();
        assert!(turn.latest(&key).is_none());
    }
}
