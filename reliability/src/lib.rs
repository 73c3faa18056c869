//! # session-reliability
//!
//! Drivers for the reliability checks of the session crates (not published):
//!
//! - `soak`: mixed HTTP traffic against the demo app (`examples/web`, two processes
//!   sharing one store), checked against a model of what each client was told: no
//!   acknowledged write lost, no logged-out or revoked session readable, no resurrection of
//!   a dead key, no key issued twice; RSS and open file descriptors of the app processes
//!   sampled and required flat after warm-up. With `--session-age-secs` (the apps'
//!   `SESSION_AGE_SECONDS`; `scripts/soak` uses 4 s) it also checks expiry: some clients
//!   go idle past the age and must then find their sessions gone (anonymous, empty, the old
//!   data never back, a write gets a new, empty session), others keep theirs alive by
//!   writes; see [`model`]'s "Expiry".
//! - `faults`: the same traffic while a store server is stopped (`SIGSTOP`) or killed
//!   (`SIGKILL`) and restarted: how many requests got an answer within the timeout + 10%,
//!   which status codes (503 with `Retry-After`), how long until requests succeed again,
//!   and whether acknowledged writes survived.
//!
//! `scripts/soak`, `scripts/faults` and `scripts/reliability-ci` start the servers and the
//! app, run these drivers, and write `RELIABILITY.md`.
#![forbid(unsafe_code)]

pub mod http;
pub mod model;
pub mod proc_stats;

/// A small deterministic random source (seeded; `fastrand`).
pub type Rng = fastrand::Rng;

/// Parses `--name value` pairs from the command line (every flag takes a value).
///
/// # Examples
///
/// ```
/// let args = session_reliability::Args::parse(
///     ["--seconds", "5", "--urls", "a,b"].iter().map(|s| s.to_string()),
/// )
/// .unwrap();
/// assert_eq!(args.get_u64("seconds", 60).unwrap(), 5);
/// assert_eq!(args.list("urls"), vec!["a", "b"]);
/// assert_eq!(args.get("missing"), None);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    /// Reads the pairs; an odd flag or one without `--` is an error.
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut pairs = Vec::new();
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                return Err(format!("expected --flag, got {flag:?}"));
            };
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            pairs.push((name.to_owned(), value));
        }
        Ok(Self { pairs })
    }

    /// The value of `--name`, if given (the last one wins).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `--name` as a number, or `default`.
    pub fn get_u64(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| format!("--{name} {v:?} is not a number: {e}")),
        }
    }

    /// `--name` split at commas (empty when not given).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}
