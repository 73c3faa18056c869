//! The HTTP benchmark's load generator: keep-alive HTTP/1.1 over loopback, one session per
//! connection (cookies handled by hand), closed loop, interleaved rounds.
//!
//! `bench-http-load --backend NAME --secs S --rounds R [--conns 1,32] [--scenarios LIST]
//! --target NAME=ADDR@PID ... [--compare OURS=PEER ...] [--no-peer OURS=LABEL ...]
//! [--note TEXT ...]`: for every round, every cell (scenario x connections) runs every
//! target in turn (the order rotates each round), `S` seconds each; server CPU comes from
//! `/proc/PID/stat`. Prints markdown tables of medians over the rounds, with the ratios of
//! each compared pair (by default the first target against each of the others), and the
//! lost-write check.
//!
//! `--compare OURS=PEER` names a pair of targets; `--no-peer OURS=LABEL` says that `LABEL`
//! has no counterpart of target `OURS` on this backend (its ratio cells read "no peer").
//! With two pairs or more, a summary table comes first: one column of ratios per pair.
//! `--note` lines are printed under the backend's first heading.
//!
//! Scenarios: `read` (GET /read), `mixed` (80% /read, 20% /write), `login` (GET /login
//! without a cookie: a new session every request), `hot` (every connection on one session,
//! GET /update; run at the largest connection count only).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Conn {
    stream: BufReader<TcpStream>,
    cookie: Option<String>,
    line: String,
}

struct Reply {
    status: u16,
    body: String,
}

impl Conn {
    async fn open(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self {
            stream: BufReader::new(stream),
            cookie: None,
            line: String::new(),
        })
    }

    /// One request; keeps the cookie the response sets (or drops it when removed).
    async fn get(&mut self, path: &str, send_cookie: bool) -> Result<Reply, String> {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n");
        if let (true, Some(cookie)) = (send_cookie, &self.cookie) {
            req.push_str("Cookie: ");
            req.push_str(cookie);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let io = |e: std::io::Error| e.to_string();
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(io)?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await.map_err(io)?;
        let status: u16 = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {:?}", self.line))?;
        let mut len = 0usize;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await.map_err(io)? == 0 {
                return Err("connection closed".into());
            }
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                len = value.parse().map_err(|_| "bad content-length".to_owned())?;
            } else if name.eq_ignore_ascii_case("set-cookie") {
                let pair = value.split(';').next().unwrap_or_default();
                // An empty value or `Max-Age=0` removes the cookie (a value may end with
                // `=`: base64 padding, in actix-session's encrypted cookies).
                let removed = pair
                    .split_once('=')
                    .is_none_or(|(_, v)| v.trim().is_empty())
                    || value.to_ascii_lowercase().contains("max-age=0");
                if removed {
                    self.cookie = None;
                } else if send_cookie {
                    self.cookie = Some(pair.to_owned());
                }
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await.map_err(io)?;
        Ok(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Read,
    Mixed,
    Login,
    Hot,
}

impl Scenario {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "read" => Self::Read,
            "mixed" => Self::Mixed,
            "login" => Self::Login,
            "hot" => Self::Hot,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read-only",
            Self::Mixed => "mixed 80/20",
            Self::Login => "login-heavy",
            Self::Hot => "hot session (update)",
        }
    }
}

struct Target {
    name: String,
    addr: String,
    pid: u32,
}

#[derive(Clone, Default)]
struct Cell {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    write_p99_us: f64,
    cpu_us: f64,
    errors: u64,
    acked: u64,
    lost: u64,
}

/// utime + stime of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15.
    let at = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    at(14) + at(15)
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

async fn login(addr: &str) -> Result<Conn, String> {
    let mut conn = Conn::open(addr).await?;
    let reply = conn.get("/login", true).await?;
    if reply.status != 200 || conn.cookie.is_none() {
        return Err(format!(
            "login: status {} cookie {}",
            reply.status,
            conn.cookie.is_some()
        ));
    }
    Ok(conn)
}

