//! The service's router driven in process (`tower::ServiceExt::oneshot`):
//! the same [`jitgate::api::Server`] that `jitgate serve` builds, from the
//! same config a process test writes, without a socket. For role tables,
//! body checks and anything else that is about the API rather than the
//! process (crash, signals, replicas and socket limits stay in process
//! tests).

use axum::body::Body;
use std::path::Path;
use tower::ServiceExt;

use crate::http::Response;
use crate::server::{Backend, Guard, TestStore, write_config_with};

/// A router over a fresh store, and the runtime its handlers run on.
pub struct App {
    router: axum::Router,
    server: jitgate::api::Server,
    rt: tokio::runtime::Runtime,
    _guard: Guard,
}

impl App {
    /// A server on a fresh store of `backend`, configured with `extra` TOML
    /// (the same tokens and policies as [`crate::server::start`]).
    pub fn new(backend: Backend, extra: &str) -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TestStore::new(backend, dir.path());
        let cfg = write_config_with(dir.path(), &store.url, extra);
        App::from_file(&cfg, (dir, store))
    }

    /// A server built from the config file `cfg` (for tests that prepare
    /// its policy folder first, e.g. signing it); `guard` keeps its files
    /// and database alive.
    pub fn from_file(cfg: &Path, guard: Guard) -> App {
        App::from_file_with_clock(
            cfg,
            guard,
            std::sync::Arc::new(jitgate::service::SystemClock),
        )
    }

    /// A server on a fresh store of `backend` whose service reads the time
    /// from `clock` (a `ManualClock`: every recorded time known).
    pub fn with_clock(
        backend: Backend,
        extra: &str,
        clock: std::sync::Arc<dyn jitgate::service::Clock>,
    ) -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TestStore::new(backend, dir.path());
        let cfg = write_config_with(dir.path(), &store.url, extra);
        App::from_file_with_clock(&cfg, (dir, store), clock)
    }

    /// [`App::from_file`] with the service reading the time from `clock`.
    pub fn from_file_with_clock(
        cfg: &Path,
        guard: Guard,
        clock: std::sync::Arc<dyn jitgate::service::Clock>,
    ) -> App {
        let config = jitgate::config::Config::load(cfg).expect("config");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        // Built outside the runtime, as `jitgate serve` does: opening a
        // store blocks (the PostgreSQL store drives its own runtime).
        let server = jitgate::api::Server::from_config_with_clock(
            config,
            Some(cfg.into()),
            &crate::tickets::env,
            clock,
        )
        .expect("server");
        let router = server.router();
        App {
            router,
            server,
            rt,
            _guard: guard,
        }
    }

    /// The server the router belongs to.
    pub fn server(&self) -> &jitgate::api::Server {
        &self.server
    }

    /// Run `f` on the router's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The service behind the router.
    pub fn service(&self) -> &std::sync::Arc<jitgate::service::Service> {
        self.server.service()
    }

    /// Send one request through the router.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        let auth: Vec<(String, String)> = token
            .map(|t| {
                let t = crate::idp::bearer(t);
                ("authorization".to_string(), format!("Bearer {t}"))
            })
            .into_iter()
            .collect();
        self.send_with(method, path, &auth, body)
    }

    /// Send one request with these extra headers.
    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Response {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Body::from(body.unwrap_or_default().to_vec()))
            .expect("request");
        let router = self.router.clone();
        self.rt.block_on(async move {
            let resp = router.oneshot(req).await.expect("infallible");
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            Response {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            }
        })
    }

    /// Send one request with raw headers and body, answering the status,
    /// every response header (lower-case names) and the body: for the
    /// console's HTML pages, forms and cookies.
    pub fn send_full(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> FullResponse {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(body.to_vec())).expect("request");
        let router = self.router.clone();
        self.rt.block_on(async move {
            let resp = router.oneshot(req).await.expect("infallible");
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            FullResponse {
                status,
                headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            }
        })
    }

    /// Make the registry hold `body`'s ticket facts (a signed `generic`
    /// event); returns the body as a requester sends it
    /// ([`crate::tickets::as_requester`], ticket named by id).
    pub fn seed(&self, body: &serde_json::Value) -> serde_json::Value {
        let Some((bytes, headers, stripped)) = crate::tickets::registry_event(body) else {
            return body.clone();
        };
        let r = self.send_with(
            "POST",
            "/v1/ticket-sources/generic/events",
            &headers,
            Some(&bytes),
        );
        assert_eq!(r.status, 200, "seeding the ticket registry: {}", r.body);
        stripped
    }

    /// GET `path`.
    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send("GET", path, token, None)
    }

    /// POST `body` as JSON to `path`.
    pub fn post(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Response {
        self.send("POST", path, token, Some(body.to_string().as_bytes()))
    }
}

/// An answer with its headers ([`App::send_full`]).
#[derive(Debug)]
pub struct FullResponse {
    /// HTTP status.
    pub status: u16,
    /// Every header, lower-case name first, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl FullResponse {
    /// Every value of header `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name`, or "".
    pub fn header(&self, name: &str) -> &str {
        self.all(name).first().copied().unwrap_or("")
    }

    /// The value a `Set-Cookie` header gives cookie `name`, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.all("set-cookie")
            .into_iter()
            .filter_map(|c| c.split(';').next())
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}
