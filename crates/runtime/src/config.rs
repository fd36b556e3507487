//! Layered, typed configuration: built-in defaults < `config/<name>.toml` <
//! `CONCORD__KEY` (or `CONCORD__SECTION__KEY`) environment variables. Unknown
//! keys are errors; errors name the file and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use concord_domain::{Directory, TopicModel};
use concord_protocol::governance::Governors;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: {source}")]
    Toml {
        /// Which file.
        path: PathBuf,
        /// What the parser said (line and column).
        #[source]
        source: toml::de::Error,
    },
    /// The merged configuration does not fit the expected shape.
    #[error("{origin}: {message}")]
    Shape {
        /// The file plus which environment variables were applied.
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// Values that parse but make no sense together; all of them.
    #[error("{origin}: {}", problems.join("; "))]
    Invalid {
        /// The file.
        origin: String,
        /// Each problem.
        problems: Vec<String>,
    },
    /// The directory file is invalid.
    #[error(transparent)]
    Directory(#[from] concord_domain::DirectoryError),
    /// The topics file is invalid.
    #[error(transparent)]
    Topics(#[from] concord_domain::TopicsError),
}

/// Loads `path` (if it exists) with `prefix__…` environment overrides on top, into `T`.
/// `T`'s serde defaults are the built-in layer.
pub fn load<T: DeserializeOwned>(path: &Path, prefix: &str) -> Result<T, ConfigError> {
    load_from(path, prefix, std::env::vars())
}

/// [`load`] with `defaults` (top-level key, string value) as the lowest layer:
/// the keys of a shared header whose default differs by service.
pub fn load_with<T: DeserializeOwned>(path: &Path, prefix: &str, defaults: &[(&str, &str)]) -> Result<T, ConfigError> {
    load_layered(path, prefix, defaults, std::env::vars())
}

/// [`load`] with explicit environment variables (for tests).
pub fn load_from<T: DeserializeOwned>(
    path: &Path,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    load_layered(path, prefix, &[], vars)
}

pub(crate) fn load_layered<T: DeserializeOwned>(
    path: &Path,
    prefix: &str,
    defaults: &[(&str, &str)],
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut table = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        text.parse::<toml::Table>().map_err(|source| ConfigError::Toml { path: path.to_owned(), source })?
    } else {
        toml::Table::new()
    };
    for (key, value) in defaults {
        table.entry(key.to_string()).or_insert_with(|| toml::Value::String(value.to_string()));
    }
    let mut applied = Vec::new();
    let env_prefix = format!("{prefix}__");
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(&env_prefix) else { continue };
        let keys: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        set_path(&mut table, &keys, parse_env_value(&value));
        applied.push(name);
    }
    let origin = if applied.is_empty() { path.display().to_string() } else { format!("{} with {}", path.display(), applied.join(", ")) };
    T::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Shape { origin, message: e.to_string() })
}