struct Worker {
    all: Histogram<u64>,
    writes: Histogram<u64>,
    done: u64,
    errors: u64,
    acked: u64,
    /// The cookie the connection holds at the end (a cookie store's data changes it on
    /// every write; a server-side store's usually keeps it).
    cookie: Option<String>,
}

async fn worker(
    mut conn: Conn,
    addr: String,
    scenario: Scenario,
    seed: u64,
    until: Instant,
) -> Worker {
    let mut w = Worker {
        all: hist(),
        writes: hist(),
        done: 0,
        errors: 0,
        acked: 0,
        cookie: None,
    };
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while Instant::now() < until {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (path, write, cookie) = match scenario {
            Scenario::Read => ("/read", false, true),
            Scenario::Mixed if rng.is_multiple_of(5) => ("/write", true, true),
            Scenario::Mixed => ("/read", false, true),
            Scenario::Login => ("/login", true, false),
            Scenario::Hot => ("/update", true, true),
        };
        let start = Instant::now();
        let reply = conn.get(path, cookie).await;
        let us = start.elapsed().as_micros().max(1) as u64;
        match reply {
            Ok(r) if r.status == 200 => {
                w.done += 1;
                let _ = w.all.record(us);
                if write {
                    let _ = w.writes.record(us);
                    w.acked += 1;
                }
            }
            Ok(_) => w.errors += 1,
            Err(_) => {
                w.errors += 1;
                match Conn::open(&addr).await {
                    Ok(mut fresh) => {
                        fresh.cookie = conn.cookie.take();
                        conn = fresh;
                    }
                    Err(_) => break,
                }
            }
        }
    }
    w.cookie = conn.cookie;
    w
}

/// The counter the server has for `cookie`.
async fn counter(addr: &str, cookie: &str) -> Result<u64, String> {
    let mut conn = Conn::open(addr).await?;
    conn.cookie = Some(cookie.to_owned());
    let reply = conn.get("/read", true).await?;
    reply
        .body
        .trim()
        .parse()
        .map_err(|_| format!("bad counter {:?}", reply.body))
}

async fn run_cell(t: &Target, scenario: Scenario, conns: usize, secs: f64) -> Result<Cell, String> {
    // Setup (not measured): one session per connection, or one shared for `hot`.
    let mut opened = Vec::with_capacity(conns);
    let mut shared: Option<String> = None;
    for _ in 0..conns {
        let conn = if scenario == Scenario::Hot {
            if let Some(cookie) = &shared {
                let mut c = Conn::open(&t.addr).await?;
                c.cookie = Some(cookie.clone());
                c
            } else {
                let c = login(&t.addr).await?;
                shared.clone_from(&c.cookie);
                c
            }
        } else {
            login(&t.addr).await?
        };
        opened.push(conn);
    }
    let before = cpu_ticks(t.pid);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(worker(c, t.addr.clone(), scenario, i as u64 + 1, until)))
        .collect();
    let mut workers = Vec::new();
    for task in tasks {
        workers.push(task.await.map_err(|e| e.to_string())?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(t.pid) - before;
    let mut all = hist();
    let mut writes = hist();
    let mut cell = Cell::default();
    let mut done = 0;
    for w in &workers {
        let _ = all.add(&w.all);
        let _ = writes.add(&w.writes);
        done += w.done;
        cell.errors += w.errors;
        cell.acked += w.acked;
    }
    // The lost-write check: every acknowledged write must be in the stored counter.
    match scenario {
        Scenario::Mixed => {
            for w in &workers {
                if let Some(cookie) = &w.cookie {
                    let n = counter(&t.addr, cookie).await?;
                    cell.lost += w.acked.saturating_sub(n);
                }
            }
        }
        Scenario::Hot => {
            // The best state any connection can still reach: with a server-side store every
            // cookie names the one session; with a cookie store each connection holds its own
            // copy of the data, and the copies diverge.
            let mut cookies: Vec<&String> =
                workers.iter().filter_map(|w| w.cookie.as_ref()).collect();
            cookies.extend(shared.as_ref());
            cookies.sort();
            cookies.dedup();
            let mut best = 0;
            for cookie in cookies {
                best = best.max(counter(&t.addr, cookie).await?);
            }
            if shared.is_some() {
                cell.lost = cell.acked.saturating_sub(best);
            }
        }
        Scenario::Read | Scenario::Login => {}
    }
    cell.rps = done as f64 / elapsed;
    cell.p50_us = all.value_at_quantile(0.5) as f64;
    cell.p99_us = all.value_at_quantile(0.99) as f64;
    cell.write_p99_us = writes.value_at_quantile(0.99) as f64;
    cell.cpu_us = if done == 0 {
        0.0
    } else {
        ticks as f64 * 10_000.0 / done as f64
    };
    Ok(cell)
}

/// Two targets compared in the tables: ours, and the peer (or the label of a peer that has
/// no counterpart on this backend).
struct Pair {
    ours: usize,
    peer: Result<usize, String>,
}

/// The medians of a run, for printing.
struct Report<'a> {
    backend: &'a str,
    targets: &'a [Target],
    cells: &'a [(Scenario, usize)],
    /// `results[cell][target]`: one `Cell` per round.
    results: &'a [Vec<Vec<Cell>>],
}

