//! The bounds of every test figure, defined once: the REST API, the LoadTest CRD and a driver
//! reading a `test_config` from Kafka check against the same numbers, so nothing a user or a
//! peer sends can reach the engine out of range (a rate of `1e-300` would otherwise ask for a
//! gap of 10²⁹⁴ s).

/// Drivers in one test.
pub const MIN_DRIVERS: usize = 2;
pub const MAX_DRIVERS: usize = 8;
/// Requests per driver.
pub const MAX_REQUESTS: u64 = 1_000_000_000;
/// A test's `total_requests` (issue 13): every driver's most, together.
pub const MAX_TOTAL_REQUESTS: u64 = MAX_REQUESTS * MAX_DRIVERS as u64;
/// A driver's declared capacity (`capacity` in `register` and `heartbeat`): cores, or a pod's
/// CPU, from a thousandth (a millicore) to 4096. Outside that it counts as undeclared.
pub const MIN_CAPACITY: f64 = 0.001;
pub const MAX_CAPACITY: f64 = 4096.0;
/// The longest Tsunami gap: one hour, in microseconds (and in milliseconds, as the REST API
/// and the LoadTest take it).
pub const MAX_DELAY_US: u64 = 3_600_000_000;
pub const MAX_DELAY_MS: f64 = (MAX_DELAY_US / 1000) as f64;
/// Requests per second per driver: at most ten million, at least one an hour.
pub const MAX_RATE: f64 = 10_000_000.0;
pub const MIN_RATE: f64 = 1.0 / 3600.0;
/// Connections per driver.
pub const MAX_CONCURRENCY: u64 = 10_000;
/// Per-request timeout.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// A Floodgate driver stops sending when it has heard neither the orchestrator nor a majority
/// of the test's participants for this long (issue 13's fail-safe); 0 turns it off. Longer
/// than a broker restart (a few seconds) by default, so an outage all nodes see is waited out.
pub const DEFAULT_FAIL_SAFE_MS: u64 = 15_000;
pub const MIN_FAIL_SAFE_MS: u64 = 1_000;
pub const MAX_FAIL_SAFE_MS: u64 = 3_600_000;

