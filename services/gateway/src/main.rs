//! `concord-gateway`: the partner gateway binary.

#[tokio::main]
async fn main() -> Result<(), concord_runtime::service::Failure> {
    concord_runtime::service::main("config/gateway.toml", concord_gateway::GatewayConfig::load, concord_gateway::run).await
}
