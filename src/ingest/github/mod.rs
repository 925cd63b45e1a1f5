//! GitHub: the REST client for the events feed and the poller that stores it.
//!
//! - [`client`]: HTTP, headers, ETags, `Link` pagination, rate-limit hints.
//! - [`budget`]: the request budget shared by every feed.
//! - [`poller`]: the loop around one poll of one feed.
//! - `feed`, `page`, `backoff`: a feed's state and continuity, parsing a page,
//!   waiting after failures.
//! - [`outcome`] and [`status`]: what a poll came to, and the report built from it.

mod backoff;
pub mod budget;
pub mod client;
mod feed;
pub mod outcome;
mod page;
pub mod poller;
pub mod status;

pub use client::{FetchError, GithubClient};
pub use feed::{Continuity, FeedKind, continuity};
pub use outcome::{Outcome, PollError, PollOutcome};
pub use poller::Poller;
pub use status::{PollReport, PollStatus};
