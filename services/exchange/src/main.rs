//! `concord-exchange`: the crypto exchange's service binary.

#[tokio::main]
async fn main() -> Result<(), concord_runtime::service::Failure> {
    concord_runtime::service::main("config/exchange.toml", concord_exchange::ExchangeConfig::load, concord_exchange::run).await
}
