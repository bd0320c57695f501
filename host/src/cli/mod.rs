//! Binary-side commands that run the service or read its store.

pub mod audit;
pub mod serve;
