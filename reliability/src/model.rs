//! The traffic and its checker: groups of clients (one user per group, two or more
//! devices each) run operations one at a time per group (so the model of what each client
//! was told is exact), groups run concurrently, and every response is checked against the
//! model.
//!
//! What is checked:
//!
//! - **no acknowledged write lost**: a counter increment or cart item answered `303` is on
//!   every later page of that session (bursts of concurrent increments on one session
//!   included);
//! - **no logged-out or revoked session readable**: after logout, after "log out other
//!   devices" and after a login rotated the key, the old key reads as an empty anonymous
//!   session, on either app process;
//! - **no resurrection**: a write with a dead key never brings it back (the server issues a
//!   new key);
//! - **no key reused**: every key the server issues is new;
//! - the devices page and "log out other devices" count exactly the user's live sessions;
//! - **expiry**, when the run knows the app's session age ([`GroupOptions::session_age`],
//!   the demo's `SESSION_AGE_SECONDS`): see below.
//!
//! A failed request (no response, or a 5xx) is not a violation by itself: the client's
//! model becomes uncertain, and its next read accepts any state that keeps every
//! acknowledged write (a write that failed may or may not have happened).
//!
//! # Expiry
//!
//! The session age is Django's `SESSION_COOKIE_AGE` as this library implements it
//! (`SessionConfig::with_idle_timeout`): an idle timeout that only a *save* restarts. Every
//! request that saves the session (a login, a counter or cart write) sets its expiry to the
//! moment of the save plus the age; a request that only reads it (the home page, the devices
//! page, "log out other devices" for the requesting session) leaves it, as Django does
//! without `SESSION_SAVE_EVERY_REQUEST`. The library adds a read-time touch, but only when it
//! would move the expiry by at least the touch interval (one minute, the demo's default);
//! a touch moves it by the time since the last save, so with an age of at most a minute
//! ([`MAX_MODELLED_AGE`]) a live session never gets one.
//!
//! The model keeps, for each client's session, the [`Window`] its expiry lies in: the last
//! save's request sent + age to its answer received + age (the save happened in between).
//! For a request sent at `sent` and answered at `recv` ([`Timing`], the driver's monotonic
//! clock), [`Window::at`] says what it may have found, with [`EXPIRY_MARGIN`] of tolerance:
//!
//! - [`Liveness::Live`]: answered before the window begins, so the session was there. Every
//!   check above applies unchanged: a read must show every acknowledged write (no early
//!   expiry; a session kept alive by writes past the age counts in
//!   [`Global::kept_alive`]).
//! - [`Liveness::Expired`]: sent after the window ends, so it must find the session gone: a
//!   read shows an anonymous, empty page (never the old data); a write gets a new key and
//!   starts from empty (never the old key, never the old data: the next read checks it); a
//!   login starts an empty session; the devices page and "log out other devices" treat the
//!   client as logged out, and the user's other clients' expired sessions are no longer
//!   counted among the user's sessions.
//! - [`Liveness::Either`]: a request that started before the expiry may still have seen the
//!   session. The answer tells which: a page with the data (then checked exactly) or an empty
//!   one; a write that kept the key or got a new one (or a 400, `SessionInterrupted`: loaded
//!   before the expiry, saved after it); the redirect of the devices pages. A login in the
//!   window (data kept or not, the key changes either way) is followed at once by a read that
//!   tells.
//!
//! A session found expired counts in [`Global::expired`], and its key joins the dead keys
//! that the dead-key probes read and write with from then on (empty, anonymous, never
//! re-issued). The driver never drops a cookie when its `Max-Age` runs out, as a browser
//! would: it sends the expired key, so the server alone must refuse it. To make expiries
//! happen, every client of a group but the first goes idle now and then ([`IdlePlan`]):
//! past the age, around it, with writes spaced closer than the age (kept alive), or with
//! reads only (which must not keep it alive); the first client keeps its sessions alive by
//! activity.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http::{self, CookieChange, Reply};
use crate::Rng;

/// The most items the demo app keeps in a cart.
pub const MAX_CART_ITEMS: usize = 50;

/// The tolerance of every expiry judgement: a request counts as having certainly found a
/// session live only if it was answered this long before the session's expiry window
/// begins, and as having certainly found it expired only if it was sent this long after the
/// window ends.
///
/// The window's bounds are taken by the driver around the save's request (sent before,
/// answer read after), and a later request's `sent`/`recv` likewise enclose every step the
/// app took for it, so request and scheduling delays need no margin. What remains:
///
/// - the app stamps and compares expiries with the wall clock (`Utc::now()` + age at the
///   save, `Utc::now()` or Redis's clock at the load, one host), the driver measures with
///   the monotonic clock; over one age (at most [`MAX_MODELLED_AGE`]) they can drift apart
///   by the kernel's slew limit, 500 ppm: 30 ms at 60 s, 2 ms at the soak's 4 s;
/// - the stores round the expiry down: Redis `PXAT` to the millisecond, SQL to the
///   microsecond (at most 1 ms early).
///
/// 100 ms is over three times the sum at the longest age modelled, and 2.5% of the soak's
/// 4 s age, so the band where either answer is accepted stays narrow. A step of the wall
/// clock during a run (set by hand, an NTP step) would still break the check.
pub const EXPIRY_MARGIN: Duration = Duration::from_millis(100);

/// The longest session age the model handles: up to it, a read never extends a live
/// session (see the module's "Expiry").
pub const MAX_MODELLED_AGE: Duration = Duration::from_secs(60);

/// A burst of concurrent increments is only sent to a session that stays certainly live
/// this long after the burst starts (beyond [`EXPIRY_MARGIN`]); otherwise a plain increment
/// is sent (a burst straddling the expiry would split between the old session and new
/// ones).
const BURST_SLACK: Duration = Duration::from_secs(1);

/// How sure a client's model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// The model is exactly what the server holds.
    Exact,
    /// A write failed: the server holds the model plus maybe some of the failed writes.
    Writes,
    /// A login, logout or revocation failed: any state; resynchronised at the next read.
    Any,
}

/// When a request was sent and when its answer was in, on the driver's monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Before the request was sent.
    pub sent: Instant,
    /// After the whole answer was read (or the request failed).
    pub recv: Instant,
}

/// Where a session's expiry lies: its last save's request was sent at `earliest - age` and
/// answered at `latest - age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The expiry is no earlier than this.
    pub earliest: Instant,
    /// The expiry is no later than this; `None` when a failed write may have saved the
    /// session at a time the model does not know (so it never counts as certainly expired).
    pub latest: Option<Instant>,
}

/// What a request may have found of a session, by the session's [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Certainly live: answered [`EXPIRY_MARGIN`] before the earliest expiry.
    Live,
    /// At the boundary: live or expired, the answer tells.
    Either,
    /// Certainly expired: sent [`EXPIRY_MARGIN`] after the latest expiry.
    Expired,
}

impl Window {
    /// The window of a session saved by a request with timing `t`, for an age of `age`;
    /// `exact`: no failed write may have saved it later.
    pub fn after_save(t: Timing, age: Duration, exact: bool) -> Self {
        Self {
            earliest: t.sent + age,
            latest: exact.then(|| t.recv + age),
        }
    }

    /// What a request with timing `t` may have found.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use session_reliability::model::{Liveness, Timing, Window};
    /// let t0 = Instant::now();
    /// let ms = |n| t0 + Duration::from_millis(n);
    /// // Saved by a request sent at 0 ms, answered at 10 ms; age 4 s.
    /// let w = Window::after_save(Timing { sent: ms(0), recv: ms(10) }, Duration::from_secs(4), true);
    /// assert_eq!(w.at(Timing { sent: ms(3000), recv: ms(3890) }), Liveness::Live);
    /// assert_eq!(w.at(Timing { sent: ms(3950), recv: ms(3960) }), Liveness::Either);
    /// assert_eq!(w.at(Timing { sent: ms(4090), recv: ms(4100) }), Liveness::Either);
    /// assert_eq!(w.at(Timing { sent: ms(4111), recv: ms(4120) }), Liveness::Expired);
    /// ```
    pub fn at(&self, t: Timing) -> Liveness {
        if t.recv + EXPIRY_MARGIN < self.earliest {
            Liveness::Live
        } else if self.latest.is_some_and(|l| t.sent > l + EXPIRY_MARGIN) {
            Liveness::Expired
        } else {
            Liveness::Either
        }
    }
}

/// One client (one browser) and what it was told.
#[derive(Debug, Clone)]
pub struct Client {
    /// The user this client logs in as.
    pub user: String,
    /// The cookie it sends.
    pub cookie: Option<String>,
    /// Logged in, as far as it was told.
    pub logged_in: bool,
    /// The counter it was told.
    pub counter: u64,
    /// The cart it was told.
    pub cart: Vec<String>,
    /// How sure the above is.
    pub certainty: Certainty,
    /// Where the expiry of the session it holds lies (`None`: no session, or expiry not
    /// modelled).
    pub expires: Option<Window>,
    /// When the server issued the key in `cookie` (its session was created no later).
    pub key_since: Option<Instant>,
    /// This session was already counted in [`Global::kept_alive`].
    kept_counted: bool,
    next_item: u64,
    /// Counter increments that failed since the model was last exact (each may or may not
    /// have happened).
    maybe_increments: u64,
    /// Cart items whose write failed since the model was last exact (each may or may not
    /// be in the cart, wherever it was added).
    maybe_items: Vec<String>,
}

