//! `concord-committee`: the national internet committee's service binary.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).map_or_else(|| PathBuf::from("config/committee.toml"), PathBuf::from);
    concord_runtime::telemetry::init(std::env::var_os("CONCORD_JSON_LOGS").is_some());
    let config = concord_committee::CommitteeConfig::load(&path)?;
    if std::env::args().any(|a| a == "--once") {
        // Read the folder once and exit: for scripts and the demo.
        let pass = concord_committee::once(config).await?;
        println!(
            "committee: {} file(s), {} alert(s) published, {} duplicate(s), {} line(s) refused",
            pass.files,
            pass.published,
            pass.duplicates,
            pass.refused.len()
        );
        for r in &pass.refused {
            println!("committee: refused {r}");
        }
        return Ok(());
    }
    let shutdown = concord_runtime::shutdown::on_signal();
    concord_committee::run(config, shutdown).await?;
    Ok(())
}
