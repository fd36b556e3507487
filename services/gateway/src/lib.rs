//! The partner gateway: Concord for agencies and tools that do not run Kafka
//! clients. Over HTTPS (rustls) an agency authenticates with a short-lived JWT
//! signed by its own key, publishes alerts and freeze requests — validated,
//! signed with the key it delegated to the gateway (marked `delegated` in the
//! directory, so every consumer can tell, and a holder can refuse), and
//! published to the right topic — and reads its verified events as a page or a
//! Server-Sent Events stream resumable with `Last-Event-ID`. Threat-intelligence
//! tools read the alerts as STIX 2.1 over read-only TAXII 2.1.
//!
//! Delivery guarantee: every event the gateway serves was verified like any
//! consumer verifies it, and is stored once per record (at least once from
//! Kafka, idempotent in the store), in an order that only grows — a client
//! resuming after the last event id it saw misses nothing and sees nothing
//! twice. A POST is answered only after the brokers acknowledged the record;
//! a retried POST of the same alert or request id is not published again.

pub mod auth;
pub mod config;
pub mod error;
pub mod handler;
pub mod limits;
pub mod metrics;
pub mod problem;
pub mod publisher;
pub mod routes;
pub mod server;
pub mod state;
pub mod stix;
pub mod store;
pub mod taxii;
pub mod tls;
pub mod validate;

pub use config::GatewayConfig;
pub use error::GatewayError;
pub use server::{run, Gateway};
pub use state::AppState;
