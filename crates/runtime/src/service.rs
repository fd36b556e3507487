//! What every service binary does before and after its own work: read the
//! config file the first argument names (or the service's default), set up
//! logging (JSON lines when `CONCORD_JSON_LOGS` is set), run until SIGINT or
//! SIGTERM, and on failure print the error with each of its causes. A
//! service's `main.rs` names only its default config file, its loader and its
//! `run`.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

/// A service's failure as `main` reports it: the error and every cause, one
/// per line.
pub struct Failure(Box<dyn Error + Send + Sync>);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        write!(f, "{said}")?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            // Most errors here already say their cause; say it once.
            let text = c.to_string();
            if !said.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
                said = text;
            }
            cause = c.source();
        }
        Ok(())
    }
}

/// Runs a service: `load` reads its configuration from the file named by the
/// first argument (default `default_config`), `run` works until shutdown.
pub async fn main<C, LoadError, RunError, Run>(
    default_config: &str,
    load: impl FnOnce(&Path) -> Result<C, LoadError>,
    run: impl FnOnce(C, CancellationToken) -> Run,
) -> Result<(), Failure>
where
    LoadError: Error + Send + Sync + 'static,
    RunError: Error + Send + Sync + 'static,
    Run: Future<Output = Result<(), RunError>>,
{
    let path = std::env::args().nth(1).map_or_else(|| PathBuf::from(default_config), PathBuf::from);
    crate::telemetry::init(std::env::var_os("CONCORD_JSON_LOGS").is_some());
    let config = load(&path).map_err(|e| Failure(Box::new(e)))?;
    run(config, crate::shutdown::on_signal()).await.map_err(|e| Failure(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the ledger did not open")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_failure_prints_every_cause_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let config = crate::config::ConfigError::Read { path: "config/issuer.toml".into(), source: io() };
        assert_eq!(format!("{:?}", Failure(Box::new(config))), "config/issuer.toml: no such file");
        assert_eq!(format!("{:?}", Failure(Box::new(Outer(io())))), "the ledger did not open\n  caused by: no such file");
    }
}
