//! The HTTP server loop: hyper's HTTP/1 connection driver under the limits
//! of `[http]`, because `axum::serve` sets none of them and a client that
//! opens connections and dribbles bytes (slowloris) could otherwise hold
//! every socket and file descriptor forever.
//!
//! * **header-read timeout**: a connection must deliver a request line and
//!   headers within it (hyper's timer starts when it waits for a head and
//!   is not extended by each byte), so an idle keep-alive connection is
//!   closed after it too;
//! * **body-read deadline**: the request body is wrapped so that reading it
//!   fails once the deadline passes ([`BodyTimeout`], answered 408);
//! * **request timeout**: the whole exchange, handler included (503);
//! * **max connections**: a semaphore slot per open connection; at the cap
//!   the loop stops accepting, so further clients wait in the kernel's
//!   backlog and are served as slots free;
//! * **TLS** (`[http] tls-cert`/`tls-key`, [`super::tls`]): the handshake
//!   runs in the connection's task, holding its slot, and must finish
//!   within the header-read timeout, so a client that connects and never
//!   sends a ClientHello is cut like a slowloris (then hyper's own header
//!   timer starts for the request head).
//!
//! Each request is served with its peer address in a task-local ([`peer`]):
//! what the authentication-failure limiter keys on. A task-local rather than
//! a request extension or a middleware because only the failure path reads
//! it, and the success path should not pay for it.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The server's limits (`[http]` in jitgate.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Request line and headers must arrive within this.
    pub header_read_timeout: Duration,
    /// The request body must arrive within this (from its head).
    pub body_read_timeout: Duration,
    /// The whole request, handler included.
    pub request_timeout: Duration,
    /// Open connections at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

tokio::task_local! {
    static PEER: SocketAddr;
}

/// The address of the client whose request is being served (None outside
/// a request served by [`serve`], e.g. in tests calling the router directly).
pub fn peer() -> Option<SocketAddr> {
    PEER.try_with(|p| *p).ok()
}

/// How long open connections get to finish their requests at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Serve `app` on `listener` under `limits` until `shutdown` resolves, then
/// stop accepting and let open requests finish (for at most 10 s). With
/// `tls`, every connection is TLS (a plain-HTTP client fails the handshake).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let req = req.map(|b| Body::new(Deadline::new(b, limits.body_read_timeout)));
            let answer = app.call(req);
            PEER.scope(peer, async move {
                match tokio::time::timeout(limits.request_timeout, answer).await {
                    Ok(Ok(resp)) => Ok::<_, Infallible>(resp),
                    Ok(Err(never)) => match never {},
                    Err(_) => Ok(super::ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "timeout",
                        format!(
                            "the request took longer than {} ms",
                            limits.request_timeout.as_millis()
                        ),
                    )
                    .into_response()),
                }
            })
        });
        let watcher = graceful.watcher();
        let http = http.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                            .await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake not done before the header-read timeout");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
    Ok(())
}

/// The request body was not received before the body-read deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] once its deadline passes.
/// The timer is armed only when the body is first not ready: most bodies
/// arrive with their head, and then the deadline costs a clock read.
struct Deadline {
    inner: Incoming,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Deadline {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Deadline {
            inner,
            deadline: tokio::time::Instant::now() + limit,
            sleep: None,
        }
    }
}

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `e` (or what caused it) is a [`BodyTimeout`].
pub(crate) fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Whether `e` (or what caused it) is the body size limit.
pub(crate) fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}
