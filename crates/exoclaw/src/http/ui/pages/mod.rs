//! One module per dashboard page. Each handler calls the API handler whose
//! permission its route declares, and renders what it returns.

pub mod agents;
pub mod approvals;
pub mod chat;
pub mod home;
pub mod pairing;
pub mod sessions;
pub mod signin;
pub mod traces;
pub mod users;
