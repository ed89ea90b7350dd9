//! The CLI's handling of bad input: a non-zero exit and one line saying what to fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn bad_flags_exit_non_zero_with_one_line() {
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "test",
                "run",
                "--type",
                "storm",
                "-n",
                "5",
                "--url",
                "http://h/",
            ],
            "--type",
        ),
        (
            &[
                "test",
                "run",
                "--type",
                "tsunami",
                "-n",
                "many",
                "--url",
                "http://h/",
            ],
            "--requests",
        ),
        (&["driver", "--orchestrator", "127.0.0.1:1"], "--kafka"),
        (
            &[
                "orchestrator",
                "--kafka",
                "127.0.0.1:1",
                "--listen",
                "nonsense",
            ],
            "--listen",
        ),
        (
            &[
                "driver",
                "--kafka",
                "127.0.0.1:1",
                "--orchestrator",
                "x",
                "--report-ms",
                "5000",
            ],
            "--report-ms",
        ),
        (&["load", "--url", "ftp://x", "-n", "1"], "--url"),
    ];
    for (args, names) in cases {
        let (code, err) = run(args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?} printed more than one line:\n{err}"
        );
        assert!(err.contains(names), "{args:?}: {err}");
    }
}

#[test]
fn an_unreachable_orchestrator_is_one_clear_line() {
    let (code, err) = run(&["nodes", "--orchestrator", "127.0.0.1:1"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--orchestrator"), "{err}");
}

#[test]
fn help_and_version_exit_zero() {
    for flag in ["--help", "--version"] {
        let out = Command::new(env!("CARGO_BIN_EXE_floodgate"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
}
