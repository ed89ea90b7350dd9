//! Test support shared by the workspace's process-level tests: child processes that are killed
//! when dropped and whose output is kept for diagnosis, and polling with a deadline (never a
//! sleep as synchronisation).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some`, or panics with `what` at the deadline.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process killed on drop, with its output kept for diagnosis.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `bin` with `args` and `envs` (and `FLOODGATE_LOG=info`, so Floodgate's nodes log
    /// what the tests look for).
    pub fn spawn(name: &str, bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.args(args).env("FLOODGATE_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Proc::start(name, &mut cmd)
    }

    /// Starts a prepared command, its output piped and kept.
    pub fn start(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Proc {
            name: name.to_string(),
            child,
            lines,
        }
    }

    /// Waits for an output line containing `needle` and returns it.
    pub async fn wait_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before printing {needle:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {needle:?} within {within:?}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// SIGSTOP, then SIGCONT after `pause`: the process is frozen (a GC pause, a VM stall, a
    /// partition that heals), its sockets and timers untouched.
    pub async fn pause_for(&mut self, pause: Duration) {
        let pid = self.child.id().to_string();
        let signal = |sig: &str| {
            let ok = Command::new("kill")
                .args([sig, &pid])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} {pid}");
        };
        signal("-STOP");
        tokio::time::sleep(pause).await;
        signal("-CONT");
    }

    /// SIGKILL: the process gets no chance to say goodbye (a crash, a lost node).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        eventually(
            &format!("{} to exit", self.name),
            Duration::from_secs(15),
            async || self.child.try_wait().ok().flatten(),
        )
        .await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- output of {} -----\n{}", self.name, self.output());
        }
    }
}

impl Proc {
    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let name = self.name.clone();
        eventually(&format!("{name} to exit"), within, async || {
            self.child.try_wait().ok().flatten()
        })
        .await
        .code()
    }

    /// Every output line that starts with `prefix`, without it.
    pub fn lines_starting(&self, prefix: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix(prefix).map(str::to_string))
            .collect()
    }
}