impl Client {
    fn new(user: String) -> Self {
        Self {
            user,
            cookie: None,
            logged_in: false,
            counter: 0,
            cart: Vec::new(),
            certainty: Certainty::Exact,
            expires: None,
            key_since: None,
            kept_counted: false,
            next_item: 0,
            maybe_increments: 0,
            maybe_items: Vec::new(),
        }
    }
    /// The server holds a session for this client's cookie (as far as the model knows).
    pub fn live(&self) -> bool {
        self.cookie.is_some() && (self.logged_in || self.counter > 0 || !self.cart.is_empty())
    }
    fn reset(&mut self) {
        self.logged_in = false;
        self.counter = 0;
        self.cart.clear();
        self.expires = None;
        // Failed writes to the session that is gone went there, not to the next one.
        self.maybe_increments = 0;
        self.maybe_items.clear();
    }

    /// What a request with timing `t` may have found of this client's session: always
    /// [`Liveness::Live`] when the model holds no session, knows nothing
    /// ([`Certainty::Any`]) or expiry is not modelled.
    pub fn liveness(&self, t: Timing) -> Liveness {
        match self.expires {
            Some(w) if self.live() && self.certainty != Certainty::Any => w.at(t),
            _ => Liveness::Live,
        }
    }

    /// The session would certainly still be live for a request answered `ahead` from now.
    fn live_for(&self, ahead: Duration) -> bool {
        let now = Instant::now();
        self.liveness(Timing {
            sent: now,
            recv: now + ahead,
        }) == Liveness::Live
    }

    /// The page of a session that is gone: anonymous and empty.
    fn gone(home: &http::Home) -> bool {
        home.user.is_none() && home.counter == 0 && home.cart.is_empty()
    }

    /// With [`Certainty::Writes`]: `home` is what the server may hold, that is the user
    /// as told, every acknowledged increment plus at most every failed one, and every
    /// acknowledged cart item in order with some of the failed items among them
    /// (acknowledged items past a full cart excepted: the app answers 303 and drops
    /// them).
    pub fn keeps(&self, home: &http::Home) -> bool {
        let user_ok = home.user.is_some() == self.logged_in
            && (!self.logged_in || home.user.as_deref() == Some(self.user.as_str()));
        let counter_ok =
            home.counter >= self.counter && home.counter <= self.counter + self.maybe_increments;
        user_ok && counter_ok && self.cart_keeps(&home.cart)
    }

    fn cart_keeps(&self, page: &[String]) -> bool {
        let mut seen = HashSet::new();
        let known = page.iter().all(|item| {
            seen.insert(item) && (self.cart.contains(item) || self.maybe_items.contains(item))
        });
        let acked: Vec<&String> = page
            .iter()
            .filter(|item| !self.maybe_items.contains(item))
            .collect();
        let kept = if page.len() >= MAX_CART_ITEMS {
            acked.len() <= self.cart.len() && acked.iter().zip(&self.cart).all(|(a, b)| *a == b)
        } else {
            acked.len() == self.cart.len() && acked.iter().zip(&self.cart).all(|(a, b)| *a == b)
        };
        known && kept
    }
}

/// One timed request, for the fault report.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Milliseconds since the run started, when the request was sent.
    pub at_ms: u64,
    /// Its duration, ms.
    pub took_ms: u64,
    /// Its status (0: no response).
    pub status: u16,
    /// It carried `Retry-After`.
    pub retry_after: bool,
}

/// Counts and findings shared by every group.
#[derive(Debug, Default)]
pub struct Global {
    issued: HashSet<String>,
    dead: Vec<String>,
    /// Keys put in `dead` (the slot a new one replaces once it is full).
    buried: u64,
    /// Requests per operation.
    pub ops: BTreeMap<&'static str, u64>,
    /// Responses per status (0: no response).
    pub statuses: BTreeMap<u16, u64>,
    /// Requests sent.
    pub requests: u64,
    /// Acknowledged writes (counter increments and cart items answered 303).
    pub acked_writes: u64,
    /// Keys the server issued.
    pub keys_issued: u64,
    /// Sessions ended by logout, login rotation or "log out other devices".
    pub keys_dead: u64,
    /// Sessions (logged in or holding data) found gone after their age passed: a read
    /// showed them empty, a write got a new key, a login started empty, a devices page
    /// redirected. Not counted in `keys_dead`.
    pub expired: u64,
    /// Sessions read with all their data when created more than the age before: kept
    /// alive by writes (each session counted once).
    pub kept_alive: u64,
    /// Reads of dead keys (each checked empty and not resurrected).
    pub dead_probes: u64,
    /// Reads that resynchronised an uncertain model.
    pub resyncs: u64,
    /// Acknowledged writes found missing.
    pub lost_writes: u64,
    /// Every violation found (the first 50 kept with details).
    pub violations: Vec<String>,
    /// Violations in all.
    pub violation_count: u64,
    /// Every request, timed (kept only when `record_events`).
    pub events: Vec<Event>,
    /// Keep `events`.
    pub record_events: bool,
    started: Option<Instant>,
}

impl Global {
    /// A new, empty tally; `record_events` keeps a timeline of every request.
    pub fn new(record_events: bool) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            record_events,
            started: Some(Instant::now()),
            ..Self::default()
        }))
    }
    fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < 50 {
            eprintln!("VIOLATION: {what}");
            self.violations.push(what);
        }
    }
    fn record(&mut self, op: &'static str, sent_at: Instant, reply: &Reply) {
        self.requests += 1;
        *self.ops.entry(op).or_default() += 1;
        *self.statuses.entry(reply.status).or_default() += 1;
        if self.record_events {
            let started = self.started.unwrap_or(sent_at);
            self.events.push(Event {
                at_ms: sent_at.saturating_duration_since(started).as_millis() as u64,
                took_ms: reply.elapsed.as_millis() as u64,
                status: reply.status,
                retry_after: reply.retry_after.is_some(),
            });
        }
    }
    /// A key that must read empty and never come back, for the probes.
    fn bury(&mut self, key: &str) {
        self.buried += 1;
        if self.dead.len() < 4096 {
            self.dead.push(key.to_owned());
        } else {
            let i = self.buried as usize % self.dead.len();
            self.dead[i] = key.to_owned();
        }
    }
    fn kill_key(&mut self, key: &str) {
        self.keys_dead += 1;
        self.bury(key);
    }
    /// A session that expired: counted, and its key buried.
    fn expire_key(&mut self, key: Option<&str>) {
        self.expired += 1;
        if let Some(key) = key {
            self.bury(key);
        }
    }
    /// Failed requests (no response or 5xx).
    pub fn failures(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s == 0 || **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
}

/// What a run of groups needs.
#[derive(Clone)]
pub struct Traffic {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The app processes (base URLs), one picked at random per request.
    pub urls: Arc<Vec<String>>,
    /// The shared tally.
    pub global: Arc<Mutex<Global>>,
    /// Stop starting operations at this instant.
    pub deadline: Instant,
    /// Sleep between two operations of a group (zero: closed loop).
    pub think: Duration,
}

/// What a group does beyond the base traffic ([`run_group_with`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupOptions {
    /// The session age the app runs with (`SESSION_AGE_SECONDS`, at most
    /// [`MAX_MODELLED_AGE`]): expiry is modelled and checked, and every client of the
    /// group but the first goes idle now and then ([`IdlePlan`]). `None`: sessions never
    /// expire during the run (the app's default age, two weeks), nobody idles.
    pub session_age: Option<Duration>,
}

/// The kinds of idle phase of a client (every one starts with a save: a login half the
/// time, then a counter write, so there is a session to expire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePlan {
    /// Idle past the age (+ margin + up to 1 s), then any operation: it must find the
    /// session expired.
    PastTheAge,
    /// Idle for the age ± 300 ms, then any operation: either answer, the answer tells.
    AroundTheAge,
    /// Three counter writes 60% of the age apart, then a read 60% later: alive past the age.
    KeptAliveByWrites,
    /// Two reads 55% of the age apart: the second, 110% after the save, finds it expired.
    ReadsDoNotExtend,
}

/// One planned operation of an idle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A login half the time, then a counter write.
    Save,
    Counter,
    Read,
    /// Any operation, as the traffic mix picks.
    Random,
}

/// A client's idle phases.
#[derive(Debug, Default)]
struct Schedule {
    /// The active phase ends then (`None`: never idles).
    active_until: Option<Instant>,
    /// The planned steps, each after its idle time (from the end of the step before).
    steps: VecDeque<(Duration, Step)>,
    /// When the first of `steps` is due (`None`: active).
    due: Option<Instant>,
    /// While this plan runs, the other clients do not "log out other devices" (which
    /// would end this session before it can expire; they show the devices page instead).
    protect: bool,
}

