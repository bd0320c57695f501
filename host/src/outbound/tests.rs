//! A TLS server with a CA made by the test, on loopback.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback HTTPS server answering every request with `status` and a
/// short body; what it received is kept (head and body as text).
pub(crate) struct TlsServer {
    pub addr: std::net::SocketAddr,
    pub ca_file: tempfile::NamedTempFile,
    pub received: Arc<Mutex<Vec<String>>>,
}

impl TlsServer {
    pub(crate) async fn start(status: u16) -> TlsServer {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params");
        let cert = params.signed_by(&key, &issuer).expect("cert");
        let mut ca_file = tempfile::NamedTempFile::new().expect("ca file");
        std::io::Write::write_all(&mut ca_file, ca_cert.pem().as_bytes()).expect("write ca");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut got = Vec::new();
                    // One request per connection: read until the head and
                    // the Content-Length body are in.
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                if let Ok(mut s) = seen.lock() {
                                    s.push(text.clone());
                                }
                                break;
                            }
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer {
            addr,
            ca_file,
            received,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}

fn get(url: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_server_signed_by_the_extra_ca_works() {
    let server = TlsServer::start(200).await;
    let client = Outbound::new(Some(server.ca_file.path())).expect("client");
    let answer = client
        .send(get(&server.url("/x")), Duration::from_secs(10), 1024)
        .await
        .expect("answer");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.expect("body").as_ref(), b"ok");
    let seen = server.received.lock().expect("lock").clone();
    assert!(seen[0].starts_with("GET /x HTTP/1.1"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_ca_is_not_trusted_is_refused_naming_the_issuer() {
    let server = TlsServer::start(200).await;
    let client = Outbound::new(None).expect("client");
    let err = client
        .send(get(&server.url("/x")), Duration::from_secs(10), 1024)
        .await
        .expect_err("untrusted");
    assert!(
        err.to_string().to_lowercase().contains("unknown"),
        "the cause is named: {err}"
    );
    assert!(
        server.received.lock().expect("lock").is_empty(),
        "nothing was sent before the handshake failed"
    );
}

#[test]
fn a_ca_file_without_certificates_is_a_configuration_error() {
    let f = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(f.path(), "not a certificate\n").expect("write");
    let err = Outbound::new(Some(f.path())).expect_err("empty");
    assert!(matches!(err, OutboundError::CaFile { .. }), "{err}");
    let err = Outbound::new(Some(Path::new("/nonexistent/ca.pem"))).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
