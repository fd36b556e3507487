//! The topic model (`config/topics.toml`): which topics exist, who reads them,
//! who may publish which message type to them. The same model yields the
//! broker's ACLs (`concord topics plan`) and every consumer's role check, so
//! access is enforced twice from one source.

use std::fmt;

use serde::Deserialize;

use crate::{tlp_name, Agency, AgencyId, Directory, IndicatorAlert, MessageType, Role};

/// Why a topic model was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The text is not TOML of the expected shape.
    #[error("{origin}: {source}")]
    Parse {
        /// The file it came from.
        origin: String,
        /// What the TOML parser said.
        #[source]
        source: toml::de::Error,
    },
    /// The TOML parsed but is inconsistent.
    #[error("{origin}: {}", problems.join("; "))]
    Invalid {
        /// The file it came from.
        origin: String,
        /// Each problem.
        problems: Vec<String>,
    },
}

/// What a topic is for; the code finds topics by kind, the config names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicKind {
    /// Broadcast alerts.
    Alerts,
    /// One per agency (`{agency}` in the name): messages addressed to it.
    Inbox,
    /// One per agency (`{agency}` in the name): alerts for named recipients
    /// only (TLP AMBER+STRICT and RED), one copy per recipient.
    Restricted,
    /// Records a consumer rejected, with the reason.
    DeadLetter,
    /// The auditor's signed log checkpoints.
    Checkpoints,
    /// Threshold-signed versions of the agency directory (docs/protocol.md §12),
    /// written by the hub operator, read by every process.
    Directory,
}

impl TopicKind {
    /// Inboxes and restricted-alert topics exist once per agency, readable by their owner.
    pub fn per_agency(self) -> bool {
        matches!(self, TopicKind::Inbox | TopicKind::Restricted)
    }
}

/// Whether ACLs match topic names exactly or by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternType {
    /// Exactly the topic name: production.
    Literal,
    /// Every topic whose name starts with it: lets a test run use isolated
    /// copies `<topic>.<run-id>` under the same rights.
    Prefixed,
}

/// Which Kafka resource an ACL is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// A transactional id.
    TransactionalId,
}

/// What an ACL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclOperation {
    /// Consume (implies describe).
    Read,
    /// Produce (implies describe).
    Write,
}

/// One allow rule for the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBinding {
    /// The agency, as principal `User:<id>`.
    pub agency: AgencyId,
    /// What kind of resource.
    pub resource: ResourceType,
    /// Exact or prefix match.
    pub pattern: PatternType,
    /// The resource name or prefix.
    pub name: String,
    /// What is allowed.
    pub operation: AclOperation,
}

impl fmt::Display for AclBinding {
    /// The plan line `scripts/stack/KafkaSetup.java` reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource = match self.resource {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        };
        let pattern = match self.pattern {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        };
        let op = match self.operation {
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
        };
        write!(f, "acl User:{} {resource} {pattern} {} {op}", self.agency, self.name)
    }
}

/// Who may publish one message type to a topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRule {
    /// The message type.
    #[serde(rename = "type")]
    pub message_type: MessageType,
    /// Roles that may send it.
    pub senders: Vec<Role>,
    /// For inbox topics: roles of the inbox owners it may be sent to.
    #[serde(default)]
    pub recipients: Vec<Role>,
}

/// One topic, or for inboxes one topic per agency.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// The name; inboxes contain `{agency}`.
    pub name: String,
    /// What it is for.
    pub kind: TopicKind,
    /// Roles that may read it (an inbox's owner always may).
    #[serde(default)]
    pub readers: Vec<Role>,
    /// Roles that may write records that are not Concord events (DLQ, checkpoints).
    #[serde(default)]
    pub writers: Vec<Role>,
    /// Which signed message types may be published here, by whom.
    #[serde(default)]
    pub publish: Vec<PublishRule>,
    /// Partitions; the settings' default if absent.
    #[serde(default)]
    pub partitions: Option<u32>,
    /// `retention.ms`; -1 keeps records for ever (evidence).
    #[serde(default = "keep_forever")]
    pub retention_ms: i64,
    /// `cleanup.policy=compact`: the latest record per key is kept.
    #[serde(default)]
    pub compacted: bool,
}

