//! `jitgate serve`: the HTTP service. The library assembles it
//! ([`jitgate::api::Server`]); this command reads flags and announces it.

use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;

use jitgate::api::{Server, ServerError};
use jitgate::config::Config;

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

/// Run until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if config.cache_dir.is_none() {
        config.cache_dir = args.cache_dir.clone();
    }
    let store = jitgate::store::redacted(&config.store);
    let server = Server::from_config(config, args.config.clone()).map_err(|e| match e {
        ServerError::Policies(_) => {
            anyhow::Error::new(e).context("build the example policies with `./dev policies`")
        }
        e => e.into(),
    })?;
    if let Some(token) = server.bootstrap_token() {
        println!("one-time admin token (valid until this process exits): {token}");
    }
    let loaded = server.service().engine().policies().count();
    let service = server.service().clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let running = server.start().await?;
        tokio::spawn(reload_on_hangup(service));
        let scheme = if running.tls() { "https" } else { "http" };
        println!(
            "jitgate listening on {scheme}://{} ({loaded} policies, store {store})",
            running.addr()
        );
        println!("console: {scheme}://{}/console/", running.addr());
        running.serve(shutdown()).await?;
        Ok(())
    })
}

/// SIGHUP reloads the policy folder, as `POST /v1/policies/reload` does
/// (verified, loaded, fixtures passed, or the running set stays).
async fn reload_on_hangup(service: std::sync::Arc<jitgate::service::Service>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            let svc = service.clone();
            match tokio::task::spawn_blocking(move || svc.reload_from_source("system", "sighup"))
                .await
            {
                Ok(Ok(list)) => println!("SIGHUP: policy set reloaded ({} policies)", list.len()),
                Ok(Err(e)) => eprintln!("SIGHUP: candidate refused, running set kept: {e}"),
                Err(e) => eprintln!("SIGHUP: reload failed: {e}"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = service;
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