struct Group {
    t: Traffic,
    rng: Rng,
    clients: Vec<Client>,
    /// The session age, when expiry is modelled.
    age: Option<Duration>,
    schedules: Vec<Schedule>,
    /// A login, logout or revocation failed: the user may have sessions no client holds
    /// (a login that saved its record but answered 5xx); until the next successful "log
    /// out other devices" ends them, the counts are checked as lower bounds.
    ghosts: bool,
    /// The last operations and the model after each (printed with a violation).
    trace: VecDeque<String>,
}

/// Runs one group of `devices` clients of `user` until the deadline, expiry not modelled.
pub async fn run_group(t: Traffic, user: String, devices: usize, seed: u64) {
    run_group_with(t, GroupOptions::default(), user, devices, seed).await;
}

/// Runs one group of `devices` clients of `user` until the deadline.
pub async fn run_group_with(
    t: Traffic,
    options: GroupOptions,
    user: String,
    devices: usize,
    seed: u64,
) {
    let mut g = Group::new(t, options, &user, devices, seed);
    while Instant::now() < g.t.deadline {
        let before = g.g().violation_count;
        let Some(c) = g.step().await else {
            continue;
        };
        g.note(c);
        let after = g.g().violation_count;
        if after > before && after <= 50 && std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("TRACE {user} (violation {after}):");
            for line in &g.trace {
                eprintln!("  {line}");
            }
        }
        if !g.t.think.is_zero() {
            tokio::time::sleep(g.t.think).await;
        }
    }
    // A last read of every client: every acknowledged write must still be there.
    for c in 0..g.clients.len() {
        g.read(c).await;
    }
}

impl Group {
    fn new(t: Traffic, options: GroupOptions, user: &str, devices: usize, seed: u64) -> Self {
        let mut rng = Rng::with_seed(seed);
        let now = Instant::now();
        let schedules = (0..devices)
            .map(|c| Schedule {
                // Staggered first active phases.
                active_until: (options.session_age.is_some() && c > 0)
                    .then(|| now + Duration::from_millis(rng.u64(500..4000))),
                ..Schedule::default()
            })
            .collect();
        Self {
            rng,
            clients: (0..devices).map(|_| Client::new(user.to_owned())).collect(),
            age: options.session_age,
            schedules,
            ghosts: false,
            trace: VecDeque::new(),
            t,
        }
    }

    /// One operation; `None` when the group only waited (every client idle) or a client
    /// just went idle.
    async fn step(&mut self) -> Option<usize> {
        let now = Instant::now();
        if let Some(c) =
            (0..self.clients.len()).find(|&c| self.schedules[c].due.is_some_and(|due| due <= now))
        {
            self.planned(c).await;
            return Some(c);
        }
        let active: Vec<usize> = (0..self.clients.len())
            .filter(|&c| self.schedules[c].due.is_none())
            .collect();
        if active.is_empty() {
            let next = self
                .schedules
                .iter()
                .filter_map(|s| s.due)
                .min()
                .unwrap_or(now)
                .min(self.t.deadline);
            tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
            return None;
        }
        let c = active[self.rng.usize(..active.len())];
        if self.schedules[c]
            .active_until
            .is_some_and(|until| until <= now)
        {
            self.go_idle(c, now);
            return None;
        }
        self.random_op(c).await;
        Some(c)
    }

    /// Client `c` starts an idle phase (see [`IdlePlan`]).
    fn go_idle(&mut self, c: usize, now: Instant) {
        let Some(age) = self.age else {
            self.schedules[c].active_until = None;
            return;
        };
        let plan = match self.rng.u32(..100) {
            0..=39 => IdlePlan::PastTheAge,
            40..=64 => IdlePlan::AroundTheAge,
            65..=84 => IdlePlan::KeptAliveByWrites,
            _ => IdlePlan::ReadsDoNotExtend,
        };
        let mut steps = VecDeque::from([(Duration::ZERO, Step::Save)]);
        match plan {
            IdlePlan::PastTheAge => steps.push_back((
                age + EXPIRY_MARGIN + Duration::from_millis(self.rng.u64(50..1000)),
                Step::Random,
            )),
            IdlePlan::AroundTheAge => {
                let d = age + Duration::from_millis(self.rng.u64(0..600));
                steps.push_back((d.saturating_sub(Duration::from_millis(300)), Step::Random));
            }
            IdlePlan::KeptAliveByWrites => {
                for step in [Step::Counter, Step::Counter, Step::Counter, Step::Read] {
                    steps.push_back((age.mul_f64(0.6), step));
                }
            }
            IdlePlan::ReadsDoNotExtend => {
                for step in [Step::Read, Step::Read] {
                    steps.push_back((age.mul_f64(0.55), step));
                }
            }
        }
        // Three plans in four run to the end; in the others the session may be ended by
        // another client's "log out other devices" while idle, as in the base traffic.
        let protect = self.rng.u32(..4) != 0;
        self.push_trace(format!(
            "  client {c} goes idle: {plan:?} (protected: {protect})"
        ));
        let s = &mut self.schedules[c];
        s.steps = steps;
        s.due = Some(now);
        s.active_until = None;
        s.protect = protect;
    }

    /// The next planned step of client `c`, which is due.
    async fn planned(&mut self, c: usize) {
        let Some((_, step)) = self.schedules[c].steps.pop_front() else {
            self.schedules[c].due = None;
            return;
        };
        match step {
            Step::Save => {
                if self.rng.bool() {
                    self.login(c).await;
                }
                self.counter(c).await;
            }
            Step::Counter => self.counter(c).await,
            Step::Read => self.read(c).await,
            Step::Random => self.random_op(c).await,
        }
        let now = Instant::now();
        let s = &mut self.schedules[c];
        match s.steps.front() {
            Some((idle, _)) => s.due = Some(now + *idle),
            None => {
                s.due = None;
                s.protect = false;
                s.active_until = Some(now + Duration::from_millis(self.rng.u64(500..3000)));
            }
        }
    }

    /// Another client's idle phase must not be ended by "log out other devices".
    fn protected(&self, c: usize) -> bool {
        self.schedules
            .iter()
            .enumerate()
            .any(|(i, s)| i != c && s.protect && !s.steps.is_empty())
    }

    /// One operation on client `c`, by the traffic mix.
    async fn random_op(&mut self, c: usize) {
        let roll = self.rng.u32(..100);
        match roll {
            0..=29 => self.read(c).await,
            30..=49 => self.counter(c).await,
            50..=53 => self.burst(c).await,
            54..=63 => self.cart(c).await,
            64..=73 => self.login(c).await,
            74..=81 => self.devices(c).await,
            82..=85 if self.protected(c) => self.devices(c).await,
            82..=85 => self.logout_others(c).await,
            86..=90 => self.logout(c).await,
            _ => self.probe_dead().await,
        }
    }

