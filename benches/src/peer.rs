//! The client side of the tower-sessions peer process (`benches/peer`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::runner::{Op, PhaseResult};

/// A running peer process.
pub struct PeerClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PeerClient {
    /// Starts the peer binary.
    pub fn spawn(bin: &Path) -> Result<PeerClient, String> {
        let mut child = Command::new(bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the peer process {}: {e}", bin.display()))?;
        let stdin = child.stdin.take().ok_or("peer stdin")?;
        let stdout = child.stdout.take().ok_or("peer stdout")?;
        Ok(PeerClient {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    async fn call(&mut self, cmd: Value) -> Result<Value, String> {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("peer write: {e}"))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| format!("peer write: {e}"))?;
        let answer = self
            .lines
            .next_line()
            .await
            .map_err(|e| format!("peer read: {e}"))?
            .ok_or("the peer process exited")?;
        let v: Value = serde_json::from_str(&answer).map_err(|e| format!("peer answer: {e}"))?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            return Err(format!("peer: {e}"));
        }
        Ok(v)
    }

    /// Sets up the peer's store for a backend and prefills it.
    pub async fn setup(
        &mut self,
        backend: &str,
        url: &str,
        prefill: usize,
        table: &str,
    ) -> Result<(), String> {
        self.call(json!({
            "cmd": "setup", "backend": backend, "url": url, "prefill": prefill,
            "table": table, "pool": 16,
        }))
        .await
        .map(drop)
    }

    /// Runs one phase in the peer process.
    pub async fn run(
        &mut self,
        op: Op,
        tasks: usize,
        round: u32,
        duration: Duration,
    ) -> Result<PhaseResult, String> {
        let v = self
            .call(json!({
                "cmd": "run", "op": op.name(), "tasks": tasks, "round": round,
                "duration_ms": duration.as_millis() as u64,
            }))
            .await?;
        PhaseResult::from_json(&v).ok_or_else(|| format!("peer answer: {v}"))
    }

    /// Removes the prefilled sessions and drops the store.
    pub async fn teardown(&mut self) -> Result<(), String> {
        self.call(json!({"cmd": "teardown"})).await.map(drop)
    }

    /// Stops the process.
    pub async fn quit(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = self.stdin.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
