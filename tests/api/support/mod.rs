//! The harness every test module shares: a mock GitHub, the service started
//! on 127.0.0.1:0, expected answers computed from raw events (`helpers`),
//! and the stores every test runs against, ClickHouse and its cluster
//! started by the tests themselves when installed (`stores`).

pub mod helpers;
pub mod stores;
