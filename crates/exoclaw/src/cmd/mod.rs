//! One module per CLI subcommand (besides `serve`, which has its own).

pub mod agent;
pub mod approvals;
pub mod audit;
pub mod audit_fix;
pub mod audit_log;
pub mod backup;
pub mod channels;
pub mod config;
pub mod cron;
pub mod doctor;
pub mod mcp;
pub mod memory;
pub mod migrate;
pub mod onboard;
pub mod orchestration;
pub mod pairing;
pub mod sandbox;
pub mod secrets;
pub mod service;
pub mod skills;
pub mod table;
pub mod team;
pub mod tenants;
pub mod token;
pub mod tools;
pub mod users;
