//! `concord-gateway`: the partner gateway binary.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).map_or_else(|| PathBuf::from("config/gateway.toml"), PathBuf::from);
    concord_runtime::telemetry::init(std::env::var_os("CONCORD_JSON_LOGS").is_some());
    let config = concord_gateway::GatewayConfig::load(&path)?;
    let shutdown = concord_runtime::shutdown::on_signal();
    concord_gateway::run(config, shutdown).await?;
    Ok(())
}
