//! `concord-exchange`: the crypto exchange's service binary.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).map_or_else(|| PathBuf::from("config/exchange.toml"), PathBuf::from);
    concord_runtime::telemetry::init(std::env::var_os("CONCORD_JSON_LOGS").is_some());
    let config = concord_exchange::ExchangeConfig::load(&path)?;
    let shutdown = concord_runtime::shutdown::on_signal();
    concord_exchange::run(config, shutdown).await?;
    Ok(())
}
