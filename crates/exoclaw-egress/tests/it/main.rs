//! exoclaw-egress integration tests: the classification corpus, domain
//! semantics, the client against loopback fakes (rebinding, mixed answers,
//! redirects, caps, timeouts, dry runs proven by canaries), the keep-alive
//! pool's bound, the forward proxy, and a bounded property test of URL
//! classification.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod classify;
mod client;
mod domain;
mod lint;
mod pool;
mod property;
mod proxy;
mod support;
