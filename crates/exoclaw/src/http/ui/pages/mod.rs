//! One module per dashboard page. Each handler calls the API handler whose
//! permission its route declares, and renders what it returns.

pub mod agent;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod channels;
pub mod chat;
pub mod cron;
pub mod delegations;
pub mod home;
pub mod mcp;
pub mod memory;
pub mod pairing;
pub mod security;
pub mod sessions;
pub mod signin;
pub mod skills;
pub mod teams;
pub mod traces;
pub mod usage;
pub mod users;
