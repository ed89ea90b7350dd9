//! The transport flags (`--http2`, `--streams`, `--ca-file`, `--insecure`, `--server-name`) as
//! a test's settings: the CA file is read here, on the user's machine, and sent inline, since
//! a driver cannot read the user's files. An error names the flag.

use crate::cli::TransportArgs;
use crate::protocol::{transport, HttpVersion, TlsSettings, Transport};

impl TransportArgs {
    /// The settings the flags ask for, checked as a test's would be for `concurrency`
    /// connections; the error names the flag.
    pub fn settings(&self, concurrency: u64) -> Result<Transport, String> {
        let ca_pem = match &self.ca_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("--ca-file: cannot read {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let tls = TlsSettings {
            ca_pem,
            insecure_skip_verify: self.insecure,
            server_name: self.server_name.clone(),
        };
        let t = Transport {
            http_version: if self.http2 {
                HttpVersion::Http2
            } else {
                HttpVersion::Http11
            },
            streams_per_connection: self.streams,
            tls: (!tls.is_default()).then_some(tls),
        };
        transport::check(
            t.http_version,
            t.streams_per_connection,
            concurrency,
            t.tls.as_ref(),
        )
        .map_err(|e| format!("{}: {}", flag(e.field), e.message))?;
        Ok(t)
    }

    /// The REST fields for these settings (none for the defaults).
    pub fn spec_fields(
        &self,
        concurrency: u64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let mut m = serde_json::Map::new();
        self.settings(concurrency)?.emit_into(&mut m);
        Ok(m)
    }
}

/// The flag that sets a transport field.
pub fn flag(field: &str) -> &'static str {
    match field {
        "streams_per_connection" => "--streams",
        "tls.ca_pem" => "--ca-file",
        "tls.server_name" => "--server-name",
        "tls.insecure_skip_verify" => "--insecure",
        "http_version" => "--http2",
        _ => "--url",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_settings_and_errors_name_the_flag() {
        let a = TransportArgs {
            http2: true,
            streams: Some(4),
            ..Default::default()
        };
        let t = a.settings(10).expect("valid");
        assert_eq!((t.http_version, t.streams()), (HttpVersion::Http2, 4));
        assert_eq!(a.spec_fields(10).expect("valid").len(), 2);
        let e = TransportArgs {
            streams: Some(4),
            ..Default::default()
        }
        .settings(10)
        .expect_err("h1 with streams");
        assert!(e.starts_with("--streams:"), "{e}");
        let e = TransportArgs {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        }
        .settings(10)
        .expect_err("missing file");
        assert!(
            e.starts_with("--ca-file: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").expect("write");
        let e = TransportArgs {
            ca_file: Some(junk),
            ..Default::default()
        }
        .settings(10)
        .expect_err("junk");
        assert!(e.starts_with("--ca-file:"), "{e}");
        assert!(TransportArgs::default()
            .spec_fields(10)
            .expect("ok")
            .is_empty());
    }
}