    fn push_trace(&mut self, line: String) {
        if self.trace.len() >= 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn trace_reply(&mut self, op: &str, cookie: Option<&str>, reply: &Reply) {
        let short = |k: Option<&str>| k.map(|k| k[..6.min(k.len())].to_owned());
        let set = match &reply.cookie {
            Some(CookieChange::Set(k)) => format!("set {:?}", short(Some(k))),
            Some(CookieChange::Remove) => "remove".to_owned(),
            None => "-".to_owned(),
        };
        let page = http::parse_home(&reply.body)
            .map(|h| {
                format!(
                    " page user={:?} counter={} cart={}",
                    h.user,
                    h.counter,
                    h.cart.len()
                )
            })
            .unwrap_or_default();
        let line = format!(
            "{op} with {:?}: {} {:?} cookie {set}{page} ({} ms)",
            short(cookie),
            reply.status,
            reply.location,
            reply.elapsed.as_millis()
        );
        self.push_trace(line);
    }

    fn note(&mut self, c: usize) {
        let now = Instant::now();
        let state: Vec<String> = self
            .clients
            .iter()
            .map(|cl| {
                let expires = cl
                    .expires
                    .map(|w| {
                        let rel = |at: Instant| {
                            if at >= now {
                                format!("+{}", (at - now).as_millis())
                            } else {
                                format!("-{}", (now - at).as_millis())
                            }
                        };
                        format!(
                            " exp {}..{}ms",
                            rel(w.earliest),
                            w.latest.map_or("?".to_owned(), rel)
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "[{:?} in={} n={} cart={} {:?}{expires}]",
                    cl.cookie.as_deref().map(|k| &k[..6.min(k.len())]),
                    cl.logged_in,
                    cl.counter,
                    cl.cart.len(),
                    cl.certainty
                )
            })
            .collect();
        let line = format!(
            "  -> client {c}; ghosts={} {}",
            self.ghosts,
            state.join(" ")
        );
        self.push_trace(line);
    }

    fn url(&mut self) -> String {
        let i = self.rng.usize(..self.t.urls.len());
        self.t.urls[i].clone()
    }

    async fn send(
        &mut self,
        op: &'static str,
        path: &str,
        cookie: Option<String>,
        form: Option<&[(&str, &str)]>,
    ) -> (Timing, Reply) {
        let base = self.url();
        let sent = Instant::now();
        let reply = http::send(&self.t.http, &base, path, cookie.as_deref(), form).await;
        let recv = Instant::now();
        self.g().record(op, sent, &reply);
        self.trace_reply(op, cookie.as_deref(), &reply);
        (Timing { sent, recv }, reply)
    }

    fn g(&self) -> std::sync::MutexGuard<'_, Global> {
        self.t
            .global
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies a `Set-Cookie`; `rotates`: the operation is meant to issue a new key.
    fn apply_cookie(&mut self, c: usize, reply: &Reply, rotates: bool, t: Timing) {
        let Some(change) = &reply.cookie else { return };
        match change {
            CookieChange::Remove => self.clients[c].cookie = None,
            CookieChange::Set(key) => {
                let same = self.clients[c].cookie.as_deref() == Some(key.as_str());
                if same {
                    if rotates {
                        let msg = format!(
                            "{op} kept key {p}…",
                            op = "login",
                            p = &key[..6.min(key.len())]
                        );
                        self.g().violation(msg);
                    }
                    return;
                }
                let live = self.clients[c].live() && self.clients[c].certainty == Certainty::Exact;
                let mut g = self.g();
                if !g.issued.insert(key.clone()) {
                    g.violation(format!("key reused: {}…", &key[..6.min(key.len())]));
                }
                g.keys_issued += 1;
                if live && !rotates {
                    g.violation("a live session's key changed without a login".to_owned());
                }
                drop(g);
                let cl = &mut self.clients[c];
                cl.cookie = Some(key.clone());
                cl.key_since = Some(t.recv);
                cl.kept_counted = false;
            }
        }
    }

    fn fail(&mut self, c: usize, certainty: Certainty) {
        if certainty == Certainty::Any {
            self.ghosts = true;
        }
        let cl = &mut self.clients[c];
        if certainty == Certainty::Any || cl.certainty == Certainty::Exact {
            cl.certainty = certainty;
        }
        // The failed request may have saved the session, at a time the model cannot bound.
        if let Some(w) = cl.expires.as_mut() {
            w.latest = None;
        }
    }

    /// An acknowledged save of client `c`'s session by a request with timing `t`: its
    /// expiry restarts.
    fn saved(&mut self, c: usize, t: Timing) {
        if let Some(age) = self.age {
            let cl = &mut self.clients[c];
            cl.expires = Some(Window::after_save(t, age, cl.certainty == Certainty::Exact));
        }
    }

    /// Client `c`'s session expired: counted, its key buried, the model emptied (the
    /// client keeps sending the cookie, as it would until the server answers).
    fn expire(&mut self, c: usize) {
        let key = self.clients[c].cookie.clone();
        self.g().expire_key(key.as_deref());
        let cl = &mut self.clients[c];
        cl.reset();
        // Failed writes went to the session that is gone: nothing is left to be unsure of.
        if cl.certainty == Certainty::Writes {
            cl.certainty = Certainty::Exact;
        }
    }

    fn short(key: Option<&str>) -> String {
        key.map_or("none".to_owned(), |k| format!("{}…", &k[..6.min(k.len())]))
    }

    async fn read(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let (t, reply) = self.send("read", "/", cookie, None).await;
        self.on_read(c, t, &reply);
    }

    fn on_read(&mut self, c: usize, t: Timing, reply: &Reply) {
        if reply.is_failure() {
            return;
        }
        let Some(home) = (reply.status == 200)
            .then(|| http::parse_home(&reply.body))
            .flatten()
        else {
            self.g()
                .violation(format!("GET / answered {} with no page", reply.status));
            return;
        };
        let liveness = self.clients[c].liveness(t);
        if liveness != Liveness::Live && !self.aged_read(c, t, reply, &home, liveness) {
            return;
        }
        self.apply_cookie(c, reply, false, t);
        let cl = &self.clients[c];
        let expected_user = cl.logged_in.then(|| cl.user.clone());
        let exact =
            home.user == expected_user && home.counter == cl.counter && home.cart == cl.cart;
        match cl.certainty {
            Certainty::Exact => {
                if !exact {
                    let mut g = self.g();
                    if home.counter < cl.counter || !home.cart.starts_with(&cl.cart) {
                        g.lost_writes += 1;
                    }
                    let what = if home.user.is_some() && !cl.logged_in {
                        "a logged-out or revoked session is readable"
                    } else if home.counter < cl.counter || !home.cart.starts_with(&cl.cart) {
                        "an acknowledged write was lost"
                    } else {
                        "the page differs from what the client was told"
                    };
                    g.violation(format!(
                        "{what}: told user={:?} counter={} cart={}, page user={:?} counter={} cart={}",
                        expected_user,
                        cl.counter,
                        cl.cart.len(),
                        home.user,
                        home.counter,
                        home.cart.len()
                    ));
                } else if liveness == Liveness::Live && cl.live() && !cl.kept_counted {
                    // Created more than the age before this read and still here: kept
                    // alive by its writes (an age counted from creation would have ended it).
                    let old = self
                        .age
                        .zip(cl.key_since)
                        .is_some_and(|(age, since)| t.sent > since + age + EXPIRY_MARGIN);
                    if old {
                        self.g().kept_alive += 1;
                        self.clients[c].kept_counted = true;
                    }
                }
            }
            Certainty::Writes => {
                if !cl.keeps(&home) {
                    let mut g = self.g();
                    g.lost_writes += 1;
                    g.violation(format!(
                        "after a failed write, an acknowledged one was lost: told counter={} cart={}, page counter={} cart={}",
                        cl.counter,
                        cl.cart.len(),
                        home.counter,
                        home.cart.len()
                    ));
                }
            }
            Certainty::Any => {}
        }
        let cl = &mut self.clients[c];
        if cl.certainty != Certainty::Exact {
            let was_any = cl.certainty == Certainty::Any;
            cl.certainty = Certainty::Exact;
            cl.logged_in = home.user.is_some();
            cl.counter = home.counter;
            cl.cart = home.cart;
            cl.maybe_increments = 0;
            cl.maybe_items.clear();
            if self.age.is_some() {
                if !cl.live() {
                    cl.expires = None;
                } else if was_any || cl.expires.is_none() {
                    // Live at this read: the expiry is past its sending; no upper bound.
                    cl.expires = Some(Window {
                        earliest: t.sent,
                        latest: None,
                    });
                }
            }
            self.g().resyncs += 1;
        }
    }

    /// A read of a session whose expiry window has begun ([`Liveness::Either`] or
    /// [`Liveness::Expired`]). Returns `true` when the page is to be checked as live.
    fn aged_read(
        &mut self,
        c: usize,
        t: Timing,
        reply: &Reply,
        home: &http::Home,
        liveness: Liveness,
    ) -> bool {
        let old = self.clients[c].cookie.clone();
        if Client::gone(home) {
            if let (Some(old), Some(CookieChange::Set(new))) = (&old, &reply.cookie) {
                if old == new {
                    self.g().violation(format!(
                        "the expired key {} was set again by a read",
                        Self::short(Some(old))
                    ));
                }
            }
            self.expire(c);
            self.apply_cookie(c, reply, false, t);
            return false;
        }
        if liveness == Liveness::Expired {
            let cl = &self.clients[c];
            let past = cl
                .expires
                .and_then(|w| w.latest)
                .map_or(0, |l| t.sent.saturating_duration_since(l).as_millis());
            let what = if home.counter >= cl.counter
                && cl.counter > 0
                && home.cart.starts_with(&cl.cart)
            {
                "expired data returned"
            } else {
                "an expired session is readable"
            };
            let msg = format!(
                "{what}: key {} read {past} ms after its latest expiry (margin {} ms): told user={:?} counter={} cart={}, page user={:?} counter={} cart={}",
                Self::short(old.as_deref()),
                EXPIRY_MARGIN.as_millis(),
                cl.logged_in.then(|| cl.user.clone()),
                cl.counter,
                cl.cart.len(),
                home.user,
                home.counter,
                home.cart.len()
            );
            self.g().violation(msg);
            // The server still holds it: resynchronise at the next read, without judging it
            // again.
            self.clients[c].certainty = Certainty::Any;
            return false;
        }
        true
    }

    async fn counter(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let (t, reply) = self.send("counter", "/counter", cookie, Some(&[])).await;
        self.on_counter(c, t, &reply);
    }

    fn on_counter(&mut self, c: usize, t: Timing, reply: &Reply) {
        if reply.is_failure() {
            self.clients[c].maybe_increments += 1;
            self.fail(c, Certainty::Writes);
            return;
        }
        if !self.aged_write(c, t, reply, "POST /counter") {
            return;
        }
        if reply.status != 303 {
            self.g()
                .violation(format!("POST /counter answered {}", reply.status));
            return;
        }
        if !self.clients[c].live() {
            // A new session (no cookie, or a dead one): it starts empty.
            self.clients[c].reset();
        }
        self.apply_cookie(c, reply, false, t);
        self.clients[c].counter += 1;
        self.g().acked_writes += 1;
        self.saved(c, t);
    }

    /// A counter or cart write with timing `t` to a session whose expiry window has begun:
    /// the answer says whether it found the session. Returns `true` when the write is to
    /// be handled as usual (the session was there, or it was gone and the model now holds
    /// no session, so the write starts a new one).
    fn aged_write(&mut self, c: usize, t: Timing, reply: &Reply, what: &str) -> bool {
        let liveness = self.clients[c].liveness(t);
        if liveness == Liveness::Live {
            return true;
        }
        let cl = &self.clients[c];
        let old = cl.cookie.clone();
        let full = what == "POST /cart" && cl.cart.len() >= MAX_CART_ITEMS;
        match (reply.status, &reply.cookie) {
            (303, Some(CookieChange::Set(new))) if Some(new) != old.as_ref() => {
                // A new session: the old one was gone. The usual path starts it empty.
                self.expire(c);
                true
            }
            (303, _) if liveness == Liveness::Expired => {
                self.g().violation(format!(
                    "{what} with the expired key {} was answered without a new key (cookie {:?}): resurrected",
                    Self::short(old.as_deref()),
                    reply.cookie
                ));
                self.clients[c].certainty = Certainty::Any;
                false
            }
            // Loaded before the expiry, saved after it: `SessionInterrupted`, nothing written.
            (400, _) if liveness == Liveness::Either && !full => {
                self.expire(c);
                self.apply_cookie(c, reply, false, t);
                false
            }
            (400, _) if liveness == Liveness::Expired => {
                // Found expired at its load, the write starts a new session: a 400 means
                // it found the old, full cart (or no session could be made).
                self.g().violation(format!(
                    "{what} with the expired key {} answered 400: the old session was found",
                    Self::short(old.as_deref())
                ));
                self.clients[c].certainty = Certainty::Any;
                false
            }
            // The session was there (key kept), or a full cart's 400: as usual.
            _ => true,
        }
    }

    async fn burst(&mut self, c: usize) {
        if !self.clients[c].live() || !self.clients[c].live_for(BURST_SLACK) {
            return self.counter(c).await;
        }
        let cookie = self.clients[c].cookie.clone();
        let n = 2 + self.rng.usize(..4);
        let mut tasks = Vec::new();
        for _ in 0..n {
            let http = self.t.http.clone();
            let base = self.url();
            let cookie = cookie.clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let r = http::send(&http, &base, "/counter", cookie.as_deref(), Some(&[])).await;
                (
                    Timing {
                        sent,
                        recv: Instant::now(),
                    },
                    r,
                )
            }));
        }
        let mut replies = Vec::new();
        for task in tasks {
            if let Ok(r) = task.await {
                replies.push(r);
            }
        }
        self.on_burst(c, cookie.as_deref(), &replies);
    }

