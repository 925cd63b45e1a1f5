//! GitHub: the REST client for the events feed and the poller that stores it.

pub mod budget;
pub mod client;
pub mod poller;

pub use client::{FetchError, GithubClient};
pub use poller::{PollError, PollOutcome, PollReport, PollStatus, Poller};
