//! [`Server`]: the whole service assembled from a [`Config`] — store,
//! policies, grant service, provisioner, audit checkpoints, the router and
//! its background tasks — so that `jitgate serve`, an embedder and the
//! in-process router tests build exactly the same thing.
//!
//! Start-up order matters: open and migrate the store, load the policies
//! (audited), and, in [`Server::start`], end every grant whose time passed
//! while the service was down before the port is reported and `/readyz`
//! turns ready.

use axum::Router;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::guard::{self, AuthGuard};
use super::{AppState, router};
use crate::audit;
use crate::config::{Config, ProvisionerKind};
use crate::engine::EngineError;
use crate::identity::{
    IdentityProvider, IdentityProviders, JwksFetch, JwksSource, MAX_JWKS_BYTES, MIN_REFRESH,
};
use crate::policy::LoadError;
use crate::provision::{LogProvisioner, Provisioner, WebhookProvisioner};
use crate::service::reconcile::PullTarget;
use crate::service::{PolicySource, Principal, Role, Service, ServiceError, SourceError};
use crate::store::StoreError;

/// Why the server could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting is unusable; names the key.
    #[error("{key}: {message}")]
    Config {
        /// The `jitgate.toml` key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The store could not be opened or written.
    #[error("store {store}: {source}")]
    Store {
        /// The store, password redacted.
        store: String,
        /// Why.
        source: StoreError,
    },
    /// No engine could be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The policies did not load (build the examples with `./dev policies`).
    #[error("loading policies: {0}")]
    Policies(#[from] LoadError),
    /// `[trust]` is set and the policy set was refused.
    #[error("policy set refused: {0}")]
    PolicySet(#[from] crate::policy_set::PolicySetError),
    /// Start-up records could not be written.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Binding or serving the socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        source: std::io::Error,
    },
}

fn config_error(key: &str, message: impl std::fmt::Display) -> ServerError {
    ServerError::Config {
        key: key.into(),
        message: message.to_string(),
    }
}

/// Audit checkpoints to write: folder, key, interval, and the seq of the
/// one written at start-up.
struct Checkpoints {
    dir: PathBuf,
    key: ed25519_dalek::SigningKey,
    every: std::time::Duration,
    written: i64,
}

/// The service, assembled; [`Server::router`] for in-process use,
/// [`Server::start`] / [`Server::run`] to serve a socket.
pub struct Server {
    state: Arc<AppState>,
    config: Config,
    provisioner: Arc<dyn Provisioner>,
    checkpoints: Option<Checkpoints>,
    bootstrap_token: Option<String>,
    /// Ticket sources the reconciler pulls from, and the client it uses.
    pulls: Vec<PullTarget>,
    outbound: crate::outbound::Outbound,
    /// `[http] tls-cert`/`tls-key`, loaded: serve HTTPS.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server {
    /// Build everything `config` describes. `file` is the config file it
    /// came from (recorded in the config-load audit record), if any. With
    /// no tokens configured, a one-time admin token is made (see
    /// [`Server::bootstrap_token`]).
    ///
    /// Blocking (it opens and migrates the store and compiles the
    /// policies): call it before entering a runtime, or from
    /// `tokio::task::spawn_blocking`.
    pub fn from_config(config: Config, file: Option<PathBuf>) -> Result<Server, ServerError> {
        Self::from_config_with_env(config, file, &|k| std::env::var(k).ok())
    }

    /// [`Server::from_config`] reading the ticket sources' secrets
    /// (`secret-env`) through `env` instead of the process environment
    /// (an embedder's secret store; tests).
    pub fn from_config_with_env(
        config: Config,
        file: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Server, ServerError> {
        Self::from_config_with_clock(config, file, env, Arc::new(crate::service::SystemClock))
    }

    /// [`Server::from_config_with_env`] whose service reads the time from
    /// `clock` (a [`crate::service::ManualClock`] in tests: deadlines,
    /// expiries, approvals and ticket signatures at known times).
    pub fn from_config_with_clock(
        config: Config,
        file: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
        clock: Arc<dyn crate::service::Clock>,
    ) -> Result<Server, ServerError> {
        // The certificate first: a bad file fails start-up before the
        // store is opened or anything is audited.
        let tls = match (&config.http.tls_cert, &config.http.tls_key) {
            (Some(cert), Some(key)) => Some(
                super::tls::server_config(cert, key).map_err(|e| config_error(e.key, e.message))?,
            ),
            (None, None) => None,
            (Some(_), None) => {
                return Err(config_error("http.tls-key", "required with http.tls-cert"));
            }
            (None, Some(_)) => {
                return Err(config_error("http.tls-cert", "required with http.tls-key"));
            }
        };
        let mut principals = config.principals();
        let mut bootstrap_token = None;
        if principals.is_empty() {
            let token = new_token()?;
            principals.insert(
                hex::encode(Sha256::digest(token.as_bytes())),
                Principal {
                    name: "admin".into(),
                    roles: BTreeSet::from([Role::Admin, Role::Pipeline, Role::Auditor]),
                    ..Principal::default()
                },
            );
            bootstrap_token = Some(token);
        }

        let store_name = crate::store::redacted(&config.store);
        let store = crate::store::open(&config.store).map_err(|source| ServerError::Store {
            store: store_name.clone(),
            source,
        })?;
        // Notices ride the store's outbox: the wrapped store queues them
        // with each transition, the router hands them to the channels.
        let notifier = crate::notify::Notifier::from_config(
            &config.notify,
            &config.notifications,
            env,
            store.clone(),
        )
        .map_err(|e| match e.split_once(": ") {
            Some((key, message)) => config_error(key, message),
            None => config_error("notifications", e),
        })?;
        let store: Arc<dyn crate::store::Store> = match &notifier {
            Some(n) => Arc::new(crate::notify::NotifyingStore::new(store, n.clone())),
            None => store,
        };
        let source = PolicySource {
            path: config.policies.clone(),
            engine: config.engine_config(),
            trust: config.trust().map_err(|e| ServerError::Config {
                key: "trust.public-keys".into(),
                message: e,
            })?,
        };
        let engine = source.load(store.as_ref()).map_err(|e| match e {
            SourceError::Engine(e) => ServerError::Engine(e),
            SourceError::Load(e) => ServerError::Policies(e),
            SourceError::Refused(e) => ServerError::PolicySet(e),
            SourceError::Store(source) => ServerError::Store {
                store: store_name.clone(),
                source,
            },
            e @ SourceError::Fixtures(_) => ServerError::Service(e.into()),
        })?;
        let sources = config
            .ticket_sources(env)
            .map_err(|e| match e.split_once(": ") {
                Some((key, message)) => config_error(key, message),
                None => config_error("ticket-sources", e),
            })?;
        let pulls = pull_targets(&config, env)?;
        let outbound =
            crate::outbound::Outbound::new(None).map_err(|e| config_error("ticket-sources", e))?;
        let mut service = Service::with_clock(engine, store, config.service_config(), clock)
            .with_policy_source(source)
            .with_ticket_sources(sources)
            .with_trusted_context(config.trusted_context())
            .with_pull_targets(pulls.clone(), outbound.clone());
        if !config.provisioners.is_empty() {
            let targets =
                crate::provision::config::build(&config.provisioners, &config.entitlements)
                    .map_err(|(key, message)| config_error(&key, message))?;
            service = service.with_targets(Arc::new(targets));
        }
        let service = Arc::new(service);
        service.audit(
            audit::kind::CONFIG_LOAD,
            "system",
            json!({
                "file": file,
                "from-file": file.is_some(),
                "listen": config.listen.to_string(),
                "store": store_name,
                "policies": config.policies,
                "global-ttl-cap": config.global_ttl_cap,
                "approval-timeout": config.approval_timeout,
                "tokens": principals.values().map(|p| json!({"name": p.name, "roles": p.roles})).collect::<Vec<_>>(),
                "identity-providers": config.identity_providers.iter().map(|p| json!({"name": p.name, "issuer": p.issuer, "audience": p.audience, "console-client-id": p.client_id})).collect::<Vec<_>>(),
                "identity-aliases": config.identity_aliases,
                "provisioners": config.provisioners.iter().map(|p| json!({"name": p.name, "kind": format!("{:?}", p.kind).to_lowercase(), "dynamic": p.dynamic})).collect::<Vec<_>>(),
                "entitlements": config.entitlements.iter().map(|e| json!({"name": e.name, "provisioner": e.provisioner, "group": e.group, "role": e.role})).collect::<Vec<_>>(),
                "tls": config.http.tls_cert.as_ref().map(|c| json!({"cert": c})),
                "audit-checkpoints": config.audit.checkpoints().map(|(dir, _, every)| json!({"dir": dir, "interval-minutes": every.as_secs() / 60})),
            }),
        )?;
        service.record_policies(&service.engine(), "system")?;
        // Anchor the chain outside the store: one checkpoint now (so a bad
        // key or folder fails start-up, not the first tick), then every
        // interval.
        let checkpoints = match config.audit.checkpoints() {
            Some((dir, key, every)) => {
                let key = crate::keys::read_secret(key)
                    .map_err(|e| config_error("audit.checkpoint-key", e))?;
                let (cp, _) = audit::checkpoint::write(
                    service.store().as_ref(),
                    &key,
                    dir,
                    (service.now() / 1000).max(0) as u64,
                )
                .map_err(|e| config_error("audit.checkpoint-dir", e))?;
                Some(Checkpoints {
                    dir: dir.to_path_buf(),
                    key,
                    every,
                    written: cp.seq,
                })
            }
            None => None,
        };
        let provisioner = match notifier {
            Some(n) => Arc::new(crate::notify::Router::new(provisioner(&config)?, n)),
            None => provisioner(&config)?,
        };
        let identities = Arc::new(identity_providers(&config)?);
        let login = crate::identity::LoginFlow::new(&identities, env, outbound.clone())
            .map_err(|e| config_error(&e.key, e.message))?;
        let pending_logins = Arc::new(crate::identity::PendingLogins::new(&login));
        let state = Arc::new(AppState {
            service,
            principals,
            ready: Default::default(),
            auth_guard: Arc::new(AuthGuard::new(config.auth_limits())),
            identities,
            console: Arc::new(crate::console::Console::new(
                crate::console::DEFAULT_SESSION_MINUTES,
                tls.is_some(),
            )),
            login: Arc::new(login),
            pending_logins,
            tls: tls.is_some(),
        });
        Ok(Server {
            state,
            config,
            provisioner,
            checkpoints,
            bootstrap_token,
            pulls,
            outbound,
            tls,
        })
    }

    /// Console sign-in through the identity providers (the same as
    /// [`AppState::login`]).
    pub fn login(&self) -> &Arc<crate::identity::LoginFlow> {
        &self.state.login
    }

    /// Whether [`Server::start`] serves HTTPS (`[http] tls-cert` and
    /// `tls-key`); the same as [`AppState::tls`].
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The one-time admin token made because no token was configured; it
    /// is valid until this process exits and kept only as a hash.
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.bootstrap_token.as_deref()
    }

    /// The grant service behind the router.
    pub fn service(&self) -> &Arc<Service> {
        &self.state.service
    }

    /// The HTTP API, for in-process use (tests drive it with
    /// `tower::ServiceExt::oneshot`). Ready at once: no background task
    /// runs until [`Server::start`].
    pub fn router(&self) -> Router {
        self.state.ready.store(true, Ordering::Release);
        router(self.state.clone())
    }

    /// Bind the configured address, end the grants that fell due while
    /// the service was down, start the scheduler, the provisioning
    /// dispatcher, the checkpoint writer and the auth-failure tallies, and
    /// turn ready. Call within a tokio runtime.
    pub async fn start(self) -> Result<Running, ServerError> {
        let listener = tokio::net::TcpListener::bind(self.config.listen)
            .await
            .map_err(|source| ServerError::Io {
                context: format!("binding {}", self.config.listen),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Io {
            context: "reading the bound address".into(),
            source,
        })?;
        let service = self.state.service.clone();
        let svc = service.clone();
        let overdue = tokio::task::spawn_blocking(move || svc.end_due(svc.now()))
            .await
            .map_err(|e| ServiceError::Unavailable(format!("start-up sweep: {e}")))??;
        if overdue > 0 {
            tracing::warn!(
                overdue,
                "ended grants that fell due while the service was down"
            );
        }
        let mut background = service
            .start_background(self.provisioner.clone())
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        if let Some(cp) = self.checkpoints {
            background.adopt(tokio::spawn(audit::checkpoint::every(
                service.store().clone(),
                cp.dir,
                cp.key,
                cp.every,
                Some(cp.written),
            )));
        }
        // Webhooks are best effort: the tickets of live grants are pulled
        // from their systems every `reconcile-interval`.
        for target in self.pulls {
            background.adopt(tokio::spawn(crate::service::reconcile::reconcile_every(
                service.clone(),
                target,
                self.outbound.clone(),
            )));
        }
        // The policy folder is watched: a changed set is tried as a reload
        // candidate (crate::service::reload).
        background.adopt(tokio::spawn(crate::service::reload::watch(
            service.clone(),
            crate::service::reload::WATCH_INTERVAL,
        )));
        background.adopt(tokio::spawn(guard::flush_every_window(
            self.state.auth_guard.clone(),
            service.clone(),
        )));
        self.state.ready.store(true, Ordering::Release);
        Ok(Running {
            listener,
            addr,
            state: self.state,
            limits: self.config.http_limits(),
            tls: self.tls,
            _background: background,
        })
    }

    /// [`Server::start`], then serve until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        self.start().await?.serve(shutdown).await
    }
}

/// A started server: bound, swept, ready.
pub struct Running {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    limits: super::server::HttpLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Scheduler, dispatcher, checkpoints, auth tallies: stopped with it.
    _background: crate::service::Background,
}

impl Running {
    /// The address it listens on (the real port when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves HTTPS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serve until `shutdown` resolves; open requests get a short drain.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let app = router(self.state.clone());
        super::server::serve(self.listener, app, self.limits, self.tls, shutdown)
            .await
            .map_err(|source| ServerError::Io {
                context: "serving".into(),
                source,
            })?;
        // What this window counted so far is evidence too.
        guard::flush(&self.state.auth_guard, &self.state.service).await;
        Ok(())
    }
}

