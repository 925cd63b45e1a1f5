//! The HTTP face: the handlers and the answer cache ([`api`]), the accept
//! loop with its connection limits ([`server`]), failures as HTTP answers
//! ([`error`]), and the charts ([`chart`]).

pub mod api;
pub mod chart;
pub mod error;
pub mod server;
