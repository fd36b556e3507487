//! What one verified event does at the gateway: it is stored for the agencies
//! it is for (the owner of an inbox or of a restricted-alert topic; every
//! agency the alert's TLP allows for a broadcast alert), and waiting SSE
//! streams are woken. Only broadcast alerts become TAXII objects.

use concord_domain::{AgencyId, TopicModel};
use concord_kafka::{Handler, HandlerError};
use concord_protocol::{Payload, VerifiedEvent};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;

use crate::stix;
use crate::store::Store;

/// Stores each verified event once and announces the newest `seq`.
#[derive(Clone)]
pub struct Ingest {
    /// The store.
    pub store: Store,
    /// The per-agency topics (inbox, restricted alerts) of each agency served,
    /// to tell whose an event is.
    pub inboxes: Vec<(String, AgencyId)>,
    /// The newest `seq`, watched by SSE streams.
    pub latest: watch::Sender<i64>,
    /// Events stored.
    pub stored: Counter,
}

impl Ingest {
    /// The inbox and restricted-alert topics of `agencies` under `topics`.
    pub fn inboxes<'a>(topics: &TopicModel, agencies: impl Iterator<Item = &'a AgencyId>) -> Vec<(String, AgencyId)> {
        agencies.flat_map(|a| [(topics.inbox(a), a.clone()), (topics.restricted(a), a.clone())]).collect()
    }
}

impl Handler for Ingest {
    async fn handle(&self, event: VerifiedEvent, _redelivery: bool) -> Result<(), HandlerError> {
        let audience = self.inboxes.iter().find(|(topic, _)| *topic == event.topic).map(|(_, a)| a.as_str());
        let object_id = match &event.payload {
            Payload::IndicatorAlert(alert) if audience.is_none() => Some(stix::indicator_id(&alert.alert_id)),
            // A retraction is the alert's last version: TAXII serves it as the indicator revoked.
            Payload::AlertRetraction(r) if audience.is_none() => Some(stix::indicator_id(&r.alert_id)),
            _ => None,
        };
        // Inserting is idempotent per (topic, partition, offset): a redelivery stores nothing.
        match self.store.insert(&event, audience, object_id.as_deref()) {
            Ok(Some(seq)) => {
                self.stored.inc();
                self.latest.send_replace(seq);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(HandlerError::Transient(Box::new(e))),
        }
    }
}
