//! The TLS client settings of one test: one rustls [`ClientConfig`], built once and shared by
//! every connection, so session tickets from one handshake resume the next (a reconnect after
//! `Connection: close` or an error costs an abbreviated handshake, as in a browser).
//!
//! Trust: the CA bundle the test sends (`tls.ca_pem`) replaces the system roots; otherwise the
//! system's roots (`rustls-native-certs`: the node's own CA store, the one an operator already
//! maintains, including private CAs added to the image), loaded once per process.
//! `insecure_skip_verify` accepts any certificate, while still checking that the server holds
//! its key (the handshake signature), so only authentication is given up.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, OnceLock};

/// A test's TLS settings, as the engine takes them (the wire's `tls`, checked there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM CA certificates that replace the system roots.
    pub ca_pem: Option<String>,
    pub insecure_skip_verify: bool,
    /// SNI and the name checked, instead of the URL's host.
    pub server_name: Option<String>,
}

/// Sessions remembered for resumption at least (rustls' default); a test with more connections
/// keeps one per connection.
const MIN_SESSIONS: usize = 256;

/// The crypto provider: ring, the one already in the tree (no second C toolchain dependency).
fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's CA certificates, read once per process (reading the store takes tens of ms).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    errors = ?found.errors,
                    "no system CA certificates found: https targets need tls.ca_pem or tls.insecure_skip_verify"
                );
            }
            Arc::new(store)
        })
        .clone()
}

/// The client config of a test: its trust, and `h2` or `http/1.1` offered in ALPN.
pub fn client_config(
    settings: &TlsOptions,
    http2: bool,
    connections: usize,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let mut config = if settings.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        let roots = match &settings.ca_pem {
            Some(pem) => {
                // Checked where the test was defined (protocol::transport); here only what the
                // store needs.
                let mut store = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| format!("tls.ca_pem: {e}"))?;
                    store
                        .add(cert)
                        .map_err(|e| format!("tls.ca_pem: a certificate is unusable: {e}"))?;
                }
                Arc::new(store)
            }
            None => system_roots(),
        };
        if roots.is_empty() {
            return Err(
                "tls: this node has no system CA certificates; send tls.ca_pem (or tls.insecure_skip_verify for a test environment)"
                    .into(),
            );
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    config.resumption = Resumption::in_memory_sessions(connections.max(MIN_SESSIONS));
    Ok(Arc::new(config))
}

/// The name a connection sends in SNI and checks the certificate against: `tls.server_name`,
/// else the URL's host (an IP address is checked against the certificate's IP SANs, and sent
/// in no SNI).
pub fn server_name(settings: &TlsOptions, host: &str) -> Result<ServerName<'static>, String> {
    let (name, field) = match &settings.server_name {
        Some(n) => (n.as_str(), "tls.server_name"),
        None => (host, "target_url"),
    };
    ServerName::try_from(name.to_string())
        .map_err(|_| format!("{field}: {name:?} is not a DNS name or an IP address"))
}

/// `insecure_skip_verify`: any certificate, any name; the handshake signature is still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
