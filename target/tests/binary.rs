//! Tests of the real `floodgate-target` executable: startup line, a ping, signals and CLI errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floodgate-target"));
    // The developer's shell must not change what the tests see.
    for (name, _) in std::env::vars() {
        if name.starts_with("FLOODGATE_TARGET_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Kills the child if a test fails before it exits on its own.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the server and returns it with the address from its startup line.
fn start(configure: impl FnOnce(&mut Command)) -> (Running, SocketAddr) {
    let mut command = command();
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    configure(&mut command);
    let mut child = Running(command.spawn().expect("spawn floodgate-target"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(DEADLINE)
        .expect("no startup line before the deadline")
        .expect("readable stdout");
    let addr = line
        .strip_prefix("floodgate-target listening on ")
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
        .parse::<SocketAddr>()
        .expect("address in startup line");
    (child, addr)
}

/// GET over a raw socket, so this test also covers what non-hyper clients see.
fn raw_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

fn send_signal(child: &mut Running, signal: &str) -> Option<ExitStatus> {
    let pid = child.0.id().to_string();
    let sent = Command::new("kill")
        .args([signal, &pid])
        .status()
        .is_ok_and(|s| s.success());
    // Without a `kill` command the graceful path cannot be exercised here.
    sent.then(|| wait_with_deadline(&mut child.0))
}

#[test]
fn binary_prints_its_port_serves_ping_and_exits_cleanly_on_sigterm() {
    let (mut child, addr) = start(|c| {
        c.args(["--listen", "127.0.0.1:0", "--threads", "2"]);
    });
    assert_ne!(addr.port(), 0);
    let response = raw_get(addr, "/ping");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response
        .to_ascii_lowercase()
        .contains("content-type: application/json\r\n"));
    assert!(
        response.ends_with("\r\n\r\n{\"message\":\"pong\"}"),
        "{response}"
    );
    let metrics = raw_get(addr, "/metrics");
    assert!(
        metrics.ends_with(r#"{"requests_received":1,"responses_sent":1,"paths":{"/ping":1}}"#),
        "{metrics}"
    );
    if let Some(status) = send_signal(&mut child, "-TERM") {
        assert!(status.success(), "exit status {status}");
    }
}

#[test]
fn binary_handles_sigint_sent_right_after_the_startup_line() {
    let (mut child, _addr) = start(|c| {
        c.args(["--listen", "127.0.0.1:0"]);
    });
    if let Some(status) = send_signal(&mut child, "-INT") {
        assert!(status.success(), "exit status {status}");
    }
}

#[test]
fn binary_reads_flags_from_environment() {
    let (_child, addr) = start(|c| {
        c.env("FLOODGATE_TARGET_LISTEN", "127.0.0.1:0")
            .env("FLOODGATE_TARGET_ERROR_RATIO", "1");
    });
    let response = raw_get(addr, "/ping");
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    assert!(response.ends_with(r#"{"error":"injected"}"#), "{response}");
}

fn run_expecting_failure(configure: impl FnOnce(&mut Command)) -> String {
    let mut command = command();
    // Should a case wrongly parse, the server must not grab a fixed port.
    command
        .env("FLOODGATE_TARGET_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    configure(&mut command);
    let mut child = Running(command.spawn().expect("spawn"));
    let status = wait_with_deadline(&mut child.0);
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "should have failed; stderr: {stderr}");
    stderr
}

#[test]
fn bad_flags_exit_non_zero_with_one_line() {
    // (arguments, environment, what the message must mention)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--latency-ms", "-1"], &[], "--latency-ms"),
        (&["--latency-jitter-ms", "abc"], &[], "--latency-jitter-ms"),
        (&["--error-ratio", "1.5"], &[], "--error-ratio"),
        (&["--error-ratio=-0.2"], &[], "--error-ratio"),
        (&["--threads", "0"], &[], "--threads"),
        (&["--bogus"], &[], "--bogus"),
        (
            &[],
            &[("FLOODGATE_TARGET_ERROR_RATIO", "2")],
            "--error-ratio",
        ),
        (
            &[],
            &[("FLOODGATE_TARGET_LATENCY_MS", "-5")],
            "--latency-ms",
        ),
    ];
    for (args, env, mentions) in cases {
        let stderr = run_expecting_failure(|c| {
            c.args(*args).envs(env.iter().copied());
        });
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?} {env:?}: {stderr:?}");
        assert!(lines[0].starts_with("error: "), "{stderr:?}");
        assert!(lines[0].contains(mentions), "{stderr:?}");
    }
}

#[test]
fn bind_failure_exits_non_zero_with_one_line() {
    // Occupy a port so the server cannot bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let stderr = run_expecting_failure(|c| {
        c.args(["--listen", &addr]);
    });
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains(&addr), "{stderr:?}");
}