/// The pullable ticket sources (`base-url` set), with their credentials
/// read from `credentials-env`.
fn pull_targets(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<PullTarget>, ServerError> {
    let mut targets = Vec::new();
    for (i, s) in config.ticket_sources.iter().enumerate() {
        let Some(base_url) = &s.base_url else {
            continue;
        };
        let key = format!("ticket-sources[{i}].credentials-env");
        let var = s
            .credentials_env
            .as_deref()
            .ok_or_else(|| config_error(&key, "required with base-url (pulls need credentials)"))?;
        let credentials =
            env(var).ok_or_else(|| config_error(&key, format!("`{var}` is not set")))?;
        targets.push(PullTarget {
            source: s.name.clone(),
            base_url: base_url.clone(),
            credentials,
            every: std::time::Duration::from_secs(s.reconcile_interval.max(1)),
        });
    }
    Ok(targets)
}

fn new_token() -> Result<String, ServerError> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b)
        .map_err(|e| config_error("tokens", format!("no OS randomness: {e}")))?;
    Ok(format!("jg_{}", hex::encode(b)))
}

/// Longest wait for an identity provider's JWKS, response body included.
pub const JWKS_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `[[identity-providers]]`, ready to verify: a `jwks-file` is read now (a
/// bad one fails start-up); a `jwks-url` is fetched when the first token
/// needs it, so an IdP outage at start-up leaves static tokens working.
fn identity_providers(config: &Config) -> Result<IdentityProviders, ServerError> {
    let mut out = Vec::with_capacity(config.identity_providers.len());
    let mut client: Option<crate::outbound::Outbound> = None;
    for (i, p) in config.identity_providers.iter().enumerate() {
        let provider = match &p.jwks_url {
            None => IdentityProvider::from_file_config(p.clone())
                .map_err(|e| config_error(&format!("identity-providers[{i}].jwks-file"), e))?,
            Some(url) => {
                let key = format!("identity-providers[{i}].jwks-url");
                let client = match &client {
                    Some(c) => c.clone(),
                    None => {
                        let c = crate::outbound::Outbound::new(None)
                            .map_err(|e| config_error(&key, e))?;
                        client = Some(c.clone());
                        c
                    }
                };
                let algorithms = p
                    .parsed_algorithms(&format!("identity-providers[{i}]"))
                    .map_err(|e| config_error(&key, e))?;
                let fetch = jwks_fetch(client, url.clone());
                let keys = JwksSource::new(fetch, algorithms, MIN_REFRESH);
                IdentityProvider::new(p.clone(), keys).map_err(|e| config_error(&key, e))?
            }
        };
        out.push(provider);
    }
    Ok(IdentityProviders::new(out))
}

/// GET `url` with the outbound client, bounded in time and size. Called on
/// a blocking thread (the API verifies new tokens in `spawn_blocking`),
/// where the runtime's handle can wait for the async client.
fn jwks_fetch(client: crate::outbound::Outbound, url: String) -> JwksFetch {
    Box::new(move || {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "no runtime to fetch the JWKS on".to_string())?;
        let req = hyper::Request::get(url.as_str())
            .header(hyper::header::ACCEPT, "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::new()))
            .map_err(|e| format!("{url}: {e}"))?;
        let answer = handle
            .block_on(client.send(req, JWKS_FETCH_TIMEOUT, MAX_JWKS_BYTES))
            .map_err(|e| format!("{url}: {e}"))?;
        if !answer.status.is_success() {
            return Err(format!("{url}: answered {}", answer.status));
        }
        answer
            .body
            .map(|b| b.to_vec())
            .map_err(|e| format!("{url}: {e}"))
    })
}

fn provisioner(config: &Config) -> Result<Arc<dyn Provisioner>, ServerError> {
    Ok(match config.provisioner.kind {
        ProvisionerKind::Log => Arc::new(LogProvisioner),
        ProvisionerKind::Webhook => {
            let env = config.provisioner.secret_env.clone().unwrap_or_default();
            let secret = std::env::var(&env).map_err(|_| {
                config_error("provisioner.secret-env", format!("${env} is not set"))
            })?;
            let url = config.provisioner.url.clone().unwrap_or_default();
            let timeout = config
                .provisioner
                .timeout_ms
                .map(std::time::Duration::from_millis)
                .unwrap_or(crate::provision::DEFAULT_TIMEOUT);
            let cap = config
                .provisioner
                .max_response_bytes
                .unwrap_or(crate::provision::DEFAULT_MAX_RESPONSE_BYTES);
            let client = crate::outbound::Outbound::new(config.provisioner.ca_file.as_deref())
                .map_err(|e| config_error("provisioner.ca-file", e))?;
            Arc::new(
                WebhookProvisioner::with_client(&url, secret.as_bytes(), client)
                    .map_err(|e| config_error("provisioner.url", e))?
                    .with_limits(timeout, cap),
            )
        }
    })
}
