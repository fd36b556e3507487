//! What every Concord process shares: layered typed configuration, telemetry,
//! the shutdown tree, and the agency's identity (keys and certificates),
//! including the dev PKI that creates them.

pub mod admin;
pub mod config;
pub mod identity;
pub mod metrics;
pub mod pki;
pub mod service;
pub mod shutdown;
pub mod telemetry;
