//! What brings events in or takes them out: GitHub's feeds ([`github`]),
//! imported files and GH Archive downloads ([`import`], [`gharchive`]),
//! following the archive hour by hour ([`follow`]), and retention
//! ([`retention`]). Nothing here imports from [`crate::http`].

pub mod follow;
pub mod gharchive;
pub mod github;
pub mod import;
pub mod retention;
#[cfg(feature = "synthetic")]
pub mod synthetic;
