//! Client settings: typed fields for what Concord relies on, one
//! `librdkafka_options` map for the rest, translated in exactly one function.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use serde::Deserialize;

/// Why settings could not become a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An extra option would override one Concord sets itself.
    #[error("librdkafka_options.{key} conflicts with a setting Concord manages ({why}); remove it")]
    Conflict {
        /// The option.
        key: String,
        /// Which setting owns it.
        why: &'static str,
    },
    /// A TLS file does not exist.
    #[error("kafka.tls.{field}: file {path} does not exist")]
    MissingFile {
        /// The field.
        field: &'static str,
        /// The path given.
        path: PathBuf,
    },
}

/// The client's TLS material, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate(s) the broker's certificate must chain to.
    pub ca: PathBuf,
    /// This agency's client certificate (its CN is the agency id).
    pub certificate: PathBuf,
    /// The certificate's private key (PKCS#8).
    pub key: PathBuf,
}

/// How to reach the brokers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` of the brokers' agency (mutual TLS) listener.
    pub bootstrap_servers: String,
    /// Mutual TLS material; absent only for the loopback admin listener.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Any other librdkafka option, passed through as is.
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// The client configuration: typed settings, then `managed` (the caller's
    /// purpose-specific options), then the free-form options, which may not
    /// touch anything set before them.
    pub fn client_config(&self, managed: &[(&str, &str)]) -> Result<ClientConfig, SettingsError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        let mut owned: Vec<(&str, &'static str)> = vec![("bootstrap.servers", "bootstrap_servers")];
        if let Some(tls) = &self.tls {
            for (field, path) in [("ca", &tls.ca), ("certificate", &tls.certificate), ("key", &tls.key)] {
                if !path.exists() {
                    return Err(SettingsError::MissingFile { field, path: path.clone() });
                }
            }
            config
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", tls.ca.display().to_string())
                .set("ssl.certificate.location", tls.certificate.display().to_string())
                .set("ssl.key.location", tls.key.display().to_string())
                .set("ssl.endpoint.identification.algorithm", "https");
            for key in ["security.protocol", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location"] {
                owned.push((key, "kafka.tls"));
            }
        }
        for (key, value) in managed {
            config.set(*key, *value);
            owned.push((key, "the component's delivery guarantee"));
        }
        for (key, value) in &self.librdkafka_options {
            if let Some((_, why)) = owned.iter().find(|(k, _)| k == key) {
                return Err(SettingsError::Conflict { key: key.clone(), why });
            }
            config.set(key, value);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_options_may_not_override_managed_ones() {
        let mut settings = KafkaSettings {
            bootstrap_servers: "localhost:9093".into(),
            tls: None,
            librdkafka_options: BTreeMap::from([("linger.ms".into(), "5".into())]),
        };
        let config = settings.client_config(&[("enable.auto.offset.store", "false")]).unwrap();
        assert_eq!(config.get("linger.ms"), Some("5"));
        settings.librdkafka_options.insert("enable.auto.offset.store".into(), "true".into());
        let err = settings.client_config(&[("enable.auto.offset.store", "false")]).unwrap_err();
        assert!(err.to_string().contains("librdkafka_options.enable.auto.offset.store"), "{err}");
    }

    #[test]
    fn missing_tls_files_are_named() {
        let settings = KafkaSettings {
            bootstrap_servers: "localhost:9093".into(),
            tls: Some(TlsFiles { ca: "/nonexistent/ca.pem".into(), certificate: "c".into(), key: "k".into() }),
            librdkafka_options: BTreeMap::new(),
        };
        let err = settings.client_config(&[]).unwrap_err().to_string();
        assert!(err.contains("kafka.tls.ca") && err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
