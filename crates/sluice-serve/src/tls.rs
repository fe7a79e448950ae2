//! TLS for both listeners (`sluice serve --tls-cert FILE --tls-key FILE`, or `serve.tls` in
//! sluice.yml), with rustls (ring) — the same rustls and tokio-rustls as the rest of the tree.
//!
//! HTTP is served only over TLS when it is configured (HTTPS). The PostgreSQL wire answers an
//! `SSLRequest` with `S` and upgrades the connection (and accepts PostgreSQL 17's direct TLS);
//! a client that does not ask for TLS is still served in clear, as PostgreSQL does without
//! `hostssl` rules — clients choose with `sslmode=require` or `verify-full`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use datafusion_postgres::pgwire::tokio::tokio_rustls::TlsAcceptor;
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read TLS {what} file {path}: {source}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No PEM certificate in the certificate file.
    #[error("no PEM certificate (-----BEGIN CERTIFICATE-----) in {0}")]
    NoCertificate(PathBuf),
    /// No PEM private key in the key file.
    #[error("no PEM private key (PKCS#8, PKCS#1 or SEC1) in {0}")]
    NoKey(PathBuf),
    /// rustls refused the pair (a key that does not match the certificate, an unsupported key).
    #[error("cannot use the TLS certificate {cert} with the key {key}: {source}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// The certificate chain and key of a server, loaded once for both listeners.
#[derive(Clone)]
pub struct TlsFiles {
    certs: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    cert: PathBuf,
    key_path: PathBuf,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert", &self.cert)
            .field("key", &self.key_path)
            .finish()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

impl TlsFiles {
    /// Reads a PEM certificate chain (server certificate first) and its PEM private key, and checks
    /// that rustls accepts them.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsFiles, TlsError> {
        let cert_pem = read("certificate", cert)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            return Err(TlsError::NoCertificate(cert.to_path_buf()));
        }
        let key_pem = read("key", key)?;
        let private = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| TlsError::NoKey(key.to_path_buf()))?;
        let files = TlsFiles {
            certs,
            key: Arc::new(private),
            cert: cert.to_path_buf(),
            key_path: key.to_path_buf(),
        };
        files.config(&[])?;
        Ok(files)
    }

    fn config(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, TlsError> {
        let error = |source| TlsError::Config {
            cert: self.cert.clone(),
            key: self.key_path.clone(),
            source,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(error)?
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .map_err(error)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// The acceptor of the HTTP listener (ALPN `http/1.1`).
    pub fn http_acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(Arc::new(self.config(&[b"http/1.1"])?)))
    }

    /// The acceptor of the PostgreSQL listener (ALPN `postgresql`, for direct TLS).
    pub fn pg_acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(Arc::new(self.config(&[b"postgresql"])?)))
    }
}
