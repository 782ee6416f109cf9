//! TLS for the accept loop: a rustls server configuration from PEM files, with the `ring`
//! provider only (aws-lc-rs builds slowly and two providers would be ambiguous). Also the
//! check of the engine connection's client-side files (CA, and the certificate and key of
//! mutual TLS), which the NATS client loads itself on every connect.
//!
//! ALPN offers `h2` then `http/1.1`, so browsers speak HTTP/2 over TLS and their limit of six
//! connections per host stops mattering for several SSE streams. The handshake itself runs in
//! the accept loop under the header timeout, so a client that stalls it holds nothing long.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Builds the server configuration from a PEM certificate chain and a PEM private key.
///
/// # Errors
/// A file that cannot be read, holds no certificate or key, or a key that does not match.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = certificates(cert)?;
    let key = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Every certificate in a PEM file; none is an error.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(chain)
}

/// The private key in a PEM file.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Which client-side TLS file is wrong, and why (the reason names the file).
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFileError {
    /// The CA certificates.
    Ca(String),
    /// The client certificate.
    Cert(String),
    /// The client's private key, or a key that does not fit the certificate.
    Key(String),
}

/// Checks the files of a TLS client as a rustls client would load them: the CA certificates
/// to trust (each must be a usable trust anchor) and, for mutual TLS, a certificate chain and
/// the private key that fits it. Nothing is kept: the caller's client loads them itself.
///
/// # Errors
/// A file that cannot be read, holds nothing usable, or a key that does not fit.
pub fn check_client_files(
    ca: Option<&Path>,
    cert_key: Option<(&Path, &Path)>,
) -> Result<(), ClientFileError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in certificates(ca).map_err(ClientFileError::Ca)? {
            roots
                .add(cert)
                .map_err(|e| ClientFileError::Ca(format!("{}: {e}", ca.display())))?;
        }
    }
    let Some((cert, key)) = cert_key else {
        return Ok(());
    };
    let chain = certificates(cert).map_err(ClientFileError::Cert)?;
    let der = private_key(key).map_err(ClientFileError::Key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientFileError::Key(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, der)
        .map_err(|e| {
            ClientFileError::Key(format!(
                "{} does not fit the certificate in {}: {e}",
                key.display(),
                cert.display()
            ))
        })?;
    Ok(())
}