fn parse_env_value(raw: &str) -> toml::Value {
    // Numbers, booleans and arrays are written as in TOML; anything else is a string.
    format!("v = {raw}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v")).unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    match keys {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

/// Where the hub is and what it trusts: shared by every Concord process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Brokers' agency listener (mutual TLS), `host:port,...`.
    #[serde(default = "default_bootstrap")]
    pub bootstrap_servers: String,
    /// Brokers' loopback admin listener, for topic administration by tools and tests.
    #[serde(default = "default_admin_bootstrap")]
    pub admin_bootstrap_servers: String,
    /// The registry's Confluent-compatible API.
    #[serde(default = "default_registry")]
    pub registry_url: String,
    /// Folder of the PKI: `ca.pem` and `agencies/<id>/{client.pem,client-key.pem,signing-key.pem}`.
    #[serde(default = "default_pki")]
    pub pki_dir: PathBuf,
    /// The complete agency directory, with public keys.
    #[serde(default = "default_directory")]
    pub directory: PathBuf,
    /// The topic model.
    #[serde(default = "default_topics")]
    pub topics: PathBuf,
    /// The pinned root of trust of directory versions (TOML: `threshold`,
    /// `[[keys]]` `id`, `public_key`). When set, every process follows the
    /// directory topic and applies each valid version live; when absent, the
    /// directory file is all it trusts.
    #[serde(default)]
    pub governors: Option<PathBuf>,
    /// Folder for local state (SQLite files).
    #[serde(default = "default_state")]
    pub state_dir: PathBuf,
    /// How long a signature stays valid for live consumers, in seconds.
    #[serde(default = "default_ttl")]
    pub signature_ttl_secs: u64,
    /// Largest record (key + value + headers) a consumer accepts, in bytes.
    #[serde(default = "default_max_record")]
    pub max_record_bytes: usize,
    /// Extra librdkafka options for every client.
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

fn default_bootstrap() -> String {
    "localhost:19093".into()
}
fn default_admin_bootstrap() -> String {
    "127.0.0.1:19092".into()
}
fn default_registry() -> String {
    "http://127.0.0.1:18081/apis/ccompat/v7".into()
}
fn default_pki() -> PathBuf {
    ".pki".into()
}
fn default_directory() -> PathBuf {
    ".pki/agencies.toml".into()
}
fn default_topics() -> PathBuf {
    "config/topics.toml".into()
}
fn default_state() -> PathBuf {
    ".state".into()
}
fn default_ttl() -> u64 {
    7 * 24 * 3600
}
fn default_max_record() -> usize {
    256 * 1024
}

impl HubConfig {
    /// Loads `path` with `CONCORD__…` overrides and checks it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config: HubConfig = load(path, "CONCORD")?;
        config.validate(&path.display().to_string())?;
        Ok(config)
    }

    /// Every problem at once.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !self.registry_url.starts_with("http://") && !self.registry_url.starts_with("https://") {
            problems.push(format!("registry_url {:?} must be an http(s) URL", self.registry_url));
        }
        if self.signature_ttl_secs < 60 {
            problems.push(format!("signature_ttl_secs {} is below the 60 s minimum", self.signature_ttl_secs));
        }
        if self.max_record_bytes < 1024 {
            problems.push(format!("max_record_bytes {} is below 1024", self.max_record_bytes));
        }
        let governors = self.governors.iter().map(|p| ("governors", p));
        for (field, path) in [("directory", &self.directory), ("topics", &self.topics)].into_iter().chain(governors) {
            if !path.exists() {
                problems.push(format!("{field}: {} does not exist (run `make up` to create the dev PKI and directory)", path.display()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { origin: origin.to_owned(), problems })
        }
    }

    /// The signature lifetime.
    pub fn signature_ttl(&self) -> Duration {
        Duration::from_secs(self.signature_ttl_secs)
    }

    /// Reads the agency directory.
    pub fn load_directory(&self) -> Result<Arc<Directory>, ConfigError> {
        let text = read(&self.directory)?;
        Ok(Arc::new(Directory::from_toml_str(&text, &self.directory.display().to_string())?))
    }

    /// Reads the pinned governors, if configured.
    pub fn load_governors(&self) -> Result<Option<Governors>, ConfigError> {
        let Some(path) = &self.governors else { return Ok(None) };
        let text = read(path)?;
        toml::from_str(&text).map(Some).map_err(|source| ConfigError::Toml { path: path.clone(), source })
    }

    /// Reads the topic model.
    pub fn load_topics(&self) -> Result<Arc<TopicModel>, ConfigError> {
        let text = read(&self.topics)?;
        Ok(Arc::new(TopicModel::from_toml_str(&text, &self.topics.display().to_string())?))
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        #[serde(default)]
        port: u16,
        kafka: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        linger_ms: u32,
    }

    fn file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("concord-config-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn environment_overrides_the_file() {
        let path = file("env", "name = \"a\"\nport = 1\n[kafka]\nlinger_ms = 5\n");
        let vars = [("X__PORT".to_owned(), "2".to_owned()), ("X__KAFKA__LINGER_MS".to_owned(), "7".to_owned())];
        let s: Sample = load_from(&path, "X", vars).unwrap();
        assert_eq!((s.name.as_str(), s.port, s.kafka.linger_ms), ("a", 2, 7));
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let path = file("unknown", "name = \"a\"\nprot = 1\n[kafka]\nlinger_ms = 5\n");
        let err = load_from::<Sample>(&path, "X", []).unwrap_err().to_string();
        assert!(err.contains("prot") && err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn wrong_types_name_the_variable() {
        let path = file("types", "name = \"a\"\n[kafka]\nlinger_ms = 5\n");
        let err = load_from::<Sample>(&path, "X", [("X__PORT".to_owned(), "lots".to_owned())]).unwrap_err().to_string();
        assert!(err.contains("X__PORT") && err.contains("port"), "{err}");
    }
}