fn keep_forever() -> i64 {
    -1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The version of this model that directory versions name (`topic_model`).
    #[serde(default = "first_model")]
    model_version: u32,
    partitions: u32,
    replication_factor: u16,
    min_insync_replicas: u16,
    acl_pattern: PatternType,
}

fn first_model() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    settings: Settings,
    #[serde(rename = "topic")]
    topics: Vec<TopicSpec>,
}

/// A concrete topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcreteTopic {
    /// Its full name.
    pub name: String,
    /// Partitions.
    pub partitions: u32,
    /// Replication factor.
    pub replication_factor: u16,
    /// Topic configs (`min.insync.replicas`, `retention.ms`).
    pub configs: Vec<(String, String)>,
}

/// The validated topic model, optionally with a run suffix appended to every name.
#[derive(Debug, Clone)]
pub struct TopicModel {
    settings: Settings,
    specs: Vec<TopicSpec>,
    suffix: Option<String>,
}

impl TopicModel {
    /// Parses and checks `topics.toml`; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, TopicsError> {
        let file: TopicsFile = toml::from_str(text).map_err(|source| TopicsError::Parse { origin: origin.to_owned(), source })?;
        let mut problems = Vec::new();
        for kind in [
            TopicKind::Alerts,
            TopicKind::Inbox,
            TopicKind::Restricted,
            TopicKind::DeadLetter,
            TopicKind::Checkpoints,
            TopicKind::Directory,
        ] {
            let n = file.topics.iter().filter(|t| t.kind == kind).count();
            if n != 1 {
                problems.push(format!("exactly one topic of kind {kind:?} is needed, found {n}"));
            }
        }
        for t in &file.topics {
            let templated = t.name.contains("{agency}");
            if templated != t.kind.per_agency() {
                problems
                    .push(format!("topic {:?}: only the per-agency topics (inbox, restricted), and always they, name {{agency}}", t.name));
            }
            for rule in &t.publish {
                if t.kind.per_agency() && rule.recipients.is_empty() {
                    problems.push(format!("topic {:?}: the rule for {} names no recipients", t.name, rule.message_type.short_name()));
                }
            }
        }
        if file.settings.replication_factor == 0 || file.settings.min_insync_replicas > file.settings.replication_factor {
            problems.push("settings: need 1 <= min_insync_replicas <= replication_factor".into());
        }
        if !problems.is_empty() {
            return Err(TopicsError::Invalid { origin: origin.to_owned(), problems });
        }
        Ok(TopicModel { settings: file.settings, specs: file.topics, suffix: None })
    }

    /// The same model with `.<suffix>` appended to every topic name: an
    /// isolated copy of Concord's topics for one test or benchmark run.
    pub fn with_suffix(&self, suffix: &str) -> TopicModel {
        TopicModel { suffix: Some(suffix.to_owned()), ..self.clone() }
    }

    /// The model's version (`[settings] model_version`, default 1): what a
    /// directory version's `topic_model` must name (docs/protocol.md §12).
    pub fn model_version(&self) -> u32 {
        self.settings.model_version
    }

    /// The suffix of an isolated copy, if this is one.
    pub fn suffix(&self) -> Option<&str> {
        self.suffix.as_deref()
    }

    fn spec(&self, kind: TopicKind) -> &TopicSpec {
        self.specs.iter().find(|t| t.kind == kind).expect("checked at load: one topic of each kind")
    }

    fn full(&self, name: String) -> String {
        match &self.suffix {
            Some(s) => format!("{name}.{s}"),
            None => name,
        }
    }

    /// The alerts topic.
    pub fn alerts(&self) -> String {
        self.full(self.spec(TopicKind::Alerts).name.clone())
    }

    /// An agency's inbox topic.
    pub fn inbox(&self, agency: &AgencyId) -> String {
        self.full(self.spec(TopicKind::Inbox).name.replace("{agency}", agency.as_str()))
    }

    /// An agency's topic of alerts for named recipients (AMBER+STRICT, RED).
    pub fn restricted(&self, agency: &AgencyId) -> String {
        self.full(self.spec(TopicKind::Restricted).name.replace("{agency}", agency.as_str()))
    }

    /// The dead-letter topic.
    pub fn dead_letter(&self) -> String {
        self.full(self.spec(TopicKind::DeadLetter).name.clone())
    }

    /// The checkpoints topic.
    pub fn checkpoints(&self) -> String {
        self.full(self.spec(TopicKind::Checkpoints).name.clone())
    }

    /// The topic of directory versions.
    pub fn directory(&self) -> String {
        self.full(self.spec(TopicKind::Directory).name.clone())
    }

    /// Every concrete topic with its spec and, for an inbox, its owner.
    fn concrete<'a>(&'a self, directory: &'a Directory) -> Vec<(String, &'a TopicSpec, Option<&'a Agency>)> {
        let mut out = Vec::new();
        for spec in &self.specs {
            if spec.kind.per_agency() {
                for agency in directory.agencies() {
                    out.push((self.full(spec.name.replace("{agency}", agency.id.as_str())), spec, Some(agency)));
                }
            } else {
                out.push((self.full(spec.name.clone()), spec, None));
            }
        }
        out
    }

    /// The topics to create for this directory.
    pub fn topics(&self, directory: &Directory) -> Vec<ConcreteTopic> {
        self.concrete(directory)
            .into_iter()
            .map(|(name, spec, _)| {
                let mut configs = vec![
                    ("min.insync.replicas".into(), self.settings.min_insync_replicas.to_string()),
                    ("retention.ms".into(), spec.retention_ms.to_string()),
                    // The broker stamps each record: the audit log orders by this time,
                    // so it must not be the sender's clock.
                    ("message.timestamp.type".into(), "LogAppendTime".into()),
                ];
                if spec.compacted {
                    configs.push(("cleanup.policy".into(), "compact".into()));
                }
                ConcreteTopic {
                    name,
                    partitions: spec.partitions.unwrap_or(self.settings.partitions),
                    replication_factor: self.settings.replication_factor,
                    configs,
                }
            })
            .collect()
    }

    /// Whether `alert` may travel on `topic`: an AMBER+STRICT or RED alert is
    /// for named recipients only, so it goes to their restricted-alert topics
    /// (each copy signed for its own topic) and never to the broadcast topic,
    /// which every reader of alerts receives. `Err` says why not.
    pub fn alert_placement(&self, topic: &str, alert: &IndicatorAlert) -> Result<(), String> {
        if alert.tlp.is_restricted() && topic == self.alerts() {
            return Err(format!(
                "a TLP:{} alert on the broadcast topic {topic}: it goes to its recipients' restricted-alert topics only",
                tlp_name(alert.tlp)
            ));
        }
        Ok(())
    }

    /// The topics an alert for `recipients` goes to: the broadcast topic when
    /// there are none, else each recipient's restricted-alert topic.
    pub fn alert_destinations(&self, recipients: &[AgencyId]) -> Vec<String> {
        if recipients.is_empty() {
            vec![self.alerts()]
        } else {
            recipients.iter().map(|r| self.restricted(r)).collect()
        }
    }

    /// Whether `sender` may publish a `message_type` event to `topic`; `Err` says why not.
    pub fn may_publish(&self, topic: &str, sender: &Agency, message_type: MessageType, directory: &Directory) -> Result<(), String> {
        let Some((_, spec, owner)) = self.concrete(directory).into_iter().find(|(name, _, _)| name == topic) else {
            return Err(format!("{topic} is not a Concord topic"));
        };
        let rule = spec.publish.iter().find(|r| r.message_type == message_type && r.senders.contains(&sender.role));
        match (rule, owner) {
            (None, _) => Err(format!("role {} may not publish {} to {topic}", sender.role, message_type.short_name())),
            (Some(rule), Some(owner)) if !rule.recipients.contains(&owner.role) => {
                Err(format!("{} may not be sent to the inbox of {} (role {})", message_type.short_name(), owner.id, owner.role))
            }
            (Some(_), _) => Ok(()),
        }
    }

    /// Whether `reader` may read `topic` (the owner of a per-agency topic, or
    /// a role among the topic's readers): the same rule as the broker's read
    /// ACLs. `Err` says why not.
    pub fn may_read(&self, topic: &str, reader: &Agency, directory: &Directory) -> Result<(), String> {
        let Some((_, spec, owner)) = self.concrete(directory).into_iter().find(|(name, _, _)| name == topic) else {
            return Err(format!("{topic} is not a Concord topic"));
        };
        if owner.is_some_and(|o| o.id == reader.id) || spec.readers.contains(&reader.role) {
            Ok(())
        } else {
            Err(format!("{} (role {}) may not read {topic}", reader.id, reader.role))
        }
    }

    /// The broker ACLs that give each agency exactly the rights its role has.
    pub fn acls(&self, directory: &Directory) -> Vec<AclBinding> {
        let mut acls = Vec::new();
        let topics = self.concrete(directory);
        for agency in directory.agencies() {
            let mut allow = |resource, pattern, name: String, operation| {
                acls.push(AclBinding { agency: agency.id.clone(), resource, pattern, name, operation });
            };
            for (name, spec, owner) in &topics {
                let is_owner = owner.is_some_and(|o| o.id == agency.id);
                if is_owner || spec.readers.contains(&agency.role) {
                    allow(ResourceType::Topic, self.settings.acl_pattern, name.clone(), AclOperation::Read);
                }
                let may_send =
                    spec.publish.iter().any(|r| r.senders.contains(&agency.role) && owner.is_none_or(|o| r.recipients.contains(&o.role)));
                if may_send || spec.writers.contains(&agency.role) {
                    allow(ResourceType::Topic, self.settings.acl_pattern, name.clone(), AclOperation::Write);
                }
            }
            let own_prefix = format!("concord.{}.", agency.id);
            allow(ResourceType::Group, PatternType::Prefixed, own_prefix.clone(), AclOperation::Read);
            allow(ResourceType::TransactionalId, PatternType::Prefixed, own_prefix, AclOperation::Write);
        }
        acls
    }

    /// The plan `scripts/stack/KafkaSetup.java` applies: topic lines, then ACL lines.
    pub fn plan(&self, directory: &Directory) -> String {
        let mut out = String::from("# generated by `concord topics plan`\n");
        for t in self.topics(directory) {
            let configs: Vec<String> = t.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out += &format!("topic {} {} {} {}\n", t.name, t.partitions, t.replication_factor, configs.join(" "));
        }
        for acl in self.acls(directory) {
            out += &format!("{acl}\n");
        }
        out
    }

    /// The plan of one directory version, to be synchronised with the broker
    /// (`concord directory acls`, applied by `scripts/stack.sh acls`): the
    /// [`TopicModel::plan`] of `directory`, and a `sync User:<id>` line per
    /// agency in `managed` — every ACL of those principals that the plan does
    /// not list is removed, so an agency left out of the version (offboarded)
    /// loses its access. Principals not named are left alone.
    pub fn sync_plan<'a>(&self, directory: &Directory, managed: impl IntoIterator<Item = &'a str>) -> String {
        let mut out = self.plan(directory);
        let managed: std::collections::BTreeSet<&str> = managed.into_iter().collect();
        for agency in managed {
            out += &format!("sync User:{agency}\n");
        }
        out
    }
}

