//! Service binaries under test as separate processes, killed with SIGKILL and
//! restarted as a supervisor would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One holder under test: its binary, config and log, and the running process.
pub struct Holder {
    binary: &'static str,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    env: Vec<(String, String)>,
    /// How many times it was killed.
    pub kills: u64,
    down_until: Option<Instant>,
}

impl Holder {
    /// Starts `binary` with `config`, its stderr appended to `log`.
    pub fn start(binary: &'static str, config: PathBuf, log: PathBuf) -> Holder {
        Self::start_with(binary, config, log, &[])
    }

    /// [`Holder::start`] with `env` set for it (and each restart), e.g. `CONCORD_FAILPOINTS`.
    pub fn start_with(binary: &'static str, config: PathBuf, log: PathBuf, env: &[(&str, &str)]) -> Holder {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let child = Self::spawn(binary, &config, &log, &env);
        Holder { binary, config, log, child: Some(child), env, kills: 0, down_until: None }
    }

    fn spawn(binary: &str, config: &Path, log: &Path, env: &[(String, String)]) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        Command::new(crate::binary(binary))
            .arg(config)
            .current_dir(crate::root())
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("the {binary} binary is built (make build): {e}"))
    }

    /// SIGKILL; it comes back after `down` (at once for zero).
    pub fn kill(&mut self, down: Duration) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
        self.kills += 1;
        self.down_until = Some(Instant::now() + down);
        self.keep_running();
    }

    /// Sets `key` in its environment from its next start on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Whether it is running now (not killed and not exited by itself).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts it when its down time is over, or if it stopped by itself (it
    /// stops on a broker error inside a transaction).
    pub fn keep_running(&mut self) {
        if self.down_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let exited = match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => true,
        };
        if exited {
            self.child = Some(Self::spawn(self.binary, &self.config, &self.log, &self.env));
        }
    }

    /// Stops it for good (SIGKILL) and returns the end of its log.
    pub fn stop(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log[log.len().saturating_sub(2000)..].to_owned()
    }
}

impl Drop for Holder {
    /// A test that fails midway leaves no service running on the shared stack.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// Law enforcement's producer, made afresh when a delivery fails (a
/// producer can stay wedged after the broker it spoke to restarted).
pub struct Patient {
    identity: concord_runtime::identity::Identity,
    producer: concord_kafka::SignedProducer,
}

impl Patient {
    /// A producer for `identity`.
    pub fn new(identity: concord_runtime::identity::Identity) -> Self {
        let producer = concord_kafka::SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone()).unwrap();
        Patient { identity, producer }
    }

    /// Publishes `request` keyed by its id, with up to five producers.
    pub async fn publish(&mut self, inbox: &str, request: &concord_domain::FreezeRequest) {
        for attempt in 1..=5 {
            match self.producer.publish(inbox, request.request_id.as_bytes(), &crate::valid(request.clone())).await {
                Ok(_) => return,
                Err(e) => {
                    println!("publish of {} failed (attempt {attempt}): {e}; again with a fresh producer", request.request_id);
                    *self = Patient::new(self.identity.clone());
                }
            }
        }
        panic!("publish of {} failed five times", request.request_id);
    }
}