/// `fail_safe_ms`: 0 (off) or from [`MIN_FAIL_SAFE_MS`] to [`MAX_FAIL_SAFE_MS`].
pub fn check_fail_safe_ms(ms: u64) -> Result<u64, String> {
    if ms == 0 || (MIN_FAIL_SAFE_MS..=MAX_FAIL_SAFE_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "must be 0 (off) or between {MIN_FAIL_SAFE_MS} and {MAX_FAIL_SAFE_MS}"
        ))
    }
}
/// How far ahead of its trigger a test may be set to start: a driver waiting for a start is
/// busy, so a start days away (a bug, or a hostile peer) would take it out of every later test.
pub const MAX_START_AHEAD_MS: u64 = 300_000;
/// Request headers a test may set, and their total size (names, values and `": \r\n"`): a
/// request head stays well inside what HTTP servers accept (8 KiB to 16 KiB, commonly).
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// A target URL.
pub const MAX_URL_LEN: usize = 8 * 1024;
/// An ID that arrives from the network (driver, test, report and orchestrator IDs), in bytes.
/// UUIDs and host names fit many times over; a 1 MB ID does not get into the registry or into
/// every dashboard event.
pub const MAX_ID_LEN: usize = 128;
/// Any other short string from Kafka (an address, an agent or version name, a timestamp, a
/// status word), in bytes.
pub const MAX_TEXT_LEN: usize = 512;
/// A reason a driver gives for a refused or stopped run, in bytes.
pub const MAX_REASON_LEN: usize = 4 * 1024;
/// Drivers the orchestrator remembers (registered, alive or not): a bound on its memory and on
/// every `/api/v1/drivers` answer and dashboard event, whatever is put on `register`.
pub const MAX_KNOWN_DRIVERS: usize = 64;
/// A time-bound test (issue 12): its duration, or the sum of its stages, at most a day; at
/// most this many rate stages.
pub const MAX_DURATION_MS: u64 = 86_400_000;
pub const MAX_STAGES: usize = 32;
/// Concurrent streams on one HTTP/2 connection (`streams_per_connection`): servers commonly
/// allow 100 to 256 (hyper 200, nginx 128), and more would only queue in the client.
pub const MAX_STREAMS_PER_CONNECTION: u64 = 256;
/// Connections times streams per connection: each stream is a task of the engine, and this
/// keeps a driver's memory for them to tens of megabytes.
pub const MAX_STREAMS_TOTAL: u64 = 100_000;
/// A CA bundle sent inline (`tls.ca_pem`): a few certificates are some kilobytes, and the
/// whole `test_config` must stay well inside Kafka's default 1 MB message.
pub const MAX_CA_PEM_BYTES: usize = 256 * 1024;
/// A TLS server name (`tls.server_name`): the longest DNS name.
pub const MAX_SERVER_NAME_LEN: usize = 253;
/// A request mix (issue 12): entries, the weight of one, and the bytes of bodies. A Kafka message
/// holds the whole `test_config`, so bodies are bounded well under a broker's 1 MiB default.
pub const MAX_MIX_ENTRIES: usize = 32;
pub const MAX_WEIGHT: u32 = 1_000;
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const MAX_MIX_BODY_BYTES: usize = 512 * 1024;
/// Checks (issue 12): status codes or ranges, the length of a body substring or an expected JSON
/// value, and JSON pointer checks, each per set of checks.
pub const MAX_STATUS_RANGES: usize = 16;
pub const MAX_CHECK_TEXT: usize = 1024;
pub const MAX_JSON_CHECKS: usize = 8;
/// Live rate changes of one running test (issue 13): each is a segment of every driver's
/// schedule, held in a fixed array the engine allocates once.
pub const MAX_RATE_CHANGES: usize = 64;
/// How far ahead of the request a rate change takes effect: long enough for the control message
/// to reach every driver through Kafka (tens of ms) on a busy machine, so all switch together.
pub const RATE_CHANGE_LEAD_MS: u64 = 1_000;
/// What a test that names no concurrency or timeout gets (as oha: 50 connections).
pub const DEFAULT_CONCURRENCY: u64 = 50;
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// What one deployment lets a test ask for: at most the hard limits above, lower where the
/// operators of a deployment say so (`--max-requests-per-driver`, `--max-concurrency`,
/// `--max-rate`). The REST API and the LoadTest operator check a spec against the same caps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Caps {
    pub requests: u64,
    pub concurrency: u64,
    /// Requests per second per driver; a test that names no rate gets this one when it is
    /// lower than [`MAX_RATE`] (an uncapped test would exceed it).
    pub rate: f64,
}

impl Default for Caps {
    fn default() -> Self {
        Self::HARD
    }
}

impl Caps {
    /// The hard limits themselves.
    pub const HARD: Caps = Caps {
        requests: MAX_REQUESTS,
        concurrency: MAX_CONCURRENCY,
        rate: MAX_RATE,
    };

    /// A deployment's caps; each absent one is the hard limit, and none may exceed it.
    pub fn new(
        requests: Option<u64>,
        concurrency: Option<u64>,
        rate: Option<f64>,
    ) -> Result<Caps, String> {
        let requests = requests.unwrap_or(MAX_REQUESTS);
        if !(1..=MAX_REQUESTS).contains(&requests) {
            return Err(format!(
                "the requests cap must be between 1 and {MAX_REQUESTS}"
            ));
        }
        let concurrency = concurrency.unwrap_or(MAX_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(format!(
                "the concurrency cap must be between 1 and {MAX_CONCURRENCY}"
            ));
        }
        let rate = check_rate(rate.unwrap_or(MAX_RATE)).map_err(|e| format!("the rate cap {e}"))?;
        Ok(Caps {
            requests,
            concurrency,
            rate,
        })
    }