    fn on_burst(&mut self, c: usize, cookie: Option<&str>, replies: &[(Timing, Reply)]) {
        // Judged by the model as it was before the burst.
        let liveness: Vec<Liveness> = replies
            .iter()
            .map(|(t, _)| self.clients[c].liveness(*t))
            .collect();
        let mut acked = 0;
        let mut straddled = false;
        let mut saves: Option<(Instant, Instant)> = None;
        for ((t, reply), liveness) in replies.iter().zip(liveness) {
            self.g().record("burst", t.sent, reply);
            self.trace_reply("burst", cookie, reply);
            if liveness != Liveness::Live {
                // Slower than BURST_SLACK: some of it may have met the expiry.
                straddled = true;
            } else if reply.is_failure() {
                self.clients[c].maybe_increments += 1;
                self.fail(c, Certainty::Writes);
            } else if reply.status == 303 {
                acked += 1;
                self.apply_cookie(c, reply, false, *t);
                saves = Some(match saves {
                    None => (t.sent, t.recv),
                    Some((s, r)) => (s.max(t.sent), r.max(t.recv)),
                });
            } else {
                self.g()
                    .violation(format!("POST /counter (burst) answered {}", reply.status));
            }
        }
        if straddled {
            // The increments may have split between the old session and new ones.
            self.clients[c].certainty = Certainty::Any;
            return;
        }
        self.clients[c].counter += acked;
        self.g().acked_writes += acked;
        if let Some((sent, recv)) = saves {
            // The last save came no earlier than the last-sent acknowledged request, and
            // no later than the last answer.
            self.saved(c, Timing { sent, recv });
        }
    }

    async fn cart(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        cl.next_item += 1;
        let item = format!("i{}", cl.next_item);
        let cookie = cl.cookie.clone();
        let (t, reply) = self
            .send("cart", "/cart", cookie, Some(&[("item", &item)]))
            .await;
        self.on_cart(c, item, t, &reply);
    }

    fn on_cart(&mut self, c: usize, item: String, t: Timing, reply: &Reply) {
        if reply.is_failure() {
            self.clients[c].maybe_items.push(item);
            self.fail(c, Certainty::Writes);
            return;
        }
        if !self.aged_write(c, t, reply, "POST /cart") {
            return;
        }
        let cl = &self.clients[c];
        let full = cl.live() && cl.cart.len() >= MAX_CART_ITEMS;
        let certain = cl.certainty == Certainty::Exact;
        match reply.status {
            303 if !full || !certain => {
                if !self.clients[c].live() {
                    self.clients[c].reset();
                }
                self.apply_cookie(c, reply, false, t);
                if self.clients[c].cart.len() < MAX_CART_ITEMS {
                    self.clients[c].cart.push(item);
                }
                self.g().acked_writes += 1;
                self.saved(c, t);
            }
            400 if full || !certain => {}
            s => self
                .g()
                .violation(format!("POST /cart answered {s} (cart full: {full})")),
        }
    }

    async fn login(&mut self, c: usize) {
        let user = self.clients[c].user.clone();
        let old = self.clients[c].cookie.clone();
        let (t, reply) = self
            .send("login", "/login", old.clone(), Some(&[("username", &user)]))
            .await;
        if let Some(old) = self.on_login(c, t, &reply) {
            let cookie = self.clients[c].cookie.clone();
            let (t, reply) = self.send("read", "/", cookie, None).await;
            self.on_login_resolved(c, &old, t, &reply);
        }
    }

    /// Returns the old key when the login met the session's expiry window: whether it kept
    /// the data is for the read that follows to tell ([`Self::on_login_resolved`]).
    fn on_login(&mut self, c: usize, t: Timing, reply: &Reply) -> Option<String> {
        let old = self.clients[c].cookie.clone();
        let was_live = self.clients[c].live();
        let liveness = self.clients[c].liveness(t);
        if reply.is_failure() {
            self.fail(c, Certainty::Any);
            return None;
        }
        if reply.status == 400 && liveness == Liveness::Either {
            // Loaded before the expiry, its key rotation after: `SessionInterrupted`,
            // nothing saved.
            self.expire(c);
            self.apply_cookie(c, reply, false, t);
            return None;
        }
        if reply.status != 303 || !matches!(reply.cookie, Some(CookieChange::Set(_))) {
            self.g().violation(format!(
                "POST /login answered {} with cookie {:?}",
                reply.status,
                reply.cookie.is_some()
            ));
            return None;
        }
        match liveness {
            Liveness::Live if !was_live => self.clients[c].reset(),
            Liveness::Live | Liveness::Either => {}
            // The session was gone: the login starts an empty one (the next read checks
            // that the old data did not come back).
            Liveness::Expired => self.expire(c),
        }
        self.apply_cookie(c, reply, true, t);
        if let (Some(old), true, Liveness::Live) = (&old, was_live, liveness) {
            self.g().kill_key(old);
        }
        // Django's rules: same user (or anonymous) keeps the data under the new key.
        self.clients[c].logged_in = true;
        self.saved(c, t);
        if liveness == Liveness::Either {
            old
        } else {
            None
        }
    }

    /// The read right after a login in the old session's expiry window: logged in, and
    /// either with the old data (the login found the session) or empty (it had expired).
    fn on_login_resolved(&mut self, c: usize, old: &str, t: Timing, reply: &Reply) {
        if reply.is_failure() {
            // The old key is dead either way; what the new session holds is unknown.
            self.g().bury(old);
            self.clients[c].certainty = Certainty::Any;
            return;
        }
        let home = (reply.status == 200)
            .then(|| http::parse_home(&reply.body))
            .flatten();
        let cl = &self.clients[c];
        let kept = home.as_ref().is_some_and(|h| match cl.certainty {
            Certainty::Exact => {
                h.user.as_deref() == Some(cl.user.as_str())
                    && h.counter == cl.counter
                    && h.cart == cl.cart
            }
            _ => cl.keeps(h),
        });
        let started_empty = home.as_ref().is_some_and(|h| {
            h.user.as_deref() == Some(cl.user.as_str()) && h.counter == 0 && h.cart.is_empty()
        });
        if started_empty && !kept {
            self.g().expire_key(Some(old));
            let cl = &mut self.clients[c];
            cl.counter = 0;
            cl.cart.clear();
            cl.maybe_increments = 0;
            cl.maybe_items.clear();
            cl.certainty = Certainty::Exact;
        } else {
            // Kept (or neither: the read's check reports it).
            self.g().kill_key(old);
        }
        self.on_read(c, t, reply);
    }

