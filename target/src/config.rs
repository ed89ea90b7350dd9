//! Command-line and environment configuration of the target server, with range validation.

use std::net::SocketAddr;

use clap::Parser;

/// Added latency is capped so `Duration::from_secs_f64` can never overflow and
/// a typo (seconds instead of milliseconds) is caught instead of hanging clients.
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;

/// Each recorded arrival costs 8 bytes, preallocated at start; the cap keeps a
/// typo from reserving gigabytes.
pub const MAX_RECORD_ARRIVALS: usize = 50_000_000;

/// Settings of one `floodgate-target` process. Every flag can also be set with
/// an environment variable `FLOODGATE_TARGET_<FLAG>`.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "floodgate-target",
    version,
    about = "A lean HTTP target server for load tests: /ping, /metrics, /reset, /arrivals"
)]
pub struct Config {
    /// Address to listen on; use port 0 for an ephemeral port (the chosen one is printed).
    #[arg(
        long,
        env = "FLOODGATE_TARGET_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Tokio worker threads [default: number of CPUs].
    #[arg(
        long,
        env = "FLOODGATE_TARGET_THREADS",
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_threads
    )]
    pub threads: Option<usize>,

    /// Fixed latency added before answering /ping, in milliseconds (fractions allowed).
    #[arg(
        long,
        env = "FLOODGATE_TARGET_LATENCY_MS",
        value_name = "MS",
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_parser = parse_latency_ms
    )]
    pub latency_ms: f64,

    /// Extra uniform random latency in [0, MS) added on top of --latency-ms.
    #[arg(
        long,
        env = "FLOODGATE_TARGET_LATENCY_JITTER_MS",
        value_name = "MS",
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_parser = parse_latency_ms
    )]
    pub latency_jitter_ms: f64,

    /// Fraction of /ping requests answered with 500 {"error":"injected"}, in [0, 1].
    #[arg(
        long,
        env = "FLOODGATE_TARGET_ERROR_RATIO",
        value_name = "RATIO",
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_parser = parse_ratio
    )]
    pub error_ratio: f64,

    /// Record the arrival time of the first N /ping requests, served by GET /arrivals (0 = off).
    #[arg(
        long,
        env = "FLOODGATE_TARGET_RECORD_ARRIVALS",
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_record_arrivals
    )]
    pub record_arrivals: usize,
    /// Count the /ping requests that carry this header and keep its last value, served by
    /// GET /headers (for tests that check what a load tester really sent).
    #[arg(long, env = "FLOODGATE_TARGET_RECORD_HEADER", value_name = "NAME")]
    pub record_header: Option<String>,
    /// Serve HTTPS with a freshly generated CA and server certificate (for localhost,
    /// 127.0.0.1, ::1); the CA's PEM is written to PATH for clients to trust.
    #[arg(long, env = "FLOODGATE_TARGET_TLS_SELF_SIGNED", value_name = "PATH")]
    pub tls_self_signed: Option<std::path::PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(
        long,
        env = "FLOODGATE_TARGET_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "FLOODGATE_TARGET_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,
    /// On a plain port, also serve HTTP/2 with prior knowledge (h2c). Over TLS, HTTP/2 is
    /// always offered (ALPN).
    #[arg(long, env = "FLOODGATE_TARGET_H2C")]
    pub h2c: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            threads: None,
            latency_ms: 0.0,
            latency_jitter_ms: 0.0,
            error_ratio: 0.0,
            record_arrivals: 0,
            record_header: None,
            tls_self_signed: None,
            tls_cert: None,
            tls_key: None,
            h2c: false,
        }
    }
}

impl Config {
    /// Re-checks the ranges clap enforces, for configs built in code (tests, embedders).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(threads) = self.threads {
            check_threads(threads).map_err(|e| format!("--threads: {e}"))?;
        }
        check_latency_ms(self.latency_ms).map_err(|e| format!("--latency-ms: {e}"))?;
        check_latency_ms(self.latency_jitter_ms)
            .map_err(|e| format!("--latency-jitter-ms: {e}"))?;
        check_ratio(self.error_ratio).map_err(|e| format!("--error-ratio: {e}"))?;
        check_record_arrivals(self.record_arrivals)
            .map_err(|e| format!("--record-arrivals: {e}"))?;
        Ok(())
    }

    /// The worker thread count to use: `--threads`, else the CPU count.
    pub fn worker_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

fn parse_threads(s: &str) -> Result<usize, String> {
    let n = s
        .trim()
        .parse::<usize>()
        .map_err(|_| "expected a positive integer".to_string())?;
    check_threads(n)?;
    Ok(n)
}

fn check_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(())
}

fn parse_latency_ms(s: &str) -> Result<f64, String> {
    let ms = s
        .trim()
        .parse::<f64>()
        .map_err(|_| "expected a number of milliseconds".to_string())?;
    check_latency_ms(ms)?;
    Ok(ms)
}

fn check_latency_ms(ms: f64) -> Result<(), String> {
    if ms.is_nan() || ms < 0.0 {
        return Err("must not be negative".into());
    }
    if ms > MAX_LATENCY_MS {
        return Err(format!("must be at most {MAX_LATENCY_MS} ms"));
    }
    Ok(())
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let ratio = s
        .trim()
        .parse::<f64>()
        .map_err(|_| "expected a number between 0 and 1".to_string())?;
    check_ratio(ratio)?;
    Ok(ratio)
}

fn check_ratio(ratio: f64) -> Result<(), String> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err("must be between 0 and 1".into());
    }
    Ok(())
}

fn parse_record_arrivals(s: &str) -> Result<usize, String> {
    let n = s
        .trim()
        .parse::<usize>()
        .map_err(|_| "expected a non-negative integer".to_string())?;
    check_record_arrivals(n)?;
    Ok(n)
}

fn check_record_arrivals(n: usize) -> Result<(), String> {
    if n > MAX_RECORD_ARRIVALS {
        return Err(format!("must be at most {MAX_RECORD_ARRIVALS}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("floodgate-target").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_default_impl() {
        // Env vars of the surrounding shell would leak into the parse; only
        // compare when none is set.
        if std::env::vars().any(|(k, _)| k.starts_with("FLOODGATE_TARGET_")) {
            return;
        }
        assert_eq!(parse(&[]).unwrap(), Config::default());
    }

    #[test]
    fn accepts_valid_knobs() {
        let c = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "3",
            "--latency-ms",
            "1.5",
            "--latency-jitter-ms",
            "0.25",
            "--error-ratio",
            "1",
            "--record-arrivals",
            "10",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.worker_threads(), 3);
        assert_eq!(c.latency_ms, 1.5);
        assert_eq!(c.latency_jitter_ms, 0.25);
        assert_eq!(c.error_ratio, 1.0);
        assert_eq!(c.record_arrivals, 10);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn rejects_out_of_range_knobs() {
        for args in [
            &["--latency-ms", "-1"][..],
            &["--latency-ms", "NaN"],
            &["--latency-ms", "inf"],
            &["--latency-jitter-ms", "-0.5"],
            &["--error-ratio", "1.01"],
            &["--error-ratio", "-0.1"],
            &["--threads", "0"],
            &["--record-arrivals", "-3"],
            &["--threads", "-2"],
            &["--record-arrivals", "999999999999"],
            &["--listen", "not-an-address"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
    }

    #[test]
    fn validate_catches_configs_built_in_code() {
        let bad = Config {
            error_ratio: 2.0,
            ..Config::default()
        };
        assert!(bad.validate().unwrap_err().contains("--error-ratio"));
        let bad = Config {
            latency_ms: f64::NAN,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
    }
}
