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
//! - the devices page and "log out other devices" count exactly the user's live sessions.
//!
//! A failed request (no response, or a 5xx) is not a violation by itself: the client's
//! model becomes uncertain, and its next read accepts any state that keeps every
//! acknowledged write (a write that failed may or may not have happened).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http::{self, CookieChange, Reply};
use crate::Rng;

/// The most items the demo app keeps in a cart.
pub const MAX_CART_ITEMS: usize = 50;

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
        // Failed writes to the session that is gone went there, not to the next one.
        self.maybe_increments = 0;
        self.maybe_items.clear();
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
    fn kill_key(&mut self, key: &str) {
        self.keys_dead += 1;
        if self.dead.len() < 4096 {
            self.dead.push(key.to_owned());
        } else {
            let i = self.keys_dead as usize % self.dead.len();
            self.dead[i] = key.to_owned();
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

struct Group {
    t: Traffic,
    rng: Rng,
    clients: Vec<Client>,
    /// A login, logout or revocation failed: the user may have sessions no client holds
    /// (a login that saved its record but answered 5xx); until the next successful "log
    /// out other devices" ends them, the counts are checked as lower bounds.
    ghosts: bool,
    /// The last operations and the model after each (printed with a violation).
    trace: std::collections::VecDeque<String>,
}

/// Runs one group of `devices` clients of `user` until the deadline.
pub async fn run_group(t: Traffic, user: String, devices: usize, seed: u64) {
    let mut g = Group {
        rng: Rng::with_seed(seed),
        clients: (0..devices).map(|_| Client::new(user.clone())).collect(),
        ghosts: false,
        trace: std::collections::VecDeque::new(),
        t,
    };
    while Instant::now() < g.t.deadline {
        let before = g.g().violation_count;
        let c = g.rng.usize(..g.clients.len());
        let roll = g.rng.u32(..100);
        match roll {
            0..=29 => g.read(c).await,
            30..=49 => g.counter(c).await,
            50..=53 => g.burst(c).await,
            54..=63 => g.cart(c).await,
            64..=73 => g.login(c).await,
            74..=81 => g.devices(c).await,
            82..=85 => g.logout_others(c).await,
            86..=90 => g.logout(c).await,
            _ => g.probe_dead().await,
        }
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
        let state: Vec<String> = self
            .clients
            .iter()
            .map(|cl| {
                format!(
                    "[{:?} in={} n={} cart={} {:?}]",
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
    ) -> Reply {
        let base = self.url();
        let sent_at = Instant::now();
        let reply = http::send(&self.t.http, &base, path, cookie.as_deref(), form).await;
        self.g().record(op, sent_at, &reply);
        self.trace_reply(op, cookie.as_deref(), &reply);
        reply
    }

    fn g(&self) -> std::sync::MutexGuard<'_, Global> {
        self.t
            .global
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies a `Set-Cookie`; `rotates`: the operation is meant to issue a new key.
    fn apply_cookie(&mut self, c: usize, reply: &Reply, rotates: bool) {
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
                self.clients[c].cookie = Some(key.clone());
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
    }

    async fn read(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let reply = self.send("read", "/", cookie, None).await;
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
        self.apply_cookie(c, &reply, false);
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
            cl.certainty = Certainty::Exact;
            cl.logged_in = home.user.is_some();
            cl.counter = home.counter;
            cl.cart = home.cart;
            cl.maybe_increments = 0;
            cl.maybe_items.clear();
            self.g().resyncs += 1;
        }
    }

    async fn counter(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let reply = self.send("counter", "/counter", cookie, Some(&[])).await;
        if reply.is_failure() {
            self.clients[c].maybe_increments += 1;
            self.fail(c, Certainty::Writes);
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
        self.apply_cookie(c, &reply, false);
        self.clients[c].counter += 1;
        self.g().acked_writes += 1;
    }

    async fn burst(&mut self, c: usize) {
        if !self.clients[c].live() {
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
                let sent_at = Instant::now();
                let r = http::send(&http, &base, "/counter", cookie.as_deref(), Some(&[])).await;
                (sent_at, r)
            }));
        }
        let mut acked = 0;
        for task in tasks {
            let Ok((sent_at, reply)) = task.await else {
                continue;
            };
            self.g().record("burst", sent_at, &reply);
            self.trace_reply("burst", cookie.as_deref(), &reply);
            if reply.is_failure() {
                self.clients[c].maybe_increments += 1;
                self.fail(c, Certainty::Writes);
            } else if reply.status == 303 {
                acked += 1;
                self.apply_cookie(c, &reply, false);
            } else {
                self.g()
                    .violation(format!("POST /counter (burst) answered {}", reply.status));
            }
        }
        self.clients[c].counter += acked;
        self.g().acked_writes += acked;
    }

    async fn cart(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        cl.next_item += 1;
        let item = format!("i{}", cl.next_item);
        let full = cl.live() && cl.cart.len() >= MAX_CART_ITEMS;
        let cookie = cl.cookie.clone();
        let reply = self
            .send("cart", "/cart", cookie, Some(&[("item", &item)]))
            .await;
        if reply.is_failure() {
            self.clients[c].maybe_items.push(item);
            self.fail(c, Certainty::Writes);
            return;
        }
        let certain = self.clients[c].certainty == Certainty::Exact;
        match reply.status {
            303 if !full || !certain => {
                if !self.clients[c].live() {
                    self.clients[c].reset();
                }
                self.apply_cookie(c, &reply, false);
                if self.clients[c].cart.len() < MAX_CART_ITEMS {
                    self.clients[c].cart.push(item);
                }
                self.g().acked_writes += 1;
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
        let was_live = self.clients[c].live();
        let reply = self
            .send("login", "/login", old.clone(), Some(&[("username", &user)]))
            .await;
        if reply.is_failure() {
            self.fail(c, Certainty::Any);
            return;
        }
        if reply.status != 303 || !matches!(reply.cookie, Some(CookieChange::Set(_))) {
            self.g().violation(format!(
                "POST /login answered {} with cookie {:?}",
                reply.status,
                reply.cookie.is_some()
            ));
            return;
        }
        if !was_live {
            self.clients[c].reset();
        }
        self.apply_cookie(c, &reply, true);
        if let (Some(old), true) = (old, was_live) {
            self.g().kill_key(&old);
        }
        // Django's rules: same user (or anonymous) keeps the data under the new key.
        self.clients[c].logged_in = true;
    }

    fn logged_in_count(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.logged_in && c.cookie.is_some())
            .count()
    }

    fn all_exact(&self) -> bool {
        self.clients.iter().all(|c| c.certainty == Certainty::Exact)
    }

    async fn devices(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let reply = self.send("devices", "/devices", cookie, None).await;
        if reply.is_failure() {
            return;
        }
        self.apply_cookie(c, &reply, false);
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
        let expected = self.logged_in_count();
        let wrong = match count {
            None => true,
            Some(n) if self.ghosts => n < expected,
            Some(n) => n != expected,
        };
        if self.all_exact() && wrong {
            self.g().violation(format!(
                "devices page shows {count:?} sessions, the user has {expected} (status {})",
                reply.status
            ));
        }
    }

    async fn logout_others(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let reply = self
            .send("logout-others", "/devices/logout-others", cookie, Some(&[]))
            .await;
        if reply.is_failure() {
            for i in 0..self.clients.len() {
                self.fail(i, Certainty::Any);
            }
            return;
        }
        self.apply_cookie(c, &reply, false);
        if self.clients[c].certainty != Certainty::Exact {
            // What this client holds is unknown, but `?ended=N` says it was logged in and
            // the user's other sessions are gone: the other clients' models must follow
            // (their sessions must read empty from now on).
            if reply
                .location
                .as_deref()
                .and_then(http::parse_ended)
                .is_some()
            {
                self.ghosts = false;
                self.end_others(c);
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
        let ended = reply.location.as_deref().and_then(http::parse_ended);
        let expected = self.logged_in_count() - 1;
        let wrong = match ended {
            None => true,
            Some(n) if self.ghosts => n < expected,
            Some(n) => n != expected,
        };
        if self.all_exact() && wrong {
            self.g().violation(format!(
                "logout-others ended {ended:?} sessions, the user had {expected} others"
            ));
        }
        if ended.is_some() {
            // Every other session of the user is gone, ghosts included.
            self.ghosts = false;
        }
        self.end_others(c);
    }

    /// "Log out other devices" by client `c` succeeded: every other client logged in (as
    /// far as its model knows) lost its session; its key counts as dead unless its model
    /// is [`Certainty::Any`] (then it may not have been logged in at all).
    fn end_others(&mut self, c: usize) {
        for i in 0..self.clients.len() {
            if i != c && self.clients[i].logged_in {
                if self.clients[i].certainty != Certainty::Any {
                    if let Some(key) = self.clients[i].cookie.clone() {
                        self.g().kill_key(&key);
                    }
                }
                // The client still sends its cookie: the server must not honour it.
                self.clients[i].reset();
            }
        }
    }

    async fn logout(&mut self, c: usize) {
        let cookie = self.clients[c].cookie.clone();
        let was_live = self.clients[c].live();
        let reply = self
            .send("logout", "/logout", cookie.clone(), Some(&[]))
            .await;
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
            self.g().kill_key(&key);
        }
        self.clients[c].reset();
        self.clients[c].cookie = None;
        self.clients[c].certainty = Certainty::Exact;
    }

    /// A dead key (any group's) read on a random process: empty, anonymous, not revived;
    /// one time in four a write with it, which must get a new key.
    async fn probe_dead(&mut self) {
        let n = self.g().dead.len();
        if n == 0 {
            return;
        }
        let i = self.rng.usize(..n);
        let key = self.g().dead[i].clone();
        let write = self.rng.u32(..4) == 0;
        let reply = if write {
            self.send("probe-dead", "/counter", Some(key.clone()), Some(&[]))
                .await
        } else {
            self.send("probe-dead", "/", Some(key.clone()), None).await
        };
        if reply.is_failure() {
            return;
        }
        let mut g = self.g();
        g.dead_probes += 1;
        if reply.cookie == Some(CookieChange::Set(key.clone())) {
            g.violation(format!("dead key {}… resurrected", &key[..6]));
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
            Some(home) if home.user.is_none() && home.counter == 0 && home.cart.is_empty() => {}
            other => g.violation(format!(
                "dead key {}… readable: status {} page {other:?}",
                &key[..6],
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
}
