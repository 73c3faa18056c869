//! `faultproxy --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT --control FILE`
//!
//! A TCP proxy between the demo app and its store server that degrades the network on
//! command, for `scripts/faults`: this machine's kernel has no `netem` queueing discipline
//! (`tc qdisc add dev lo root netem delay 200ms` answers "Specified qdisc kind is
//! unknown"), so the network faults are made here, in user space, on loopback. The mode is
//! the first line of the control file, read every 10 ms:
//!
//! - `pass`: bytes are forwarded as they come;
//! - `delay MS`: every chunk read, in either direction, is forwarded MS milliseconds after
//!   it was read (so a round trip costs 2 × MS more), order kept;
//! - `loss PERCENT`: what packet loss costs a TCP stream: each chunk is, with that
//!   probability, held for a retransmission timeout (200 ms, Linux's minimum), and again
//!   with the same probability for each doubling of it; the chunks behind a held one wait
//!   for it (head-of-line blocking, as in TCP);
//! - `partition`: nothing is forwarded and no new upstream connection is opened (clients'
//!   connections are accepted and then hang, as a connect whose SYNs are dropped would);
//!   what was read is delivered when the partition ends, as TCP's retransmissions would.
//!
//! An unknown mode is reported on stderr and ignored (the previous mode stays).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use session_reliability::Args;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Linux's minimum retransmission timeout.
const RTO: Duration = Duration::from_millis(200);

/// What the proxy does to the bytes it forwards.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Pass,
    Delay(Duration),
    Loss { percent: u32 },
    Partition,
}

impl Mode {
    fn parse(line: &str) -> Option<Mode> {
        let mut words = line.split_whitespace();
        let mode = match (words.next()?, words.next()) {
            ("pass", None) => Mode::Pass,
            ("partition", None) => Mode::Partition,
            ("delay", Some(ms)) => Mode::Delay(Duration::from_millis(ms.parse().ok()?)),
            ("loss", Some(p)) => Mode::Loss {
                percent: p.parse().ok().filter(|p| *p <= 100)?,
            },
            _ => return None,
        };
        words.next().is_none().then_some(mode)
    }

    /// How long a chunk read now waits before it is forwarded (a partition holds it in
    /// the writer instead).
    fn hold(self) -> Duration {
        match self {
            Mode::Pass | Mode::Partition => Duration::ZERO,
            Mode::Delay(d) => d,
            Mode::Loss { percent } => {
                let mut hold = Duration::ZERO;
                let mut rto = RTO;
                while hold < Duration::from_secs(30) && fastrand::u32(0..100) < percent {
                    hold += rto;
                    rto *= 2;
                }
                hold
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultproxy: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let args = Args::parse(std::env::args().skip(1))?;
    let listen = args.get("listen").ok_or("--listen is required")?;
    let upstream = args
        .get("upstream")
        .ok_or("--upstream is required")?
        .to_owned();
    let control = PathBuf::from(args.get("control").ok_or("--control is required")?);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let (mode_tx, mode_rx) = watch::channel(Mode::Pass);
    tokio::spawn(watch_control(control, mode_tx));
    loop {
        let (client, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accepting on {listen}: {e}"))?;
        let upstream = upstream.clone();
        let mode = mode_rx.clone();
        tokio::spawn(async move {
            if let Err(e) = proxy(client, &upstream, mode).await {
                eprintln!("faultproxy: a connection ended: {e}");
            }
        });
    }
}

/// Polls the control file and publishes each new mode.
async fn watch_control(path: PathBuf, tx: watch::Sender<Mode>) {
    let mut last_line = String::new();
    loop {
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            let line = text.lines().next().unwrap_or("").trim().to_owned();
            if line != last_line {
                match Mode::parse(&line) {
                    Some(mode) => {
                        eprintln!("faultproxy: mode {mode:?}");
                        tx.send_replace(mode);
                    }
                    None if line.is_empty() => {}
                    None => eprintln!("faultproxy: unknown mode {line:?} ignored"),
                }
                last_line = line;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits while the mode is `Partition`.
async fn out_of_partition(mode: &mut watch::Receiver<Mode>) -> Result<(), String> {
    mode.wait_for(|m| *m != Mode::Partition)
        .await
        .map(|_| ())
        .map_err(|_| "the control task ended".to_owned())
}

async fn proxy(
    client: TcpStream,
    upstream: &str,
    mut mode: watch::Receiver<Mode>,
) -> Result<(), String> {
    out_of_partition(&mut mode).await?;
    let server = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connecting to {upstream}: {e}"))?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, mode.clone());
    let down = pump(server_read, client_write, mode);
    // One direction ending (EOF or error) ends the other once its queue drains.
    let (a, b) = tokio::join!(up, down);
    a.and(b)
}

/// Forwards one direction: a reader stamps each chunk with when it may leave, a writer
/// sends the chunks in order, each no earlier than its stamp and never during a partition.
async fn pump<R, W>(mut from: R, mut to: W, mode: watch::Receiver<Mode>) -> Result<(), String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader_mode = mode.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = Instant::now() + reader_mode.borrow().hold();
            if tx.send((due, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        // Dropping `tx` tells the writer the stream ended.
    };
    let writer = async move {
        let mut mode = mode;
        let mut last_due = Instant::now();
        while let Some((due, bytes)) = rx.recv().await {
            // In order: a chunk never overtakes the one before it.
            last_due = last_due.max(due);
            tokio::time::sleep_until(last_due).await;
            out_of_partition(&mut mode).await?;
            to.write_all(&bytes)
                .await
                .map_err(|e| format!("forwarding: {e}"))?;
        }
        let _ = to.shutdown().await;
        Ok::<(), String>(())
    };
    let ((), result) = tokio::join!(reader, writer);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_bad_lines_are_refused() {
        assert_eq!(Mode::parse("pass"), Some(Mode::Pass));
        assert_eq!(Mode::parse("partition"), Some(Mode::Partition));
        assert_eq!(
            Mode::parse("delay 200"),
            Some(Mode::Delay(Duration::from_millis(200)))
        );
        assert_eq!(Mode::parse("loss 10"), Some(Mode::Loss { percent: 10 }));
        for bad in [
            "",
            "delay",
            "delay x",
            "loss 101",
            "pass 1",
            "drop",
            "delay 1 2",
        ] {
            assert_eq!(Mode::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn loss_holds_about_the_share_of_chunks_it_names() {
        let n = 20_000;
        let held = (0..n)
            .filter(|_| !Mode::Loss { percent: 10 }.hold().is_zero())
            .count();
        // 10% ± 2% of 20,000 draws (the standard deviation is about 0.2%).
        assert!((1_600..=2_400).contains(&held), "{held} of {n} held");
        assert!((0..1000).all(|_| Mode::Loss { percent: 0 }.hold().is_zero()));
        assert_eq!(
            Mode::Delay(Duration::from_millis(7)).hold(),
            Duration::from_millis(7)
        );
    }
}
