//! Integration tests: the real service on 127.0.0.1:0 against an in-process mock
//! GitHub. One test binary, so the crate is linked once.

mod clickhouse;
mod contract;
mod docs;
mod gharchive;
mod http_api;
mod import;
mod operations;
mod polling;
mod process;
mod provenance;
mod settled;
mod support;
mod watching;
mod windows;

// The harness, under the names the test modules use.
use support::{helpers, stores};