    /// Whether the rate is capped below the hard limit (so a test must be paced).
    pub fn caps_rate(&self) -> bool {
        self.rate < MAX_RATE
    }
}

/// Checks a rate cap; the message says the allowed range.
pub fn check_rate(rate: f64) -> Result<f64, String> {
    if rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "must be between {MIN_RATE:.6} (one an hour) and {MAX_RATE} requests/s"
        ))
    }
}

/// Checks a stage's rate (or a `start_rate`): 0 (a pause) or a rate [`check_rate`] accepts.
pub fn check_stage_rate(rate: f64) -> Result<f64, String> {
    if rate == 0.0 {
        return Ok(0.0);
    }
    check_rate(rate).map_err(|e| format!("{e}, or 0 for a pause"))
}

/// Checks a test's or a stage's duration in milliseconds.
pub fn check_duration_ms(ms: u64) -> Result<u64, String> {
    if (1..=MAX_DURATION_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "must be between 1 ms and {} h",
            MAX_DURATION_MS / 3_600_000
        ))
    }
}

/// Checks a delay in microseconds.
pub fn check_delay_us(us: f64) -> Result<u64, String> {
    if us.is_finite() && (0.0..=MAX_DELAY_US as f64).contains(&us) {
        Ok(us.round() as u64)
    } else {
        Err(format!("must be between 0 and {} ms", MAX_DELAY_US / 1000))
    }
}

/// Checks the length of an ID from the network; the message says the limit.
pub fn check_id(id: &str) -> Result<&str, String> {
    check_len(id, MAX_ID_LEN)
}

/// Checks the length of a string from the network against `max` bytes.
pub fn check_len(s: &str, max: usize) -> Result<&str, String> {
    if s.len() <= max {
        Ok(s)
    } else {
        Err(format!(
            "is {} bytes long; at most {max} are accepted",
            s.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_figures_are_refused_not_converted() {
        assert!(check_rate(1e-300).is_err());
        assert!(check_rate(f64::INFINITY).is_err());
        assert!(check_rate(0.0).is_err());
        assert_eq!(check_rate(500.0), Ok(500.0));
        assert!(check_delay_us(1e300).is_err());
        assert!(check_delay_us(-1.0).is_err());
        assert!(check_delay_us(f64::NAN).is_err());
        assert_eq!(check_delay_us(2_500.4), Ok(2_500));
        assert_eq!(check_delay_us(MAX_DELAY_US as f64), Ok(MAX_DELAY_US));
        assert!(check_id(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(check_id(&"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert_eq!(check_stage_rate(0.0), Ok(0.0));
        assert_eq!(check_stage_rate(100.0), Ok(100.0));
        assert!(check_stage_rate(-1.0).is_err() && check_stage_rate(1e-300).is_err());
        assert!(check_stage_rate(f64::NAN).is_err());
        assert_eq!(check_duration_ms(MAX_DURATION_MS), Ok(MAX_DURATION_MS));
        assert!(check_duration_ms(0).is_err() && check_duration_ms(MAX_DURATION_MS + 1).is_err());
    }

    #[test]
    fn deployment_caps_are_at_most_the_hard_limits() {
        assert_eq!(Caps::new(None, None, None), Ok(Caps::HARD));
        let c = Caps::new(Some(10), Some(4), Some(100.0)).expect("valid");
        assert_eq!((c.requests, c.concurrency, c.rate), (10, 4, 100.0));
        assert!(c.caps_rate() && !Caps::HARD.caps_rate());
        assert!(Caps::new(Some(MAX_REQUESTS + 1), None, None).is_err());
        assert!(Caps::new(Some(0), None, None).is_err());
        assert!(Caps::new(None, Some(MAX_CONCURRENCY + 1), None).is_err());
        assert!(Caps::new(None, None, Some(MAX_RATE * 2.0)).is_err());
        assert!(Caps::new(None, None, Some(f64::NAN)).is_err());
    }
}
