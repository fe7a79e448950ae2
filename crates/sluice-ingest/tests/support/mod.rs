//! Helpers shared by the integration tests.

pub mod api;
pub mod databases;
pub mod lake;
