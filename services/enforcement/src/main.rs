//! `concord-enforcement`: law enforcement's service binary.

#[tokio::main]
async fn main() -> Result<(), concord_runtime::service::Failure> {
    concord_runtime::service::main("config/enforcement.toml", concord_enforcement::EnforcementConfig::load, concord_enforcement::run).await
}
