//! End-to-end tests of the real `exoclaw` binary: one integration-test binary
//! for the crate (see STYLE.md), modules by area.

#![allow(
    clippy::disallowed_macros,
    reason = "tests and benchmarks print what they measure"
)]
#![allow(
    clippy::unwrap_used,
    clippy::needless_pass_by_value,
    reason = "test code: a panic is a test failure; helpers take JSON by value for brevity"
)]

mod support;

mod access;
mod agent_files;
mod alerts;
mod audit;
mod audit_fix;
mod audit_log;
mod backup;
mod bad_input;
mod budget;
mod channel_settings;
mod channels;
mod chat;
mod cli;
mod conn;
mod cron;
mod custom_tools;
mod dashboard;
mod dashboard_browser;
mod delegation;
mod discord;
mod fake_discord;
mod fake_telegram;
mod gates;
mod guard;
mod handoff;
mod inprocess;
mod llama;
mod local_model;
mod mcp;
mod memory;
mod metrics;
mod onboard;
mod openai_sdk;
mod openapi;
mod orchestration_api;
mod otel;
mod outbox;
mod pairing;
mod postgres;
mod receipts;
mod recovery;
mod security;
mod serve;
mod skills;
mod teams;
mod telegram;
mod telegram_files;
mod tenant_limits;
mod token;
mod tools;
mod ws;
