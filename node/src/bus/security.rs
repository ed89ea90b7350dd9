//! How a node's Kafka clients authenticate and encrypt: the security protocol, SASL (PLAIN,
//! SCRAM-SHA-256/512) credentials, TLS files and pass-through librdkafka options, turned into
//! client properties by one pure function ([`KafkaSecurity::properties`]) that refuses
//! contradictory settings at start-up rather than letting a client retry them forever.

use std::fmt;
use std::path::PathBuf;

/// Kafka's `security.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityProtocol {
    #[default]
    #[value(name = "plaintext")]
    Plaintext,
    #[value(name = "ssl")]
    Ssl,
    #[value(name = "sasl_plaintext", alias = "sasl-plaintext")]
    SaslPlaintext,
    #[value(name = "sasl_ssl", alias = "sasl-ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    fn as_kafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// The SASL mechanisms librdkafka supports without Kerberos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN", alias = "plain")]
    Plain,
    #[value(name = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn as_kafka(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A credential: kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Every security setting of a node's Kafka clients (producer, consumers, admin).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    pub sasl_mechanism: Option<SaslMechanism>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<Secret>,
    /// CA certificate(s) in PEM that sign the brokers' certificates (`ssl.ca.location`).
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate and key in PEM, for brokers that require mutual TLS.
    pub ssl_certificate: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    pub ssl_key_password: Option<Secret>,
    /// Other librdkafka properties, each `KEY=VALUE`, passed through as they are.
    pub options: Vec<String>,
}

/// Why a set of security settings cannot be used; each names the flag to fix.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    #[error("--kafka-security-protocol {protocol} needs {flag}")]
    MissingSasl {
        protocol: &'static str,
        flag: &'static str,
    },
    #[error("{flag} is set but --kafka-security-protocol {protocol} does not use SASL (use sasl_plaintext or sasl_ssl)")]
    SaslWithoutSasl {
        protocol: &'static str,
        flag: &'static str,
    },
    #[error("{flag} is set but --kafka-security-protocol {protocol} does not use TLS (use ssl or sasl_ssl)")]
    TlsWithoutTls {
        protocol: &'static str,
        flag: &'static str,
    },
    #[error("--kafka-ssl-cert and --kafka-ssl-key go together (mutual TLS needs both)")]
    HalfClientCertificate,
    #[error("--kafka-ssl-key-password is set without --kafka-ssl-key")]
    KeyPasswordWithoutKey,
    #[error("--kafka-option {0:?}: expected KEY=VALUE")]
    NotKeyValue(String),
    #[error("--kafka-option {0}: Floodgate sets this property itself (it is what its delivery and position guarantees rest on)")]
    Managed(String),
    #[error("--kafka-option {0}: set twice (by another --kafka-option or by a dedicated --kafka-* flag)")]
    Duplicate(String),
}

/// Properties Floodgate's own guarantees rest on (where consumers start, acknowledged
/// delivery): a pass-through option may not change them.
const MANAGED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "enable.idempotence",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

