//! RSS and open file descriptors of a process, from `/proc` (Linux).

/// One sample of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Seconds since the run started.
    pub at_secs: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Open file descriptors (sockets included).
    pub fds: u64,
}

/// Samples `pid` now (`None` when the process is gone or `/proc` is unreadable).
pub fn sample(pid: u32, at_secs: u64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at_secs,
        rss_kib,
        fds,
    })
}

/// The verdict on a series of samples of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trend {
    /// The first sample after warm-up.
    pub warm: Sample,
    /// The last sample.
    pub last: Sample,
    /// The largest RSS after warm-up, KiB.
    pub max_rss_kib: u64,
    /// The most descriptors after warm-up.
    pub max_fds: u64,
    /// RSS grew by at most 20% + 8 MiB and descriptors by at most 16 after warm-up.
    pub flat: bool,
}

/// Judges the samples taken at or after `warmup_secs`.
///
/// # Examples
///
/// ```
/// use session_reliability::proc_stats::{trend, Sample};
/// let s = |at_secs, rss_kib, fds| Sample { at_secs, rss_kib, fds };
/// let t = trend(&[s(0, 1000, 10), s(10, 20_000, 30), s(20, 20_500, 31)], 5).unwrap();
/// assert!(t.flat);
/// let t = trend(&[s(10, 20_000, 30), s(20, 90_000, 31)], 5).unwrap();
/// assert!(!t.flat);
/// ```
pub fn trend(samples: &[Sample], warmup_secs: u64) -> Option<Trend> {
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_secs >= warmup_secs)
        .collect();
    let warm = **after.first()?;
    let last = **after.last()?;
    let max_rss_kib = after.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let max_fds = after.iter().map(|s| s.fds).max().unwrap_or(0);
    let flat =
        last.rss_kib <= warm.rss_kib + warm.rss_kib / 5 + 8 * 1024 && max_fds <= warm.fds + 16;
    Some(Trend {
        warm,
        last,
        max_rss_kib,
        max_fds,
        flat,
    })
}
