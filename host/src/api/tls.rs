//! `serve` over HTTPS (`[http] tls-cert` and `tls-key`): rustls 0.23 on
//! the ring provider (the tree's TLS stack), TLS 1.3 and 1.2 only, HTTP/1.1
//! announced by ALPN. The files are read once at start-up; an unreadable or
//! invalid file, or a key that is not the certificate's, fails start-up
//! naming the key.
//!
//! The handshake runs in the connection's task under the header-read
//! timeout and holds a connection slot (see `api/server.rs`): a client
//! that opens TCP and never sends a ClientHello costs what a slowloris
//! costs over plain HTTP, no more.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Why the TLS configuration could not be built: the `jitgate.toml` key
/// at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsConfigError {
    /// `http.tls-cert` or `http.tls-key`.
    pub key: &'static str,
    /// What is wrong (the file is named; no key material is shown).
    pub message: String,
}

/// Largest certificate-chain or key file read (real ones are a few KiB).
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The rustls server configuration for the certificate chain in `cert`
/// (PEM, leaf first) and the private key in `key` (PEM: PKCS#8, PKCS#1 or
/// SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let cert_err = |message: String| TlsConfigError {
        key: "http.tls-cert",
        message: format!("{}: {message}", cert.display()),
    };
    let key_err = |message: String| TlsConfigError {
        key: "http.tls-key",
        message: format!("{}: {message}", key.display()),
    };
    let cert_pem = read_bounded(cert).map_err(cert_err)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_err(
            "no PEM certificate (`BEGIN CERTIFICATE`) in it".into(),
        ));
    }
    let key_pem = read_bounded(key).map_err(key_err)?;
    // The error of a key file never quotes it: it may hold a secret.
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        key_err(match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".into()
            }
            _ => "not a valid PEM private key".into(),
        })
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| cert_err(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                key_err(format!("is not the private key of {}", cert.display()))
            }
            e => key_err(format!("unusable with the certificate: {e}")),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("larger than {MAX_PEM_BYTES} bytes"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_matching_pair_loads_with_tls12_and_tls13() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = pair(dir.path());
        let config = server_config(&c, &k).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_files_name_the_key_and_never_quote_the_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = pair(dir.path());
        let (_, other_key) = pair(&{
            let d = dir.path().join("other");
            std::fs::create_dir_all(&d).unwrap();
            d
        });
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IQ==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let missing = dir.path().join("missing.pem");
        for (cert, key, want) in [
            (&missing, &k, "http.tls-cert"),
            (&k, &k, "http.tls-cert"),
            (&c, &missing, "http.tls-key"),
            (&c, &c, "http.tls-key"),
            (&c, &garbage, "http.tls-key"),
            (&c, &other_key, "http.tls-key"),
        ] {
            let e = server_config(cert, key).unwrap_err();
            assert_eq!(e.key, want, "{e}");
            assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        }
        let e = server_config(&c, &other_key).unwrap_err();
        assert!(e.message.contains("is not the private key"), "{e}");
    }
}
