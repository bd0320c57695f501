//! End-to-end tests: the real engine and CLI against compiled example
//! policies and hostile guests. One test binary, so wasmtime links once.

/// One set of tests, two stores: each listed test runs as
/// `<module>::sqlite::NAME` and `<module>::postgres::NAME`.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(super::Backend::Postgres) })*
        }
    };
}

mod audit;
mod cli;
mod clients;
mod console;
mod console_http;
mod coverage;
mod crash;
mod embedding;
mod examples;
mod explore;
mod hostile;
mod http;
mod identity;
mod login;
mod notify;
mod openapi;
mod outbox;
mod props;
mod provisioning;
mod replay;
mod replicas;
mod review;
mod router;
mod service;
mod shared_store;
mod signing;
mod staged_audit;
mod store;
mod tickets;
mod times;
mod tls;
