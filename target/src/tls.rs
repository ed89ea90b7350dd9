//! TLS for the target: a server config from PEM files, or a freshly generated CA and a server
//! certificate it signs (`--tls-self-signed PATH` writes the CA's PEM to PATH, for a client to
//! trust as its CA bundle). ALPN offers `h2` and `http/1.1`, so one TLS port serves both.
//!
//! A CA plus a leaf, rather than one self-signed leaf: a verifier (webpki) takes a CA as a
//! trust anchor, and a leaf that is its own issuer is refused by some clients.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Names the generated certificate is valid for: what a test on this machine connects to.
pub const SELF_SIGNED_NAMES: [&str; 4] = ["localhost", "127.0.0.1", "::1", "floodgate-target"];

/// A generated CA (its PEM, for clients) and a server certificate chain and key it signed.
pub struct SelfSigned {
    pub ca_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Generates a CA and a server certificate for [`SELF_SIGNED_NAMES`] plus `extra_names`.
pub fn self_signed(extra_names: &[String]) -> Result<SelfSigned, String> {
    fn e(what: &'static str) -> impl Fn(rcgen::Error) -> String {
        move |err| format!("generating the {what}: {err}")
    }
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e("CA"))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "floodgate-target test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_key = KeyPair::generate().map_err(e("CA key"))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(e("CA"))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    names.extend(extra_names.iter().cloned());
    let mut leaf = CertificateParams::new(names).map_err(e("server certificate"))?;
    leaf.distinguished_name
        .push(DnType::CommonName, "floodgate-target");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(e("server key"))?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(e("server certificate"))?;
    Ok(SelfSigned {
        ca_pem: ca_cert.pem(),
        chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    })
}

/// Reads a certificate chain and its key from PEM files.
pub fn from_files(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    Ok((chain, key))
}

/// The server config: the chain and key, ALPN `h2` then `http/1.1`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls: the certificate and key do not make a server config: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS server config the flags ask for, if any: from `--tls-cert`/`--tls-key`, or
/// generated with `--tls-self-signed PATH` (the CA's PEM written to PATH).
pub fn from_config(config: &crate::Config) -> Result<Option<Arc<ServerConfig>>, String> {
    match (&config.tls_cert, &config.tls_key, &config.tls_self_signed) {
        (Some(cert), Some(key), None) => {
            let (chain, key) = from_files(cert, key)?;
            server_config(chain, key).map(Some)
        }
        (None, None, Some(path)) => {
            let s = self_signed(&[])?;
            std::fs::write(path, &s.ca_pem)
                .map_err(|e| format!("--tls-self-signed {}: {e}", path.display()))?;
            server_config(s.chain, s.key).map(Some)
        }
        (None, None, None) => Ok(None),
        _ => Err("use either --tls-cert with --tls-key, or --tls-self-signed".into()),
    }
}
