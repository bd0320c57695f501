//! `jitgate serve`: the HTTP service.
//!
//! Start-up order matters: open and migrate the store, load policies (audited),
//! end every grant whose time passed while the service was down, and only
//! then report ready and accept traffic. With no config file at all it runs
//! the example policies on `./jitgate.db` on loopback and prints a one-time
//! admin token (kept only as a hash in memory).

use anyhow::{Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use jitgate::api::guard::{self, AuthGuard};
use jitgate::api::{AppState, router};
use jitgate::config::{Config, ProvisionerKind};
use jitgate::provision::{LogProvisioner, Provisioner, WebhookProvisioner};
use jitgate::service::{Principal, Role, Service, now_millis};
use jitgate::{Engine, audit};

/// Run the HTTP service (with no config: example policies, ./jitgate.db, loopback).
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Config file (jitgate.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the config (port 0 picks a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Default cache dir when the config names none (from the global
    /// `--cache-dir`, not a flag of its own).
    #[arg(skip)]
    pub cache_dir: Option<PathBuf>,
}

fn bootstrap_token() -> Result<String> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness for a token: {e}"))?;
    Ok(format!("jg_{}", hex::encode(b)))
}

/// Run until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    let (mut config, from_file) = match &args.config {
        Some(p) => (Config::load(p)?, true),
        None => (Config::default(), false),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if config.cache_dir.is_none() {
        config.cache_dir = args.cache_dir.clone();
    }
    let mut principals = config.principals();
    if principals.is_empty() {
        let token = bootstrap_token()?;
        principals.insert(
            hex::encode(Sha256::digest(token.as_bytes())),
            Principal {
                name: "admin".into(),
                roles: BTreeSet::from([Role::Admin, Role::Pipeline, Role::Auditor]),
                groups: Vec::new(),
                subject_roles: Vec::new(),
            },
        );
        println!("one-time admin token (valid until this process exits): {token}");
    }

    let store_name = jitgate::store::redacted(&config.store);
    let store = jitgate::store::open(&config.store)
        .with_context(|| format!("opening store {store_name}"))?;
    let mut engine = Engine::new(config.engine_config())?;
    engine
        .load_path(&config.policies)
        .with_context(|| "loading policies (build the examples with `./dev policies`)")?;
    let service = Arc::new(Service::new(engine, store, config.service_config()));
    service.audit(
        audit::kind::CONFIG_LOAD,
        "system",
        json!({
            "file": args.config,
            "from-file": from_file,
            "listen": config.listen.to_string(),
            "store": store_name,
            "policies": config.policies,
            "global-ttl-cap": config.global_ttl_cap,
            "approval-timeout": config.approval_timeout,
            "tokens": principals.values().map(|p| json!({"name": p.name, "roles": p.roles})).collect::<Vec<_>>(),
            "audit-checkpoints": config.audit.checkpoints().map(|(dir, _, every)| json!({"dir": dir, "interval-minutes": every.as_secs() / 60})),
        }),
    )?;
    let metas: Vec<_> = service.engine().policies().cloned().collect();
    for m in &metas {
        service.audit(audit::kind::POLICY_LOAD, "system", json!(m))?;
    }
    // Anchor the chain outside the store: one checkpoint now (so a bad key
    // or folder fails start-up, not the first tick), then every interval.
    let checkpoints = match config.audit.checkpoints() {
        Some((dir, key, every)) => {
            let key = jitgate::keys::read_secret(key).context("audit.checkpoint-key")?;
            let (cp, _) = audit::checkpoint::write(service.store().as_ref(), &key, dir, now_secs())
                .context("audit.checkpoint-dir: writing the start-up checkpoint")?;
            Some((dir.to_path_buf(), key, every, cp.seq))
        }
        None => None,
    };

    let provisioner: Arc<dyn Provisioner> = match config.provisioner.kind {
        ProvisionerKind::Log => Arc::new(LogProvisioner),
        ProvisionerKind::Webhook => {
            let env = config.provisioner.secret_env.clone().unwrap_or_default();
            let secret = std::env::var(&env)
                .with_context(|| format!("provisioner.secret-env: ${env} is not set"))?;
            let url = config.provisioner.url.clone().unwrap_or_default();
            let timeout = config
                .provisioner
                .timeout_ms
                .map(std::time::Duration::from_millis)
                .unwrap_or(jitgate::provision::DEFAULT_TIMEOUT);
            let cap = config
                .provisioner
                .max_response_bytes
                .unwrap_or(jitgate::provision::DEFAULT_MAX_RESPONSE_BYTES);
            Arc::new(
                WebhookProvisioner::new(&url, secret.as_bytes())
                    .map_err(anyhow::Error::msg)?
                    .with_limits(timeout, cap),
            )
        }
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let auth_guard = Arc::new(AuthGuard::new(config.auth_limits()));
        let state = Arc::new(AppState {
            service: service.clone(),
            principals,
            ready: Default::default(),
            reload: Some((config.policies.clone(), config.engine_config())),
            auth_guard: auth_guard.clone(),
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        // Crash recovery: end what fell due while we were down, before ready.
        let svc = service.clone();
        let overdue = tokio::task::spawn_blocking(move || svc.end_due(now_millis())).await??;
        if overdue > 0 {
            tracing::warn!(
                overdue,
                "ended grants that fell due while the service was down"
            );
        }
        tokio::spawn(jitgate::service::scheduler::run(service.clone()));
        tokio::spawn(jitgate::provision::dispatch(service.clone(), provisioner));
        if let Some((dir, key, every, seq)) = checkpoints {
            tokio::spawn(audit::checkpoint::every(
                service.store().clone(),
                dir,
                key,
                every,
                Some(seq),
            ));
        }
        tokio::spawn(guard::flush_every_window(
            auth_guard.clone(),
            service.clone(),
        ));
        state.ready.store(true, Ordering::Release);
        println!(
            "jitgate listening on http://{addr} ({} policies, store {})",
            metas.len(),
            store_name
        );
        jitgate::api::server::serve(listener, router(state), config.http_limits(), shutdown())
            .await?;
        // What this window counted so far is evidence too.
        guard::flush(&auth_guard, &service).await;
        Ok(())
    })
}

fn now_secs() -> u64 {
    (now_millis() / 1000).max(0) as u64
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
