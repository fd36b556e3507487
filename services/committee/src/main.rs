//! `concord-committee`: the national internet committee's service binary.
//! `--once` after the config file reads the reports folder once and exits
//! (for scripts and the demo).

use concord_committee::{CommitteeConfig, CommitteeError};

#[tokio::main]
async fn main() -> Result<(), concord_runtime::service::Failure> {
    concord_runtime::service::main("config/committee.toml", CommitteeConfig::load, |config, shutdown| async move {
        if std::env::args().any(|a| a == "--once") {
            return once(config).await;
        }
        concord_committee::run(config, shutdown).await
    })
    .await
}

async fn once(config: CommitteeConfig) -> Result<(), CommitteeError> {
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
    Ok(())
}