/// The consumer group an agency uses for one purpose: inside its ACL prefix.
pub fn group_id(agency: &AgencyId, purpose: &str) -> String {
    format!("concord.{agency}.{purpose}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPICS: &str = include_str!("../../../config/topics.toml");

    fn directory() -> Directory {
        let agency = |id: &str, role| Agency { id: id.parse().unwrap(), name: id.into(), role, country: "XX".into(), keys: vec![] };
        Directory::new(vec![
            agency("committee-ph", Role::Committee),
            agency("enforcement-us", Role::Enforcement),
            agency("issuer-usdx", Role::Issuer),
            agency("exchange-global", Role::Exchange),
            agency("audit-hub", Role::Audit),
        ])
        .unwrap()
    }

    fn has(acls: &[AclBinding], agency: &str, topic: &str, op: AclOperation) -> bool {
        acls.iter().any(|a| a.agency.as_str() == agency && a.name == topic && a.operation == op)
    }

    #[test]
    fn acls_follow_roles() {
        let model = TopicModel::from_toml_str(TOPICS, "topics.toml").unwrap();
        let dir = directory();
        let acls = model.acls(&dir);
        let inbox = |a: &str| model.inbox(&a.parse().unwrap());
        // Only the owner and the auditor read an inbox.
        assert!(has(&acls, "issuer-usdx", &inbox("issuer-usdx"), AclOperation::Read));
        assert!(has(&acls, "audit-hub", &inbox("issuer-usdx"), AclOperation::Read));
        assert!(!has(&acls, "exchange-global", &inbox("issuer-usdx"), AclOperation::Read));
        // Law enforcement sends requests to holders; holders confirm back.
        assert!(has(&acls, "enforcement-us", &inbox("issuer-usdx"), AclOperation::Write));
        assert!(has(&acls, "issuer-usdx", &inbox("enforcement-us"), AclOperation::Write));
        assert!(!has(&acls, "issuer-usdx", &inbox("exchange-global"), AclOperation::Write));
        // The auditor publishes no alerts; everyone writes rejects to the DLQ, only the auditor reads it.
        assert!(!has(&acls, "audit-hub", &model.alerts(), AclOperation::Write));
        assert!(has(&acls, "committee-ph", &model.dead_letter(), AclOperation::Write));
        assert!(!has(&acls, "committee-ph", &model.dead_letter(), AclOperation::Read));
        assert!(has(&acls, "audit-hub", &model.dead_letter(), AclOperation::Read));
        // The auditor reads everything and writes nothing but checkpoints.
        let audit_writes: Vec<&str> = acls
            .iter()
            .filter(|a| a.agency.as_str() == "audit-hub" && a.resource == ResourceType::Topic && a.operation == AclOperation::Write)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(audit_writes, vec![model.checkpoints().as_str()]);
    }

    #[test]
    fn publish_policy_matches_the_acls() {
        let model = TopicModel::from_toml_str(TOPICS, "topics.toml").unwrap().with_suffix("run1");
        let dir = directory();
        let a = |id: &str| dir.agency(id).unwrap();
        let issuer_inbox = model.inbox(&"issuer-usdx".parse().unwrap());
        assert!(issuer_inbox.ends_with(".run1"));
        assert!(model.may_publish(&issuer_inbox, a("enforcement-us"), MessageType::FreezeRequest, &dir).is_ok());
        assert!(model.may_publish(&issuer_inbox, a("committee-ph"), MessageType::FreezeRequest, &dir).is_err());
        assert!(model.may_publish(&issuer_inbox, a("enforcement-us"), MessageType::IndicatorAlert, &dir).is_err());
        assert!(model.may_publish(&model.alerts(), a("exchange-global"), MessageType::IndicatorAlert, &dir).is_ok());
        assert!(model.may_publish(&model.alerts(), a("audit-hub"), MessageType::IndicatorAlert, &dir).is_err());
        assert!(model.may_publish("elsewhere", a("committee-ph"), MessageType::IndicatorAlert, &dir).is_err());
    }

    /// Read rights as a consumer checks them are the broker's read ACLs.
    #[test]
    fn read_rights_match_the_acls() {
        let model = TopicModel::from_toml_str(TOPICS, "topics.toml").unwrap();
        let dir = directory();
        let acls = model.acls(&dir);
        for topic in model.topics(&dir) {
            for agency in dir.agencies() {
                let acl = has(&acls, agency.id.as_str(), &topic.name, AclOperation::Read);
                assert_eq!(model.may_read(&topic.name, agency, &dir).is_ok(), acl, "{} reading {}", agency.id, topic.name);
            }
        }
        let exchange = dir.agency("exchange-global").unwrap();
        let refused = model.may_read(&model.inbox(&"issuer-usdx".parse().unwrap()), exchange, &dir).unwrap_err();
        assert!(refused.contains("may not read"), "{refused}");
        assert!(model.may_read("elsewhere", exchange, &dir).is_err());
    }
}
