//! Topic administration over the admin listener: used by tests and benchmarks
//! to make isolated copies of Concord's topics, and to remove them afterwards.

use std::time::Duration;

use concord_domain::ConcreteTopic;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::KafkaSettings;

/// Why topics could not be created or deleted.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin client could not be made.
    #[error("admin client for {bootstrap}: {source}")]
    Client {
        /// Where it tried to connect.
        bootstrap: String,
        /// What rdkafka said.
        #[source]
        source: KafkaError,
    },
    /// The broker refused.
    #[error("topic {topic}: {code}")]
    Topic {
        /// Which topic.
        topic: String,
        /// The broker's error.
        code: RDKafkaErrorCode,
    },
    /// The request failed as a whole.
    #[error("admin request failed: {0}")]
    Request(#[source] KafkaError),
}

fn client(settings: &KafkaSettings) -> Result<AdminClient<DefaultClientContext>, AdminError> {
    settings
        .client_config(&[])
        .map_err(|e| AdminError::Request(KafkaError::ClientCreation(e.to_string())))?
        .create()
        .map_err(|source| AdminError::Client { bootstrap: settings.bootstrap_servers.clone(), source })
}

/// Creates the topics; those that exist already are left alone.
pub async fn create_topics(settings: &KafkaSettings, topics: &[ConcreteTopic]) -> Result<(), AdminError> {
    let admin = client(settings)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            t.configs.iter().fold(
                NewTopic::new(&t.name, t.partitions as i32, TopicReplication::Fixed(i32::from(t.replication_factor))),
                |nt, (k, v)| nt.set(k, v),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &options).await.map_err(AdminError::Request)? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(AdminError::Topic { topic, code }),
        }
    }
    Ok(())
}

/// Deletes the topics; missing ones are ignored.
pub async fn delete_topics(settings: &KafkaSettings, names: &[String]) -> Result<(), AdminError> {
    let admin = client(settings)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.delete_topics(&names, &options).await.map_err(AdminError::Request)? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(AdminError::Topic { topic, code }),
        }
    }
    Ok(())
}
