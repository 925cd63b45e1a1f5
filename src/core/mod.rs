//! What every room shares, importing nothing else of the crate: the tracked
//! event and its parser ([`event`]), who is a bot ([`bots`]), time buckets
//! ([`time`]), and the TLS set-up of every HTTP client ([`tls`]).

pub mod bots;
pub mod event;
pub mod time;
pub mod tls;
