//! How a test talks to its target (a Floodgate extension of `test_config`): the HTTP version,
//! streams per HTTP/2 connection, and TLS settings. Absent means today's HTTP/1.1 with system
//! roots; the checks here are shared by the wire, the REST API and the CLI, naming the field.

use super::lenient::{lenient_bool, lenient_opt_u64};
use super::limits;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// `http_version`: `"1.1"` (the default) or `"2"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    #[default]
    Http11,
    /// HTTP/2: negotiated with ALPN over `https://`, prior knowledge (h2c) over `http://`.
    Http2,
}

impl HttpVersion {
    pub fn as_wire(self) -> &'static str {
        match self {
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }

    /// The spellings users and tools write: `1.1`, `http/1.1`, `2`, `2.0`, `h2`, `h2c`, `http/2`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("http/").unwrap_or(&s);
        match s {
            "1.1" | "1" | "http1" | "h1" => Some(HttpVersion::Http11),
            "2" | "2.0" | "h2" | "h2c" | "http2" => Some(HttpVersion::Http2),
            _ => None,
        }
    }

    pub fn is_default(&self) -> bool {
        *self == HttpVersion::Http11
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_wire())
    }
}

impl Serialize for HttpVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_wire())
    }
}

impl<'de> Deserialize<'de> for HttpVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A number too: `2` and `1.1` are what a hand-written JSON most likely holds.
        let text = match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(de::Error::custom(format!(
                    "want \"1.1\" or \"2\", got {other}"
                )))
            }
        };
        HttpVersion::parse(&text)
            .ok_or_else(|| de::Error::custom(format!("want \"1.1\" or \"2\", got {text:?}")))
    }
}

/// `tls`: how an `https://` target's certificate is checked. Liberal on the wire (unknown
/// fields are ignored, as everywhere in `test_config`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSettings {
    /// Trust these CA certificates (PEM, one or more) instead of the system roots. Inline,
    /// because a driver cannot read the orchestrator's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Accept any certificate (test environments only): the connection is encrypted but the
    /// server is not authenticated.
    #[serde(
        default,
        deserialize_with = "lenient_bool",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub insecure_skip_verify: bool,
    /// The name sent in SNI and checked against the certificate, instead of the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl TlsSettings {
    /// Whether every setting is the default (nothing to send).
    pub fn is_default(&self) -> bool {
        *self == TlsSettings::default()
    }
}

/// The three transport fields of a test, together (absent on the wire = the default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    pub http_version: HttpVersion,
    /// Concurrent streams per HTTP/2 connection; `None` is 1.
    pub streams_per_connection: Option<u64>,
    pub tls: Option<TlsSettings>,
}

impl Transport {
    /// Streams per connection, 1 when none is named.
    pub fn streams(&self) -> u64 {
        self.streams_per_connection.unwrap_or(1).max(1)
    }

    /// Adds the fields that are not the default to a `test_config` being written.
    pub fn emit_into(&self, m: &mut serde_json::Map<String, serde_json::Value>) {
        if !self.http_version.is_default() {
            m.insert("http_version".into(), self.http_version.as_wire().into());
        }
        if let Some(n) = self.streams_per_connection {
            m.insert("streams_per_connection".into(), n.into());
        }
        if let Some(t) = self.tls.as_ref().filter(|t| !t.is_default()) {
            m.insert(
                "tls".into(),
                serde_json::to_value(t).unwrap_or(serde_json::Value::Null),
            );
        }
    }
}

/// A transport setting that cannot be used: the field (relative to the test) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn refuse(field: &'static str, message: impl Into<String>) -> TransportError {
    TransportError {
        field,
        message: message.into(),
    }
}

