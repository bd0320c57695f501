//! End-to-end tests: the real engine and CLI against compiled example
//! policies and hostile guests. One test binary, so wasmtime links once.

mod audit;
mod cli;
mod clients;
mod crash;
mod examples;
mod hostile;
mod http;
mod outbox;
mod props;
mod replicas;
mod service;
mod store;
