//! The skeleton every service shares, so that its own files say only what
//! differs:
//!
//! - [`ServiceHeader`], flattened into each service's config: which hub, as
//!   which agency, its database, its admin port and its topic suffix;
//! - [`ServiceError`], the failures every service can have before its own work
//!   starts (identity, admin port);
//! - [`serve`]: the identity, the metrics and the admin port around the work;
//! - [`main`]: what a binary does before and after — read the config file the
//!   first argument names (or the service's default), set up logging (JSON
//!   lines when `CONCORD_JSON_LOGS` is set), run until SIGINT or SIGTERM, and on
//!   failure print the error with each of its causes.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminError;
use crate::identity::{Identity, IdentityError};
use crate::metrics::Metrics;

/// The keys every service's configuration starts with (flattened into it: the
/// file has them at the top level). `agency`, `database` and `admin_listen`
/// have per-service defaults only where the service's loader gives them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceHeader {
    /// The hub configuration file (brokers, registry, PKI, directory, topics).
    #[serde(default = "default_hub")]
    pub hub: PathBuf,
    /// The agency the service acts as: its certificate, key and principal.
    pub agency: String,
    /// Its SQLite database (ledger, state, log or store).
    pub database: PathBuf,
    /// The admin port (`/healthz`, `/readyz`, `/metrics`), `host:port`; "" turns it off.
    pub admin_listen: String,
    /// Use an isolated copy of the topics (`<topic>.<suffix>`) and its own
    /// consumer groups: tests and benchmarks only.
    #[serde(default)]
    pub topic_suffix: Option<String>,
}

fn default_hub() -> PathBuf {
    "config/concord.toml".into()
}

impl ServiceHeader {
    /// A header for `agency` with `database`, the default hub, no admin port and no suffix.
    pub fn new(agency: &str, database: PathBuf) -> Self {
        ServiceHeader { hub: default_hub(), agency: agency.to_owned(), database, admin_listen: String::new(), topic_suffix: None }
    }

    /// The agency's identity as the hub file says, on the suffixed topics if any.
    pub fn identity(&self) -> Result<Identity, ServiceError> {
        Ok(Identity::from_config(&self.hub, &self.agency, self.topic_suffix.as_deref())?)
    }
}

/// What can stop any service before or around its own work.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The agency identity does not load.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The admin port failed to start.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The directory topic cannot be followed.
    #[error(transparent)]
    Directory(Box<crate::directory::FollowError>),
}

impl From<crate::directory::FollowError> for ServiceError {
    fn from(e: crate::directory::FollowError) -> Self {
        ServiceError::Directory(Box::new(e))
    }
}

/// Runs a service: its identity from `header`, then `work` made of it and of
/// the service's metrics, with the admin port open from before the work starts
/// until it ends, however it ends. When the hub pins governors, the directory
/// topic is read to its end before the work starts and followed while it runs.
pub async fn serve<E, W>(header: &ServiceHeader, shutdown: &CancellationToken, work: impl FnOnce(Identity, Metrics) -> W) -> Result<(), E>
where
    E: From<ServiceError>,
    W: Future<Output = Result<(), E>>,
{
    let identity = header.identity()?;
    let metrics = Metrics::new();
    // The directory first: the admin port says ready only once the work can start with it.
    let state = (!header.database.as_os_str().is_empty()).then(|| crate::directory::LocalState::beside(&header.database));
    let status = crate::directory::Status::default();
    let follower = crate::directory::follow(&identity, &metrics, shutdown, state, &status).await.map_err(ServiceError::from)?;
    let admin = crate::admin::start(&header.admin_listen, &identity, metrics.clone(), shutdown.clone(), status)
        .await
        .map_err(ServiceError::from)?;
    let result = work(identity, metrics).await;
    shutdown.cancel();
    for task in admin.into_iter().chain(follower) {
        task.await.ok();
    }
    result
}

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

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(flatten)]
        service: ServiceHeader,
        poll_ms: u64,
    }

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Sample, String> {
        let dir = std::env::temp_dir().join(format!("concord-header-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sample.toml");
        std::fs::write(&path, text).unwrap();
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        crate::config::load_layered(&path, "X", &[("admin_listen", "127.0.0.1:9999"), ("agency", "audit-hub")], vars)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_header_is_flattened_defaulted_per_service_and_unknown_keys_still_fail() {
        let s = load("database = \"log.sqlite\"\npoll_ms = 5\n", &[]).unwrap();
        assert_eq!(s.service.agency, "audit-hub");
        assert_eq!(s.service.admin_listen, "127.0.0.1:9999");
        assert_eq!(s.service.hub, PathBuf::from("config/concord.toml"));
        assert_eq!((s.service.database, s.poll_ms, s.service.topic_suffix), (PathBuf::from("log.sqlite"), 5, None));
        let s = load("agency = \"a\"\ndatabase = \"d\"\nadmin_listen = \"\"\npoll_ms = 1\n", &[("X__TOPIC_SUFFIX", "t1")]).unwrap();
        assert_eq!((s.service.agency.as_str(), s.service.admin_listen.as_str(), s.service.topic_suffix.as_deref()), ("a", "", Some("t1")));
        let err = load("database = \"d\"\npoll_ms = 1\nbogus = 2\n", &[]).unwrap_err();
        assert!(err.contains("unknown field `bogus`"), "{err}");
        let err = load("poll_ms = 1\n", &[]).unwrap_err();
        assert!(err.contains("missing field `database`"), "{err}");
    }

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
