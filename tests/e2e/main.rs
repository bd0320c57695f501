//! End-to-end tests: the real engine and CLI against compiled example
//! policies and hostile guests. One test binary, so wasmtime links once.

mod cli;
mod crash;
mod examples;
mod hostile;
mod props;
mod replicas;
mod service;
mod store;
