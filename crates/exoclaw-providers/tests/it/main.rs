//! Integration tests of the providers and decorators against the fake
//! provider server over loopback: one test binary for the crate (STYLE.md),
//! modules by area.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod support;

mod anthropic;
mod budget;
mod chunking;
mod egress;
mod fake_server;
mod mapping;
mod openai;
mod rate_limit;
mod resilience;
mod secrets;
