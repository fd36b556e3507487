//! `concord-committee`: the national internet committee's service binary.

#[tokio::main]
async fn main() -> Result<(), concord_runtime::service::Failure> {
    concord_runtime::service::main("config/committee.toml", concord_committee::CommitteeConfig::load, concord_committee::run).await
}
