//! `concord-issuer`: the stablecoin issuer's service binary.

#[tokio::main]
async fn main() -> Result<(), concord_runtime::service::Failure> {
    concord_runtime::service::main("config/issuer.toml", concord_issuer::IssuerConfig::load, concord_issuer::run).await
}