/// Checks the transport settings of a test with `concurrency` connections; the same rules on
/// the wire, at the REST API and in the CLI.
pub fn check(
    version: HttpVersion,
    streams: Option<u64>,
    concurrency: u64,
    tls: Option<&TlsSettings>,
) -> Result<(), TransportError> {
    if let Some(n) = streams {
        if !(1..=limits::MAX_STREAMS_PER_CONNECTION).contains(&n) {
            return Err(refuse(
                "streams_per_connection",
                format!(
                    "must be between 1 and {}",
                    limits::MAX_STREAMS_PER_CONNECTION
                ),
            ));
        }
        if n > 1 && version != HttpVersion::Http2 {
            return Err(refuse(
                "streams_per_connection",
                "concurrent streams need http_version \"2\" (HTTP/1.1 sends one request at a time per connection)",
            ));
        }
        if n.saturating_mul(concurrency) > limits::MAX_STREAMS_TOTAL {
            return Err(refuse(
                "streams_per_connection",
                format!(
                    "times concurrency ({concurrency}) must be at most {}",
                    limits::MAX_STREAMS_TOTAL
                ),
            ));
        }
    }
    if let Some(t) = tls {
        check_tls(t)?;
    }
    Ok(())
}

/// Checks TLS settings: a CA bundle that holds at least one certificate and no garbage, a
/// server name that is a DNS name or an IP address.
pub fn check_tls(t: &TlsSettings) -> Result<(), TransportError> {
    if let Some(pem) = &t.ca_pem {
        ca_certificates(pem).map_err(|e| refuse("tls.ca_pem", e))?;
    }
    if let Some(name) = &t.server_name {
        if name.len() > limits::MAX_SERVER_NAME_LEN {
            return Err(refuse(
                "tls.server_name",
                format!(
                    "is {} bytes long; at most {} are accepted",
                    name.len(),
                    limits::MAX_SERVER_NAME_LEN
                ),
            ));
        }
        ServerName::try_from(name.as_str()).map_err(|_| {
            refuse(
                "tls.server_name",
                format!("{name:?} is not a DNS name or an IP address"),
            )
        })?;
    }
    Ok(())
}