    /// The clients of the group (but `except`) logged in as far as their models know,
    /// as a range for a request with timing `t`: those certainly live, and those not
    /// certainly expired. Equal bounds when expiry is not modelled.
    fn logged_in_range(&self, t: Timing, except: Option<usize>) -> (usize, usize) {
        let mut range = (0, 0);
        for (i, cl) in self.clients.iter().enumerate() {
            if Some(i) == except || !cl.logged_in || cl.cookie.is_none() {
                continue;
            }
            match cl.liveness(t) {
                Liveness::Live => {
                    range.0 += 1;
                    range.1 += 1;
                }
                Liveness::Either => range.1 += 1,
                Liveness::Expired => {}
            }
        }
        range
    }

    fn all_exact(&self) -> bool {
        self.clients.iter().all(|c| c.certainty == Certainty::Exact)
    }

    async fn devices(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let (t, reply) = self.send("devices", "/devices", cookie, None).await;
        self.on_devices(c, t, &reply);
    }

    fn on_devices(&mut self, c: usize, t: Timing, reply: &Reply) {
        if reply.is_failure() {
            return;
        }
        let liveness = self.clients[c].liveness(t);
        let cl = &self.clients[c];
        if liveness != Liveness::Live
            && (cl.logged_in || reply.cookie == Some(CookieChange::Remove))
        {
            // (`liveness` is only judged for a model that holds a session and is not
            // `Certainty::Any`.)
            if reply.status == 303 {
                // Sent to the login form (and the cookie removed, which is all an anonymous
                // session shows): the session had expired.
                self.expire(c);
                self.apply_cookie(c, reply, false, t);
                return;
            }
            if liveness == Liveness::Expired && cl.logged_in {
                let msg = format!(
                    "an expired session's devices page is readable: key {} answered {}",
                    Self::short(cl.cookie.as_deref()),
                    reply.status
                );
                self.g().violation(msg);
                self.clients[c].certainty = Certainty::Any;
                return;
            }
        }
        self.apply_cookie(c, reply, false, t);
        if self.clients[c].certainty != Certainty::Exact {
            return;
        }
        if !self.clients[c].logged_in {
            if reply.status != 303 {
                self.g().violation(format!(
                    "GET /devices of a logged-out client answered {}",
                    reply.status
                ));
            }
            return;
        }
        let count = (reply.status == 200)
            .then(|| http::parse_device_count(&reply.body))
            .flatten();
        let (lo, hi) = self.logged_in_range(t, None);
        let wrong = match count {
            None => true,
            Some(n) if self.ghosts => n < lo,
            Some(n) => n < lo || n > hi,
        };
        if self.all_exact() && wrong {
            let expected = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo} to {hi}")
            };
            self.g().violation(format!(
                "devices page shows {count:?} sessions, the user has {expected} (status {})",
                reply.status
            ));
        }
    }

    async fn logout_others(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let (t, reply) = self
            .send("logout-others", "/devices/logout-others", cookie, Some(&[]))
            .await;
        self.on_logout_others(c, t, &reply);
    }

    fn on_logout_others(&mut self, c: usize, t: Timing, reply: &Reply) {
        if reply.is_failure() {
            for i in 0..self.clients.len() {
                self.fail(i, Certainty::Any);
            }
            return;
        }
        let ended = reply.location.as_deref().and_then(http::parse_ended);
        let liveness = self.clients[c].liveness(t);
        let cl = &self.clients[c];
        if liveness != Liveness::Live
            && (cl.logged_in || reply.cookie == Some(CookieChange::Remove))
        {
            if ended.is_none() {
                // Answered as to a logged-out client: the session had expired, and the
                // others were left alone.
                if reply.status != 303 || reply.location.as_deref() != Some("/") {
                    self.g().violation(format!(
                        "logout-others of an expired session answered {} {:?}",
                        reply.status, reply.location
                    ));
                }
                self.expire(c);
                self.apply_cookie(c, reply, false, t);
                return;
            }
            if liveness == Liveness::Expired {
                let msg = format!(
                    "an expired session logged out other devices: key {} answered {:?}",
                    Self::short(cl.cookie.as_deref()),
                    reply.location
                );
                self.g().violation(msg);
            }
        }
        self.apply_cookie(c, reply, false, t);
        if self.clients[c].certainty != Certainty::Exact {
            // What this client holds is unknown, but `?ended=N` says it was logged in and
            // the user's other sessions are gone: the other clients' models must follow
            // (their sessions must read empty from now on).
            if ended.is_some() {
                self.ghosts = false;
                self.end_others(c, t);
            }
            return;
        }
        if !self.clients[c].logged_in {
            if reply.status != 303 || reply.location.as_deref() != Some("/") {
                self.g().violation(format!(
                    "logout-others of a logged-out client answered {} {:?}",
                    reply.status, reply.location
                ));
            }
            return;
        }
        let (lo, hi) = self.logged_in_range(t, Some(c));
        let wrong = match ended {
            None => true,
            Some(n) if self.ghosts => n < lo,
            Some(n) => n < lo || n > hi,
        };
        if self.all_exact() && wrong {
            let expected = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo} to {hi}")
            };
            self.g().violation(format!(
                "logout-others ended {ended:?} sessions, the user had {expected} others"
            ));
        }
        if ended.is_some() {
            // Every other session of the user is gone, ghosts included.
            self.ghosts = false;
        }
        self.end_others(c, t);
    }

    /// "Log out other devices" by client `c` (timing `t`) succeeded: every other client
    /// logged in (as far as its model knows) lost its session; its key counts as dead
    /// unless its model is [`Certainty::Any`] (then it may not have been logged in at
    /// all), or as expired when it certainly was before.
    fn end_others(&mut self, c: usize, t: Timing) {
        for i in 0..self.clients.len() {
            if i != c && self.clients[i].logged_in {
                if self.clients[i].certainty != Certainty::Any {
                    let expired = self.clients[i].liveness(t) == Liveness::Expired;
                    if let Some(key) = self.clients[i].cookie.clone() {
                        if expired {
                            self.g().expire_key(Some(&key));
                        } else {
                            self.g().kill_key(&key);
                        }
                    }
                }
                // The client still sends its cookie: the server must not honour it.
                self.clients[i].reset();
            }
        }
    }

    async fn logout(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let (t, reply) = self
            .send("logout", "/logout", cookie.clone(), Some(&[]))
            .await;
        self.on_logout(c, cookie, t, &reply);
    }

    fn on_logout(&mut self, c: usize, cookie: Option<String>, t: Timing, reply: &Reply) {
        let was_live = self.clients[c].live();
        let liveness = self.clients[c].liveness(t);
        if reply.is_failure() {
            self.fail(c, Certainty::Any);
            return;
        }
        if reply.status != 303 {
            self.g()
                .violation(format!("POST /logout answered {}", reply.status));
            return;
        }
        if cookie.is_some() && reply.cookie != Some(CookieChange::Remove) {
            self.g().violation(format!(
                "logout with a cookie did not remove it: {:?}",
                reply.cookie.is_some()
            ));
        }
        if let (Some(key), true) = (cookie, was_live) {
            if liveness == Liveness::Expired {
                self.g().expire_key(Some(&key));
            } else {
                self.g().kill_key(&key);
            }
        }
        self.clients[c].reset();
        self.clients[c].cookie = None;
        self.clients[c].certainty = Certainty::Exact;
    }

    /// A dead key (any group's, expired ones included) read on a random process: empty,
    /// anonymous, not revived; one time in four a write with it, which must get a new key.
    async fn probe_dead(&mut self) {
        let n = self.g().dead.len();
        if n == 0 {
            return;
        }
        let i = self.rng.usize(..n);
        let key = self.g().dead[i].clone();
        let write = self.rng.u32(..4) == 0;
        let (_, reply) = if write {
            self.send("probe-dead", "/counter", Some(key.clone()), Some(&[]))
                .await
        } else {
            self.send("probe-dead", "/", Some(key.clone()), None).await
        };
        self.on_probe_dead(&key, write, &reply);
    }

    fn on_probe_dead(&mut self, key: &str, write: bool, reply: &Reply) {
        if reply.is_failure() {
            return;
        }
        let mut g = self.g();
        g.dead_probes += 1;
        if reply.cookie == Some(CookieChange::Set(key.to_owned())) {
            g.violation(format!(
                "dead key {}… resurrected",
                &key[..6.min(key.len())]
            ));
        }
        if write {
            if let Some(CookieChange::Set(new)) = &reply.cookie {
                if *new != key && !g.issued.insert(new.clone()) {
                    g.violation("key reused after a dead-key write".to_owned());
                }
                g.keys_issued += 1;
            }
            return;
        }
        match http::parse_home(&reply.body) {
            Some(home) if Client::gone(&home) => {}
            other => g.violation(format!(
                "dead key {}… readable: status {} page {other:?}",
                &key[..6.min(key.len())],
                reply.status
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(counter: u64, cart: &[&str]) -> http::Home {
        http::Home {
            user: Some("u".to_owned()),
            counter,
            cart: cart.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn client(counter: u64, cart: &[&str], maybe_increments: u64, maybe: &[&str]) -> Client {
        let mut c = Client::new("u".to_owned());
        c.cookie = Some("k".to_owned());
        c.logged_in = true;
        c.counter = counter;
        c.cart = cart.iter().map(|s| (*s).to_owned()).collect();
        c.certainty = Certainty::Writes;
        c.maybe_increments = maybe_increments;
        c.maybe_items = maybe.iter().map(|s| (*s).to_owned()).collect();
        c
    }

    /// Two cart writes failed (503), then one was acknowledged: a failed item that did
    /// happen sits before the acknowledged one (the faults run that reported it lost).
    #[test]
    fn a_failed_item_may_precede_an_acknowledged_one() {
        let c = client(6, &["i1", "i2", "i5"], 0, &["i3", "i4"]);
        assert!(c.keeps(&home(6, &["i1", "i2", "i3", "i5"])));
        assert!(c.keeps(&home(6, &["i1", "i2", "i5"])));
        assert!(c.keeps(&home(6, &["i1", "i2", "i3", "i4", "i5"])));
    }

    #[test]
    fn an_acknowledged_item_must_stay_in_order() {
        let c = client(6, &["i1", "i2", "i5"], 0, &["i3", "i4"]);
        // Lost, reordered, duplicated, or never sent.
        assert!(!c.keeps(&home(6, &["i1", "i3", "i5"])));
        assert!(!c.keeps(&home(6, &["i2", "i1", "i5"])));
        assert!(!c.keeps(&home(6, &["i1", "i2", "i5", "i5"])));
        assert!(!c.keeps(&home(6, &["i1", "i2", "i5", "i9"])));
    }

    #[test]
    fn failed_increments_bound_the_counter() {
        let c = client(6, &[], 2, &[]);
        assert!(c.keeps(&home(6, &[])));
        assert!(c.keeps(&home(8, &[])));
        assert!(!c.keeps(&home(5, &[])));
        assert!(!c.keeps(&home(9, &[])));
    }

    #[test]
    fn a_full_cart_may_drop_later_acknowledged_items() {
        let acked: Vec<String> = (0..MAX_CART_ITEMS).map(|i| format!("a{i}")).collect();
        let acked: Vec<&str> = acked.iter().map(String::as_str).collect();
        let c = client(0, &acked, 0, &["m"]);
        // The failed item took the last place; the last acknowledged one was dropped.
        let mut page = acked[..MAX_CART_ITEMS - 1].to_vec();
        page.insert(3, "m");
        assert!(c.keeps(&home(0, &page)));
        // Not full: nothing acknowledged may be missing.
        assert!(!c.keeps(&home(0, &acked[..MAX_CART_ITEMS - 1])));
    }

    #[test]
    fn the_user_must_be_as_told() {
        let c = client(0, &[], 0, &[]);
        let mut h = home(0, &[]);
        h.user = None;
        assert!(!c.keeps(&h));
        h.user = Some("v".to_owned());
        assert!(!c.keeps(&h));
    }

    // ------------------------------------------------------------------ expiry

    const AGE: Duration = Duration::from_secs(4);

    /// Instants on a test clock: `at(ms)` is `ms` milliseconds after its start (far enough
    /// in the future that nothing here is "now").
    struct Clock(Instant);

    impl Clock {
        fn new() -> Self {
            Self(Instant::now())
        }
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
        /// A request sent at `ms`, answered 10 ms later.
        fn req(&self, ms: u64) -> Timing {
            Timing {
                sent: self.at(ms),
                recv: self.at(ms + 10),
            }
        }
    }

    /// A group of `devices` clients of user "u" with the session age [`AGE`], sending
    /// nothing (the tests feed it answers).
    fn group(devices: usize) -> Group {
        let t = Traffic {
            http: reqwest::Client::new(),
            urls: Arc::new(vec!["http://127.0.0.1:9".to_owned()]),
            global: Global::new(false),
            deadline: Instant::now(),
            think: Duration::ZERO,
        };
        let options = GroupOptions {
            session_age: Some(AGE),
        };
        Group::new(t, options, "u", devices, 1)
    }

    fn reply(status: u16, cookie: Option<CookieChange>, body: String) -> Reply {
        Reply {
            status,
            cookie,
            location: (status == 303).then(|| "/".to_owned()),
            retry_after: None,
            body,
            elapsed: Duration::from_millis(10),
            error: None,
        }
    }

    fn page(user: Option<&str>, counter: u64, cart: &[&str]) -> String {
        let who = user.map_or("<p id=\"who\">Not signed in.</p>".to_owned(), |u| {
            format!(r#"<p id="who">Signed in as <strong id="user">{u}</strong>.</p>"#)
        });
        let items: String = cart.iter().map(|i| format!("<li>{i}</li>")).collect();
        format!(r#"{who}<strong id="counter">{counter}</strong><ul id="cart">{items}</ul>"#)
    }

    fn set(key: &str) -> Option<CookieChange> {
        Some(CookieChange::Set(key.to_owned()))
    }

    fn violations(g: &Group) -> Vec<String> {
        g.g().violations.clone()
    }

    /// Client 0 logged in with key `k1` at 0 ms and counted to 2 (the last write sent at
    /// 100 ms): its expiry lies in 4100..=4110 ms.
    fn logged_in_with_data(g: &mut Group, clock: &Clock) {
        g.on_login(0, clock.req(0), &reply(303, set("k1"), String::new()));
        g.on_counter(0, clock.req(50), &reply(303, set("k1"), String::new()));
        g.on_counter(0, clock.req(100), &reply(303, set("k1"), String::new()));
        assert_eq!(g.clients[0].counter, 2);
        assert!(violations(g).is_empty(), "{:?}", violations(g));
    }

    #[test]
    fn the_window_follows_the_last_save_with_the_margin() {
        let clock = Clock::new();
        let w = Window::after_save(clock.req(100), AGE, true);
        assert_eq!(w.earliest, clock.at(4100));
        assert_eq!(w.latest, Some(clock.at(4110)));
        // Answered 100 ms before the earliest expiry (and no later): live.
        assert_eq!(w.at(clock.req(3980)), Liveness::Live);
        assert_eq!(w.at(clock.req(3990)), Liveness::Either);
        // Sent within 100 ms after the latest expiry: either; later: expired.
        assert_eq!(w.at(clock.req(4210)), Liveness::Either);
        assert_eq!(w.at(clock.req(4211)), Liveness::Expired);
        // A failed write may have saved it later: never certainly expired.
        let open = Window::after_save(clock.req(100), AGE, false);
        assert_eq!(open.at(clock.req(60_000)), Liveness::Either);
    }

    /// The check that must fail if a store returned expired data.
    #[test]
    fn reading_the_old_data_after_the_age_is_a_violation() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_read(
            0,
            clock.req(4500),
            &reply(200, None, page(Some("u"), 2, &[])),
        );
        let v = violations(&g);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("expired data returned"), "{v:?}");
        assert_eq!(g.g().expired, 0);
    }

    #[test]
    fn reading_any_data_of_an_expired_session_is_a_violation() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        // Still logged in, the data gone: not what expiry leaves either.
        g.on_read(
            0,
            clock.req(5000),
            &reply(200, None, page(Some("u"), 0, &[])),
        );
        let v = violations(&g);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("an expired session is readable"), "{v:?}");
    }

    #[test]
    fn an_expired_session_reads_empty_and_counts() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_read(
            0,
            clock.req(4500),
            &reply(200, Some(CookieChange::Remove), page(None, 0, &[])),
        );
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        assert_eq!(g.g().expired, 1);
        assert_eq!(g.g().keys_dead, 0, "expired, not ended");
        assert!(g.g().dead.contains(&"k1".to_owned()), "probed from now on");
        let cl = &g.clients[0];
        assert!(!cl.logged_in && cl.counter == 0 && cl.cookie.is_none());
    }

    #[test]
    fn a_session_must_not_expire_before_its_age() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        // Answered at 3910 ms, the earliest expiry is 4100 ms: it must still be there.
        g.on_read(0, clock.req(3900), &reply(200, None, page(None, 0, &[])));
        let v = violations(&g);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("an acknowledged write was lost"), "{v:?}");
    }

    #[test]
    fn at_the_boundary_either_answer_holds_and_the_page_tells() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        // Sent at 4050 ms: before the earliest expiry, so it may still see the session.
        g.on_read(
            0,
            clock.req(4050),
            &reply(200, None, page(Some("u"), 2, &[])),
        );
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        assert_eq!(g.g().expired, 0);
        // Seen: still checked exactly (a lost write at the boundary is not excused).
        g.on_read(
            0,
            clock.req(4060),
            &reply(200, None, page(Some("u"), 1, &[])),
        );
        assert_eq!(violations(&g).len(), 1);
        // Or gone.
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_read(0, clock.req(4150), &reply(200, None, page(None, 0, &[])));
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        assert_eq!(g.g().expired, 1);
    }

    #[test]
    fn reads_do_not_move_the_expiry() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        for ms in [1000, 2000, 3000, 3800] {
            g.on_read(0, clock.req(ms), &reply(200, None, page(Some("u"), 2, &[])));
        }
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        // 4.5 s after the last write, 0.7 s after the last read: must be gone.
        g.on_read(
            0,
            clock.req(4500),
            &reply(200, None, page(Some("u"), 2, &[])),
        );
        assert_eq!(violations(&g).len(), 1);
    }

    #[test]
    fn writes_keep_a_session_alive_past_the_age() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        for ms in [2500, 5000, 7500] {
            g.on_counter(0, clock.req(ms), &reply(303, set("k1"), String::new()));
        }
        g.on_read(
            0,
            clock.req(9000),
            &reply(200, None, page(Some("u"), 5, &[])),
        );
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        assert_eq!(
            g.g().kept_alive,
            1,
            "9 s after its creation, kept by writes"
        );
        assert_eq!(g.g().expired, 0);
    }

    #[test]
    fn a_write_with_an_expired_key_starts_an_empty_session_under_a_new_key() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(5000), &reply(303, set("k2"), String::new()));
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        assert_eq!(g.g().expired, 1);
        let cl = &g.clients[0];
        assert_eq!(cl.cookie.as_deref(), Some("k2"));
        assert!(!cl.logged_in);
        assert_eq!(cl.counter, 1, "the new session starts empty");
        // The new session must not carry the old data.
        g.on_read(0, clock.req(5100), &reply(200, None, page(None, 3, &[])));
        assert_eq!(violations(&g).len(), 1, "old data brought back");
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(5000), &reply(303, set("k2"), String::new()));
        g.on_read(
            0,
            clock.req(5100),
            &reply(200, None, page(Some("u"), 1, &[])),
        );
        assert_eq!(violations(&g).len(), 1, "still logged in after the expiry");
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(5000), &reply(303, set("k2"), String::new()));
        g.on_read(0, clock.req(5100), &reply(200, None, page(None, 1, &[])));
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
    }

    #[test]
    fn a_write_that_keeps_the_expired_key_is_a_resurrection() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(5000), &reply(303, set("k1"), String::new()));
        let v = violations(&g);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("resurrected"), "{v:?}");
        // A write that sets no cookie at all is no better.
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(5000), &reply(303, None, String::new()));
        assert_eq!(violations(&g).len(), 1);
    }

    #[test]
    fn a_write_at_the_boundary_may_be_interrupted_or_land_on_either_session() {
        let clock = Clock::new();
        // Kept the key: the old session took it.
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(4050), &reply(303, set("k1"), String::new()));
        assert_eq!(g.clients[0].counter, 3);
        assert!(g.clients[0].logged_in);
        // Loaded before the expiry, saved after: 400, the session is gone.
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(4050), &reply(400, None, String::new()));
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        assert_eq!(g.g().expired, 1);
        assert_eq!(g.clients[0].counter, 0);
        // Certainly live, a 400 is still a violation.
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_counter(0, clock.req(2000), &reply(400, None, String::new()));
        assert_eq!(violations(&g).len(), 1);
    }

    #[test]
    fn a_login_after_the_age_starts_empty() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        assert_eq!(
            g.on_login(0, clock.req(5000), &reply(303, set("k2"), String::new())),
            None
        );
        assert_eq!(g.g().expired, 1);
        g.on_read(
            0,
            clock.req(5100),
            &reply(200, None, page(Some("u"), 2, &[])),
        );
        assert_eq!(
            violations(&g).len(),
            1,
            "the expired data came back at login"
        );
    }

    #[test]
    fn a_login_at_the_boundary_is_resolved_by_the_next_read() {
        let clock = Clock::new();
        for (counter, expired) in [(2, 0), (0, 1)] {
            let mut g = group(2);
            logged_in_with_data(&mut g, &clock);
            let old = g.on_login(0, clock.req(4050), &reply(303, set("k2"), String::new()));
            assert_eq!(old.as_deref(), Some("k1"));
            g.on_login_resolved(
                0,
                "k1",
                clock.req(4070),
                &reply(200, None, page(Some("u"), counter, &[])),
            );
            assert!(violations(&g).is_empty(), "{:?}", violations(&g));
            assert_eq!(g.g().expired, expired);
            assert_eq!(g.clients[0].counter, counter);
        }
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_login(0, clock.req(4050), &reply(303, set("k2"), String::new()));
        g.on_login_resolved(
            0,
            "k1",
            clock.req(4070),
            &reply(200, None, page(None, 0, &[])),
        );
        assert_eq!(violations(&g).len(), 1, "logged out by a login");
    }

    #[test]
    fn the_devices_page_no_longer_counts_an_expired_session() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        // Client 1 logs in at 4000 ms and keeps its session alive.
        g.on_login(1, clock.req(4000), &reply(303, set("m1"), String::new()));
        let devices = |n: usize| {
            let mut r = reply(
                200,
                None,
                format!(r#"<strong id="user">u</strong>: <span id="count">{n}</span>"#),
            );
            r.location = None;
            r
        };
        // At 5000 ms client 0's session has certainly expired: one session.
        g.on_devices(1, clock.req(5000), &devices(1));
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        g.on_devices(1, clock.req(5000), &devices(2));
        assert_eq!(violations(&g).len(), 1, "an expired session listed");
        // At the boundary, 1 or 2.
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_login(1, clock.req(4000), &reply(303, set("m1"), String::new()));
        g.on_devices(1, clock.req(4100), &devices(1));
        g.on_devices(1, clock.req(4100), &devices(2));
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        g.on_devices(1, clock.req(4100), &devices(3));
        assert_eq!(violations(&g).len(), 1);
    }

    #[test]
    fn an_expired_session_sees_the_devices_pages_as_logged_out() {
        let clock = Clock::new();
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        g.on_devices(0, clock.req(5000), &reply(303, None, String::new()));
        assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        assert_eq!(g.g().expired, 1);
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        let mut shown = reply(200, None, r#"<span id="count">1</span>"#.to_owned());
        shown.location = None;
        g.on_devices(0, clock.req(5000), &shown);
        assert_eq!(
            violations(&g).len(),
            1,
            "devices page of an expired session"
        );
        let mut g = group(2);
        logged_in_with_data(&mut g, &clock);
        let mut ended = reply(303, None, String::new());
        ended.location = Some("/devices?ended=0".to_owned());
        g.on_logout_others(0, clock.req(5000), &ended);
        assert_eq!(
            violations(&g).len(),
            1,
            "an expired session logged others out"
        );
    }

    /// Found by the soak: an anonymous session with data, idle past its age, first asked
    /// for the devices page; the 303 removed the cookie, the model dropped the cookie but
    /// kept the counter, and the next (cookieless) read was taken for a lost write.
    #[test]
    fn an_anonymous_session_seen_gone_by_the_devices_pages_expired() {
        let clock = Clock::new();
        for logout_others in [false, true] {
            let mut g = group(2);
            g.on_counter(1, clock.req(0), &reply(303, set("a1"), String::new()));
            let gone = reply(303, Some(CookieChange::Remove), String::new());
            if logout_others {
                g.on_logout_others(1, clock.req(4500), &gone);
            } else {
                g.on_devices(1, clock.req(4500), &gone);
            }
            assert_eq!(g.g().expired, 1);
            assert_eq!(g.clients[1].cookie, None);
            g.on_read(1, clock.req(4600), &reply(200, None, page(None, 0, &[])));
            assert!(violations(&g).is_empty(), "{:?}", violations(&g));
        }
        // Before its age, a removed cookie is not an expiry: the next read finds the loss.
        let mut g = group(2);
        g.on_counter(1, clock.req(0), &reply(303, set("a1"), String::new()));
        g.on_devices(
            1,
            clock.req(1000),
            &reply(303, Some(CookieChange::Remove), String::new()),
        );
        assert_eq!(g.g().expired, 0);
        g.on_read(1, clock.req(1100), &reply(200, None, page(None, 0, &[])));
        assert_eq!(violations(&g).len(), 1);
    }

    #[test]
    fn without_an_age_nothing_expires() {
        let clock = Clock::new();
        let mut g = group(1);
        g.age = None;
        g.on_counter(0, clock.req(0), &reply(303, set("k1"), String::new()));
        g.on_read(0, clock.req(60_000), &reply(200, None, page(None, 0, &[])));
        let v = violations(&g);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("an acknowledged write was lost"), "{v:?}");
    }
}
