//! Every integration test in one binary: linking one test binary instead of
//! one per file saves minutes on two cores, and tests of different files
//! run side by side. Tests that restart or stop a shared part (the broker,
//! the chain, the cluster) are `#[ignore]`d here and run alone afterwards by
//! scripts/test.sh (`--ignored`).

mod admin;
mod audit;
mod audit_crash;
mod broker_acls;
mod chain;
mod chain_confirmations;
mod chain_crash;
mod chain_outage;
mod cluster;
mod committee;
mod conformance;
mod crash;
mod directory_acls;
mod directory_live;
mod enforcement;
mod enforcement_chain;
mod exactly_once;
mod exchange;
mod exchange_chain;
mod gateway;
mod gateway_limits;
mod governance;
mod helm;
mod isolation;
mod issuer;
mod issuer_chain;
mod review;
mod review_crash;
mod roles;
mod round_trip;
mod schemas;
mod tlp;
mod verification;