impl KafkaSecurity {
    /// The librdkafka properties these settings stand for, or why they contradict each other.
    pub fn properties(&self) -> Result<Vec<(String, String)>, SecurityError> {
        let protocol = self.protocol.as_kafka();
        let mut props: Vec<(String, String)> = Vec::new();
        if self.protocol != SecurityProtocol::Plaintext {
            props.push(("security.protocol".into(), protocol.into()));
        }
        let sasl_fields = [
            (self.sasl_mechanism.is_some(), "--kafka-sasl-mechanism"),
            (self.sasl_username.is_some(), "--kafka-sasl-username"),
            (self.sasl_password.is_some(), "--kafka-sasl-password"),
        ];
        if self.protocol.sasl() {
            if let Some((_, flag)) = sasl_fields.iter().find(|(set, _)| !set) {
                return Err(SecurityError::MissingSasl { protocol, flag });
            }
        } else if let Some((_, flag)) = sasl_fields.iter().find(|(set, _)| *set) {
            return Err(SecurityError::SaslWithoutSasl { protocol, flag });
        }
        if let (Some(m), Some(user), Some(Secret(pass))) = (
            self.sasl_mechanism,
            &self.sasl_username,
            &self.sasl_password,
        ) {
            props.push(("sasl.mechanism".into(), m.as_kafka().into()));
            props.push(("sasl.username".into(), user.clone()));
            props.push(("sasl.password".into(), pass.clone()));
        }
        let tls_files = [
            ("--kafka-ssl-ca", "ssl.ca.location", &self.ssl_ca),
            (
                "--kafka-ssl-cert",
                "ssl.certificate.location",
                &self.ssl_certificate,
            ),
            ("--kafka-ssl-key", "ssl.key.location", &self.ssl_key),
        ];
        for (flag, key, path) in tls_files {
            if let Some(path) = path {
                if !self.protocol.tls() {
                    return Err(SecurityError::TlsWithoutTls { protocol, flag });
                }
                props.push((key.into(), path.display().to_string()));
            }
        }
        if self.ssl_certificate.is_some() != self.ssl_key.is_some() {
            return Err(SecurityError::HalfClientCertificate);
        }
        if let Some(Secret(pass)) = &self.ssl_key_password {
            if self.ssl_key.is_none() {
                return Err(SecurityError::KeyPasswordWithoutKey);
            }
            props.push(("ssl.key.password".into(), pass.clone()));
        }
        for option in &self.options {
            let Some((key, value)) = option.split_once('=') else {
                return Err(SecurityError::NotKeyValue(option.clone()));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(SecurityError::NotKeyValue(option.clone()));
            }
            if MANAGED.contains(&key) {
                return Err(SecurityError::Managed(key.to_string()));
            }
            if props.iter().any(|(k, _)| k == key) {
                return Err(SecurityError::Duplicate(key.to_string()));
            }
            props.push((key.to_string(), value.to_string()));
        }
        Ok(props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_ssl() -> KafkaSecurity {
        KafkaSecurity {
            protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("alice".into()),
            sasl_password: Some(Secret("s3cret".into())),
            ssl_ca: Some("/etc/kafka/ca.pem".into()),
            ..Default::default()
        }
    }

    /// The properties of [`sasl_ssl`].
    const SASL_SSL: &[(&str, &str)] = &[
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "alice"),
        ("sasl.password", "s3cret"),
        ("ssl.ca.location", "/etc/kafka/ca.pem"),
    ];

    type Properties = Result<Vec<(String, String)>, SecurityError>;

    fn props(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_become_properties_or_a_named_error() {
        let with = |f: fn(&mut KafkaSecurity)| {
            let mut s = sasl_ssl();
            f(&mut s);
            s
        };
        let cases: Vec<(KafkaSecurity, Properties)> = vec![
            (KafkaSecurity::default(), Ok(vec![])),
            (sasl_ssl(), Ok(props(SASL_SSL))),
            (
                with(|s| s.sasl_password = None),
                Err(SecurityError::MissingSasl {
                    protocol: "sasl_ssl",
                    flag: "--kafka-sasl-password",
                }),
            ),
            (
                with(|s| {
                    s.protocol = SecurityProtocol::Ssl;
                    s.sasl_mechanism = None;
                    s.sasl_password = None;
                }),
                Err(SecurityError::SaslWithoutSasl {
                    protocol: "ssl",
                    flag: "--kafka-sasl-username",
                }),
            ),
            (
                with(|s| s.protocol = SecurityProtocol::SaslPlaintext),
                Err(SecurityError::TlsWithoutTls {
                    protocol: "sasl_plaintext",
                    flag: "--kafka-ssl-ca",
                }),
            ),
            (
                with(|s| s.ssl_certificate = Some("/c.pem".into())),
                Err(SecurityError::HalfClientCertificate),
            ),
            (
                with(|s| s.options = vec!["socket.keepalive.enable=true".into()]),
                Ok(props(
                    &[SASL_SSL, &[("socket.keepalive.enable", "true")]].concat(),
                )),
            ),
            (
                with(|s| s.options = vec!["socket.keepalive.enable".into()]),
                Err(SecurityError::NotKeyValue("socket.keepalive.enable".into())),
            ),
            (
                with(|s| s.options = vec!["group.id=mine".into()]),
                Err(SecurityError::Managed("group.id".into())),
            ),
            (
                with(|s| s.options = vec!["sasl.username=bob".into()]),
                Err(SecurityError::Duplicate("sasl.username".into())),
            ),
        ];
        for (i, (settings, want)) in cases.into_iter().enumerate() {
            assert_eq!(settings.properties(), want, "case {i}: {settings:?}");
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let s = KafkaSecurity {
            ssl_key_password: Some(Secret("keypass".into())),
            ..sasl_ssl()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("keypass"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
