//! End-to-end tests of the real `exoclaw` binary: one integration-test binary
//! for the crate (see STYLE.md), modules by area.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod support;

mod bad_input;
mod cli;
mod postgres;
mod serve;
