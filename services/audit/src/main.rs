//! `concord-audit`: the audit service binary.

#[tokio::main]
async fn main() -> Result<(), concord_runtime::service::Failure> {
    concord_runtime::service::main("config/audit.toml", concord_audit::AuditConfig::load, concord_audit::run).await
}
