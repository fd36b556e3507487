//! `concord-bench` (`make bench`): Concord's throughput and latency, each
//! phase against a baseline measured in the same run on the same broker —
//! signed against raw produce, verified against raw consume, audit replay and
//! log appends, the freeze round trip through the issuer (and on the chain),
//! and the partner gateway against the direct producer. docs/benchmarks.md
//! records the figures. A tool, not a service: it lives apart from the
//! `concord` command that agencies run.

mod freeze;
mod gateway;
mod messaging;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = messaging::BenchArgs::parse();
    concord_protocol::ensure_crypto_provider();
    concord_runtime::telemetry::init(false);
    messaging::run(args).await
}