/// The certificates of a PEM bundle; an error says what is wrong with it.
pub fn ca_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if pem.len() > limits::MAX_CA_PEM_BYTES {
        return Err(format!(
            "is {} bytes long; at most {} are accepted",
            pem.len(),
            limits::MAX_CA_PEM_BYTES
        ));
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not a PEM certificate bundle ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// The liberal wire reading of the three fields (used by `TestConfig::parse`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct TransportWire {
    #[serde(default)]
    pub http_version: Option<HttpVersion>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub streams_per_connection: Option<u64>,
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

impl TransportWire {
    /// The settings, checked against a test of `concurrency` connections.
    pub fn checked(self, concurrency: u64) -> Result<Transport, TransportError> {
        let t = Transport {
            http_version: self.http_version.unwrap_or_default(),
            streams_per_connection: self.streams_per_connection,
            tls: self.tls,
        };
        check(
            t.http_version,
            t.streams_per_connection,
            concurrency,
            t.tls.as_ref(),
        )?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_liberally_and_written_strictly() {
        for (s, v) in [
            ("1.1", HttpVersion::Http11),
            ("HTTP/1.1", HttpVersion::Http11),
            ("2", HttpVersion::Http2),
            ("h2", HttpVersion::Http2),
            ("h2c", HttpVersion::Http2),
            ("http/2", HttpVersion::Http2),
        ] {
            assert_eq!(HttpVersion::parse(s), Some(v), "{s}");
        }
        assert_eq!(HttpVersion::parse("3"), None);
        let v: HttpVersion = serde_json::from_str("2").expect("number");
        assert_eq!(v, HttpVersion::Http2);
        let v: HttpVersion = serde_json::from_str("1.1").expect("number");
        assert_eq!(v, HttpVersion::Http11);
        assert!(serde_json::from_str::<HttpVersion>("\"spdy\"").is_err());
        assert_eq!(
            serde_json::to_string(&HttpVersion::Http2).expect("json"),
            "\"2\""
        );
    }

    #[test]
    fn every_bad_setting_names_its_field() {
        let h2 = HttpVersion::Http2;
        let field = |r: Result<(), TransportError>| r.map_err(|e| e.field);
        assert_eq!(
            field(check(h2, Some(0), 1, None)),
            Err("streams_per_connection")
        );
        assert_eq!(
            field(check(
                h2,
                Some(limits::MAX_STREAMS_PER_CONNECTION + 1),
                1,
                None
            )),
            Err("streams_per_connection")
        );
        assert_eq!(
            field(check(HttpVersion::Http11, Some(2), 1, None)),
            Err("streams_per_connection")
        );
        assert_eq!(
            field(check(h2, Some(100), 10_000, None)),
            Err("streams_per_connection")
        );
        assert_eq!(field(check(h2, Some(100), 10, None)), Ok(()));
        assert_eq!(field(check(HttpVersion::Http11, Some(1), 10, None)), Ok(()));
        let tls = |ca: Option<&str>, name: Option<&str>| TlsSettings {
            ca_pem: ca.map(str::to_string),
            insecure_skip_verify: false,
            server_name: name.map(str::to_string),
        };
        for bad in [
            "",
            "not pem",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ] {
            assert_eq!(
                field(check_tls(&tls(Some(bad), None))),
                Err("tls.ca_pem"),
                "{bad:?}"
            );
        }
        assert_eq!(
            field(check_tls(&tls(None, Some("bad name!")))),
            Err("tls.server_name")
        );
        assert_eq!(field(check_tls(&tls(None, Some("localhost")))), Ok(()));
        assert_eq!(field(check_tls(&tls(None, Some("127.0.0.1")))), Ok(()));
    }

    #[test]
    fn a_config_carries_the_transport_and_one_without_it_is_unchanged() {
        use crate::protocol::{ConfigError, DelayUnit, SeedStyle, TestConfig};
        let parse =
            |v: &serde_json::Value| TestConfig::parse(v.to_string().as_bytes(), DelayUnit::Seconds);
        let base = serde_json::json!({"test_id": "t", "test_type": "AVALANCHE",
            "request_count": 5, "target": "https://h/"});
        let c = parse(&base).expect("plain");
        assert_eq!(c.transport, Transport::default());
        let out = c.to_json(&SeedStyle::default());
        for k in ["http_version", "streams_per_connection", "tls"] {
            assert!(out.get(k).is_none(), "{k} emitted for a default test");
        }
        let mut v = base.clone();
        v["http_version"] = "h2".into();
        v["streams_per_connection"] = "8".into();
        v["tls"] = serde_json::json!({"insecure_skip_verify": "yes", "server_name": "h",
            "unknown_later_field": 1});
        let c = parse(&v).expect("extended");
        assert_eq!(
            (c.transport.http_version, c.transport.streams()),
            (HttpVersion::Http2, 8)
        );
        let tls = c.transport.tls.clone().unwrap_or_default();
        assert!(tls.insecure_skip_verify && tls.server_name.as_deref() == Some("h"));
        // Strict emitting, and what is emitted reads back the same.
        let out = c.to_json(&SeedStyle::default());
        assert_eq!(out["http_version"], "2");
        assert_eq!(
            out["tls"],
            serde_json::json!({"insecure_skip_verify": true, "server_name": "h"})
        );
        assert_eq!(parse(&out).expect("again").transport, c.transport);
        for (field, value, named) in [
            (
                "streams_per_connection",
                serde_json::json!(0),
                "streams_per_connection",
            ),
            ("http_version", serde_json::json!("3"), "http_version"),
            ("tls", serde_json::json!({"ca_pem": "junk"}), "tls.ca_pem"),
        ] {
            let mut v = base.clone();
            v[field] = value;
            match parse(&v) {
                Err(ConfigError::Unusable { reason, .. }) => {
                    assert!(reason.contains(named), "{field}: {reason}")
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