impl Report<'_> {
    fn median(&self, ci: usize, t: usize, f: fn(&Cell) -> f64) -> f64 {
        median(self.results[ci][t].iter().map(f).collect())
    }

    fn sum(&self, ci: usize, t: usize, f: fn(&Cell) -> u64) -> u64 {
        self.results[ci][t].iter().map(f).sum()
    }

    /// One column of ratios per pair: ours ÷ peer for req/s, CPU per request and p99.
    fn summary(&self, pairs: &[Pair]) {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "-".to_owned()
            }
        };
        println!("Each cell: ours ÷ peer of req/s · CPU µs per request · p99 latency, medians over the rounds (a req/s ratio above 1 and CPU and p99 ratios below 1 favour ours); \"peer lost\": the share of the peer's acknowledged writes missing at the end.\n");
        let mut head = "| scenario | c |".to_owned();
        let mut rule = "| --- | ---: |".to_owned();
        for pair in pairs {
            let ours = &self.targets[pair.ours].name;
            match &pair.peer {
                Ok(peer) => head.push_str(&format!(" {ours} / {} |", self.targets[*peer].name)),
                Err(label) => head.push_str(&format!(" {ours} / {label} |")),
            }
            rule.push_str(" --- |");
        }
        println!("{head}\n{rule}");
        for (ci, &(scenario, conns)) in self.cells.iter().enumerate() {
            let mut row = format!("| {} | {conns} |", scenario.name());
            for pair in pairs {
                let Ok(peer) = pair.peer else {
                    row.push_str(" no peer |");
                    continue;
                };
                let o = pair.ours;
                row.push_str(&format!(
                    " {} · {} · {}",
                    ratio(
                        self.median(ci, o, |c| c.rps),
                        self.median(ci, peer, |c| c.rps)
                    ),
                    ratio(
                        self.median(ci, o, |c| c.cpu_us),
                        self.median(ci, peer, |c| c.cpu_us)
                    ),
                    ratio(
                        self.median(ci, o, |c| c.p99_us),
                        self.median(ci, peer, |c| c.p99_us)
                    ),
                ));
                let (acked, lost) = (
                    self.sum(ci, peer, |c| c.acked),
                    self.sum(ci, peer, |c| c.lost),
                );
                if lost > 0 && acked > 0 {
                    row.push_str(&format!(
                        " (peer lost {:.0}%)",
                        lost as f64 * 100.0 / acked as f64
                    ));
                }
                let errors = self.sum(ci, o, |c| c.errors) + self.sum(ci, peer, |c| c.errors);
                if errors > 0 {
                    row.push_str(&format!(" ({errors} errors)"));
                }
                row.push_str(" |");
            }
            println!("{row}");
        }
        println!();
    }

    /// Ours against one peer, every measure.
    fn pair(&self, ours: usize, peer: usize) {
        let backend = self.backend;
        let ours_name = &self.targets[ours].name;
        let peer_name = &self.targets[peer].name;
        println!("### {backend}: {ours_name} vs {peer_name}\n");
        println!("| scenario | c | req/s {ours_name} | req/s {peer_name} | ratio | p50 µs (ours / peer) | p99 µs (ours / peer) | write p99 µs (ours / peer) | CPU µs/req (ours / peer) | errors (ours / peer) | acked writes / lost (ours; peer) |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        for (ci, &(scenario, conns)) in self.cells.iter().enumerate() {
            let m = |t: usize, f: fn(&Cell) -> f64| self.median(ci, t, f);
            let sum = |t: usize, f: fn(&Cell) -> u64| self.sum(ci, t, f);
            let (a, b) = (m(ours, |c| c.rps), m(peer, |c| c.rps));
            let writes = matches!(scenario, Scenario::Mixed | Scenario::Hot | Scenario::Login);
            let wp99 = if writes {
                format!(
                    "{:.0} / {:.0}",
                    m(ours, |c| c.write_p99_us),
                    m(peer, |c| c.write_p99_us)
                )
            } else {
                "-".into()
            };
            let lost = if matches!(scenario, Scenario::Mixed | Scenario::Hot) {
                format!(
                    "{} / {}; {} / {}",
                    sum(ours, |c| c.acked),
                    sum(ours, |c| c.lost),
                    sum(peer, |c| c.acked),
                    sum(peer, |c| c.lost)
                )
            } else {
                "-".into()
            };
            println!(
                "| {} | {conns} | {a:.0} | {b:.0} | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} | {wp99} | {:.1} / {:.1} | {} / {} | {lost} |",
                scenario.name(),
                if b > 0.0 { a / b } else { 0.0 },
                m(ours, |c| c.p50_us),
                m(peer, |c| c.p50_us),
                m(ours, |c| c.p99_us),
                m(peer, |c| c.p99_us),
                m(ours, |c| c.cpu_us),
                m(peer, |c| c.cpu_us),
                sum(ours, |c| c.errors),
                sum(peer, |c| c.errors),
            );
        }
        println!();
    }

    /// One target on its own (`label`: the library with no counterpart here).
    fn single(&self, t: usize, label: &str) {
        let backend = self.backend;
        let name = &self.targets[t].name;
        if label.is_empty() {
            println!("### {backend}: {name}\n");
        } else {
            println!("### {backend}: {name} (no {label} peer)\n");
        }
        println!("| scenario | c | req/s | p50 µs | p99 µs | write p99 µs | CPU µs/req | errors | acked writes / lost |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        for (ci, &(scenario, conns)) in self.cells.iter().enumerate() {
            let m = |f: fn(&Cell) -> f64| self.median(ci, t, f);
            let sum = |f: fn(&Cell) -> u64| self.sum(ci, t, f);
            let writes = matches!(scenario, Scenario::Mixed | Scenario::Hot | Scenario::Login);
            let wp99 = if writes {
                format!("{:.0}", m(|c| c.write_p99_us))
            } else {
                "-".into()
            };
            let lost = if matches!(scenario, Scenario::Mixed | Scenario::Hot) {
                format!("{} / {}", sum(|c| c.acked), sum(|c| c.lost))
            } else {
                "-".into()
            };
            println!(
                "| {} | {conns} | {:.0} | {:.0} | {:.0} | {wp99} | {:.1} | {} | {lost} |",
                scenario.name(),
                m(|c| c.rps),
                m(|c| c.p50_us),
                m(|c| c.p99_us),
                m(|c| c.cpu_us),
                sum(|c| c.errors),
            );
        }
        println!();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let mut backend = "memory".to_owned();
    let mut secs = 2.0;
    let mut rounds = 3;
    let mut conns_list = vec![1usize, 32];
    let mut scenarios = vec![
        Scenario::Read,
        Scenario::Mixed,
        Scenario::Login,
        Scenario::Hot,
    ];
    let mut targets = Vec::new();
    // (ours, Ok(peer) or Err(label of the missing peer)), by target name.
    let mut pairs: Vec<(String, Result<String, String>)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--backend" => backend = value()?,
            "--secs" => secs = value()?.parse().map_err(|_| "bad --secs")?,
            "--rounds" => rounds = value()?.parse().map_err(|_| "bad --rounds")?,
            "--conns" => {
                conns_list = value()?
                    .split(',')
                    .map(|c| c.parse().map_err(|_| "bad --conns".to_owned()))
                    .collect::<Result<_, _>>()?;
            }
            "--scenarios" => {
                scenarios = value()?
                    .split(',')
                    .map(|s| Scenario::parse(s).ok_or(format!("unknown scenario {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--target" => {
                let v = value()?;
                let (name, rest) = v.split_once('=').ok_or("--target NAME=ADDR@PID")?;
                let (addr, pid) = rest.split_once('@').ok_or("--target NAME=ADDR@PID")?;
                targets.push(Target {
                    name: name.to_owned(),
                    addr: addr.to_owned(),
                    pid: pid.parse().map_err(|_| "bad pid")?,
                });
            }
            "--compare" => {
                let v = value()?;
                let (ours, peer) = v.split_once('=').ok_or("--compare OURS=PEER")?;
                pairs.push((ours.to_owned(), Ok(peer.to_owned())));
            }
            "--no-peer" => {
                let v = value()?;
                let (ours, label) = v.split_once('=').ok_or("--no-peer OURS=LABEL")?;
                pairs.push((ours.to_owned(), Err(label.to_owned())));
            }
            "--note" => notes.push(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if targets.is_empty() {
        return Err("no --target".into());
    }
    let index = |name: &str| {
        targets
            .iter()
            .position(|t| t.name == name)
            .ok_or(format!("no target named {name:?}"))
    };
    let pairs: Vec<Pair> = if pairs.is_empty() {
        // The first target against each of the others.
        (1..targets.len())
            .map(|peer| Pair {
                ours: 0,
                peer: Ok(peer),
            })
            .collect()
    } else {
        pairs
            .iter()
            .map(|(ours, peer)| -> Result<Pair, String> {
                Ok(Pair {
                    ours: index(ours)?,
                    peer: match peer {
                        Ok(peer) => Ok(index(peer)?),
                        Err(label) => Err(label.clone()),
                    },
                })
            })
            .collect::<Result<_, String>>()?
    };
    let max_conns = conns_list.iter().copied().max().unwrap_or(32);
    let mut cells: Vec<(Scenario, usize)> = Vec::new();
    for &s in &scenarios {
        if s == Scenario::Hot {
            cells.push((s, max_conns));
        } else {
            cells.extend(conns_list.iter().map(|&c| (s, c)));
        }
    }
    // results[cell][target] = one Cell per round.
    let mut results = vec![vec![Vec::<Cell>::new(); targets.len()]; cells.len()];
    for round in 0..rounds {
        for (ci, &(scenario, conns)) in cells.iter().enumerate() {
            for k in 0..targets.len() {
                let ti = (k + round + ci) % targets.len();
                let cell = match run_cell(&targets[ti], scenario, conns, secs).await {
                    Ok(cell) => cell,
                    Err(e) => {
                        eprintln!("{} {} c={conns}: {e}", targets[ti].name, scenario.name());
                        Cell {
                            errors: 1,
                            ..Cell::default()
                        }
                    }
                };
                results[ci][ti].push(cell);
            }
        }
        eprintln!("{backend}: round {} of {rounds} done", round + 1);
    }
    let report = Report {
        backend: &backend,
        targets: &targets,
        cells: &cells,
        results: &results,
    };
    if pairs.len() > 1 || !notes.is_empty() {
        println!("### {backend}: ratios\n");
        for note in &notes {
            println!("- {note}");
        }
        if !notes.is_empty() {
            println!();
        }
        if pairs.len() > 1 {
            report.summary(&pairs);
        }
    }
    for (i, pair) in pairs.iter().enumerate() {
        match pair.peer {
            Ok(peer) => report.pair(pair.ours, peer),
            // A target with no peer here gets a table of its own unless a pair shows it.
            Err(ref label) => {
                let shown = pairs
                    .iter()
                    .enumerate()
                    .any(|(j, p)| p.ours == pair.ours && (p.peer.is_ok() || j < i));
                if !shown {
                    report.single(pair.ours, label);
                }
            }
        }
    }
    if pairs.is_empty() {
        report.single(0, "");
    }
    Ok(())
}
