//! Outgoing HTTP calls (the webhook provisioner; ticket-system pulls): one
//! client over rustls, trusting the system's CA roots plus an optional
//! extra CA file, because ticket systems and SaaS targets in the cloud
//! speak only HTTPS and an operator's internal ones are often signed by a
//! private CA.
//!
//! Every call has one deadline (connect, send, response head and body) and
//! a cap on the response body read: a peer that answers and then stalls or
//! streams forever costs one deadline, never a dispatcher or a sweep.
//! `http://` stays allowed for loopback receivers and a local TLS proxy.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why an outgoing call, or the client, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The extra CA file could not be read or holds no certificate.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The request could not be built (bad URL or header).
    #[error("request: {0}")]
    Request(String),
    /// The exchange did not finish before the deadline.
    #[error("timed out")]
    TimedOut,
    /// Connecting, the TLS handshake or the exchange failed.
    #[error("{0}")]
    Transport(String),
}

/// The answer to one call. `body` is `Err` when the body was cut off (past
/// the cap or the deadline) after the status arrived.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: hyper::StatusCode,
    /// The body, or why it was not read whole.
    pub body: Result<Bytes, String>,
}

/// A client for outgoing HTTP and HTTPS calls.
#[derive(Clone)]
pub struct Outbound {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbound")
    }
}

impl Outbound {
    /// A client trusting the system's CA roots and, when given, every
    /// certificate in the PEM file `extra_ca`.
    pub fn new(extra_ca: Option<&Path>) -> Result<Outbound, OutboundError> {
        let config = tls_client_config(extra_ca)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build::<_, Full<Bytes>>(https);
        Ok(Outbound { client })
    }

    /// Send `req`; the whole exchange within `timeout`, at most
    /// `max_body` bytes of the answer read.
    pub async fn send(
        &self,
        req: hyper::Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Answer, OutboundError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let resp = tokio::time::timeout_at(deadline, self.client.request(req))
            .await
            .map_err(|_| OutboundError::TimedOut)?
            .map_err(|e| OutboundError::Transport(transport_error(&e)))?;
        let status = resp.status();
        // Read (and so free the connection for reuse) within what is left
        // of the deadline and the cap; past either, drop the connection.
        let limited = http_body_util::Limited::new(resp.into_body(), max_body);
        let body = match tokio::time::timeout_at(deadline, limited.collect()).await {
            Ok(Ok(b)) => Ok(b.to_bytes()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("response body not read before the deadline".to_string()),
        };
        Ok(Answer { status, body })
    }
}

/// A rustls client configuration trusting the system's CA roots and, when
/// given, every certificate in the PEM file `extra_ca` (also the LDAP
/// provisioner's, for `ldaps://` and StartTLS).
pub fn tls_client_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, OutboundError> {
    let mut roots = RootCertStore::empty();
    // A system without a CA bundle still works with an extra CA file;
    // unreadable system certificates are skipped, as browsers do.
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let ca_error = |message: String| OutboundError::CaFile {
            path: path.to_path_buf(),
            message,
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))? {
            let cert = cert.map_err(|e| ca_error(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("no PEM certificate in it".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OutboundError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// hyper-util's error says only "client error (Connect)"; the cause (an
/// unknown issuer, a refused connection) is what an operator needs.
fn transport_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod tests;
