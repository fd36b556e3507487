//! Avro values in the Confluent wire format, through the schema registry.
//! Subjects use the record-name strategy (`concord.v1.FreezeRequest`) because
//! an inbox topic carries more than one message type.
//!
//! Schemas come from the registry in service, or from a fixed set of
//! (id, schema) pairs ([`AvroCodec::fixed`]) for offline verification: the
//! conformance kit, `concord verify`, and unit tests that need no registry.
//! Decoding is the same either way: the value must be exactly one Avro datum
//! of its writer schema, with no bytes after it (protocol §2).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::Schema;
use concord_domain::{
    AlertFeedback, AlertRetraction, FreezeRequest, IndicatorAlert, LogCheckpoint, Message, MessageType, TakedownConfirmation, Valid,
};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;

use crate::reason::{RejectReason, Rejection};
use crate::wire;

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value is bad for good: it goes to the dead-letter topic.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The registry could not be reached or failed; try again later.
    #[error("schema registry unavailable: {0}")]
    Unavailable(#[source] SRCError),
    /// The HTTP client for the registry could not be built.
    #[error("registry client: {0}")]
    Client(#[source] SRCError),
    /// Encoding failed: the message does not fit its registered schema, or the
    /// subject is not registered.
    #[error("encoding a {message_type} failed: {source}")]
    Encode {
        /// What was being encoded.
        message_type: MessageType,
        /// What the converter said.
        #[source]
        source: SRCError,
    },
    /// Encoding against a fixed schema set failed: no schema of the type, or the
    /// message does not fit it.
    #[error("encoding a {message_type} offline failed: {why}")]
    EncodeFixed {
        /// What was being encoded.
        message_type: MessageType,
        /// Why.
        why: String,
    },
}

/// A decoded message of any Concord type, as received: not yet checked
/// against its rules ([`Decoded::check`] makes a [`Payload`] of it).
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// An alert.
    IndicatorAlert(IndicatorAlert),
    /// A freeze request.
    FreezeRequest(FreezeRequest),
    /// A confirmation.
    TakedownConfirmation(TakedownConfirmation),
    /// An audit log checkpoint.
    LogCheckpoint(LogCheckpoint),
    /// A publisher's withdrawal of its alert.
    AlertRetraction(AlertRetraction),
    /// A recipient's feedback on an alert.
    AlertFeedback(AlertFeedback),
}

impl Decoded {
    /// The message as a valid payload, if it keeps its rules in the form
    /// publishers send ([`concord_domain::Rules::check`]).
    pub fn check(self) -> Result<Payload, concord_domain::Invalid> {
        use concord_domain::Rules;
        Ok(match self {
            Decoded::IndicatorAlert(m) => Payload::IndicatorAlert(m.check()?),
            Decoded::FreezeRequest(m) => Payload::FreezeRequest(m.check()?),
            Decoded::TakedownConfirmation(m) => Payload::TakedownConfirmation(m.check()?),
            Decoded::LogCheckpoint(m) => Payload::LogCheckpoint(m.check()?),
            Decoded::AlertRetraction(m) => Payload::AlertRetraction(m.check()?),
            Decoded::AlertFeedback(m) => Payload::AlertFeedback(m.check()?),
        })
    }
}

/// A verified event's message: valid by type ([`Valid`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// An alert.
    IndicatorAlert(Valid<IndicatorAlert>),
    /// A freeze request.
    FreezeRequest(Valid<FreezeRequest>),
    /// A confirmation.
    TakedownConfirmation(Valid<TakedownConfirmation>),
    /// An audit log checkpoint.
    LogCheckpoint(Valid<LogCheckpoint>),
    /// A publisher's withdrawal of its alert.
    AlertRetraction(Valid<AlertRetraction>),
    /// A recipient's feedback on an alert.
    AlertFeedback(Valid<AlertFeedback>),
}

impl Payload {
    /// Its message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Payload::IndicatorAlert(_) => MessageType::IndicatorAlert,
            Payload::FreezeRequest(_) => MessageType::FreezeRequest,
            Payload::TakedownConfirmation(_) => MessageType::TakedownConfirmation,
            Payload::LogCheckpoint(_) => MessageType::LogCheckpoint,
            Payload::AlertRetraction(_) => MessageType::AlertRetraction,
            Payload::AlertFeedback(_) => MessageType::AlertFeedback,
        }
    }
}

/// Encodes and decodes Concord messages against the registry (caching schemas)
/// or against a fixed set of schemas.
#[derive(Clone)]
pub struct AvroCodec {
    source: Source,
    /// Writer schemas resolved once per id (as schema_registry_converter
    /// caches them): a decode neither copies a schema tree nor resolves its names again.
    resolved: Arc<RwLock<HashMap<u32, Arc<Resolved>>>>,
}

/// A writer schema with its names resolved. The schema is leaked so that the
/// resolution can borrow it for the process's life, as
/// schema_registry_converter does: one per schema id the registry knows (an
/// unknown id fails before it gets here), so the total is bounded.
struct Resolved {
    schema: &'static Schema,
    names: ResolvedSchema<'static>,
}

impl Resolved {
    fn new(schema: Schema) -> Result<Self, String> {
        let schema: &'static Schema = Box::leak(Box::new(schema));
        Ok(Resolved { schema, names: ResolvedSchema::try_from(schema).map_err(|e| e.to_string())? })
    }
}

#[derive(Clone)]
enum Source {
    Registry { encoder: Arc<AvroEncoder>, decoder: Arc<AvroDecoder> },
    Fixed(Arc<BTreeMap<u32, Schema>>),
}

impl std::fmt::Debug for AvroCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroCodec").finish_non_exhaustive()
    }
}

impl AvroCodec {
    /// A codec for the registry's Confluent-compatible API at `url`
    /// (for Apicurio: `http://host:port/apis/ccompat/v7`).
    pub fn new(url: &str) -> Result<Self, CodecError> {
        let settings = registry_settings(url).map_err(CodecError::Client)?;
        let (encoder, decoder) = (Arc::new(AvroEncoder::new(settings.clone())), Arc::new(AvroDecoder::new(settings)));
        Ok(AvroCodec { source: Source::Registry { encoder, decoder }, resolved: Arc::default() })
    }

    /// A codec that knows exactly these schemas by id and talks to no registry.
    /// A producer using it writes the highest id of each type.
    pub fn fixed(schemas: impl IntoIterator<Item = (u32, Schema)>) -> Self {
        AvroCodec { source: Source::Fixed(Arc::new(schemas.into_iter().collect())), resolved: Arc::default() }
    }

    /// The framed value of a message, under the latest registered schema of its type.
    pub async fn encode<M: Message>(&self, message: &M) -> Result<Vec<u8>, CodecError> {
        match &self.source {
            Source::Registry { encoder, .. } => {
                let strategy = SubjectNameStrategy::RecordNameStrategy(M::TYPE.ce_type().to_owned());
                encoder.encode_struct(message, &strategy).await.map_err(|source| {
                    if source.retriable {
                        encoder.remove_errors_from_cache();
                        CodecError::Unavailable(source)
                    } else {
                        CodecError::Encode { message_type: M::TYPE, source }
                    }
                })
            }
            Source::Fixed(schemas) => {
                let fail = |why: String| CodecError::EncodeFixed { message_type: M::TYPE, why };
                let (id, schema) = schemas
                    .iter()
                    .rev()
                    .find(|(_, s)| schema_name(s) == M::TYPE.ce_type())
                    .ok_or_else(|| fail("no schema of this type in the set".into()))?;
                let datum = apache_avro::to_value(message).and_then(|v| v.resolve(schema)).map_err(|e| fail(e.to_string()))?;
                let avro = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
                    .build()
                    .and_then(|w| w.write_value_to_vec(datum))
                    .map_err(|e| fail(e.to_string()))?;
                Ok(wire::frame(*id, &avro))
            }
        }
    }

    async fn schema(&self, id: u32) -> Result<Arc<Resolved>, CodecError> {
        if let Some(known) = self.resolved.read().expect("schema cache lock").get(&id) {
            return Ok(Arc::clone(known));
        }
        let unknown = |why: String| CodecError::from(Rejection::new(RejectReason::UnknownSchema, format!("schema id {id}: {why}")));
        let schema = match &self.source {
            Source::Registry { decoder, .. } => match decoder.get_schema(id).await {
                Ok(schema) => schema.parsed.clone(),
                Err(e) if e.retriable => {
                    decoder.remove_errors_from_cache();
                    return Err(CodecError::Unavailable(e));
                }
                Err(e) => return Err(unknown(e.error)),
            },
            Source::Fixed(schemas) => schemas.get(&id).cloned().ok_or_else(|| unknown("not in the schema set".into()))?,
        };
        let resolved = Arc::new(Resolved::new(schema).map_err(unknown)?);
        Ok(Arc::clone(self.resolved.write().expect("schema cache lock").entry(id).or_insert(resolved)))
    }

    /// Decodes a framed value that claims to be `expected`. A permanent problem is a
    /// [`Rejection`]; an unreachable registry is [`CodecError::Unavailable`].
    pub async fn decode(&self, value: &[u8], expected: MessageType) -> Result<(u32, Decoded), CodecError> {
        let (schema_id, mut avro) = wire::split(value).map_err(|e| Rejection::new(RejectReason::NotWireFormat, e.to_string()))?;
        let resolved = self.schema(schema_id).await?;
        let schema = resolved.schema;
        let bad = |why: String| Rejection::new(RejectReason::BadAvro, format!("schema id {schema_id}: {why}"));
        let decoded = GenericDatumReader::builder(schema)
            .resolved_writer_schemata(resolved.names.clone())
            .build()
            .and_then(|r| r.read_value(&mut avro))
            .map_err(|e| bad(e.to_string()))?;
        if !avro.is_empty() {
            return Err(bad(format!("{} bytes follow the Avro datum", avro.len())).into());
        }
        let name = schema_name(schema);
        if name != expected.ce_type() {
            return Err(Rejection::new(
                RejectReason::TypeMismatch,
                format!("schema id {schema_id} is {name:?}, ce_type says {}", expected.ce_type()),
            )
            .into());
        }
        let payload = match expected {
            MessageType::IndicatorAlert => Decoded::IndicatorAlert(from_value(&decoded, expected)?),
            MessageType::FreezeRequest => Decoded::FreezeRequest(from_value(&decoded, expected)?),
            MessageType::TakedownConfirmation => Decoded::TakedownConfirmation(from_value(&decoded, expected)?),
            MessageType::LogCheckpoint => Decoded::LogCheckpoint(from_value(&decoded, expected)?),
            MessageType::AlertRetraction => Decoded::AlertRetraction(from_value(&decoded, expected)?),
            MessageType::AlertFeedback => Decoded::AlertFeedback(from_value(&decoded, expected)?),
        };
        Ok((schema_id, payload))
    }
}

/// Registry client settings. Every call has a deadline: a registry that accepts
/// connections but does not answer (starting up, overloaded) must become a
/// retryable error, not a consumer that waits for ever.
fn registry_settings(url: &str) -> Result<SrSettings, SRCError> {
    crate::ensure_crypto_provider();
    SrSettings::new_builder(url.trim_end_matches('/').to_owned()).set_timeout(std::time::Duration::from_secs(10)).build()
}

/// The full name of a record schema (`concord.v1.FreezeRequest`); empty for any other.
fn schema_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(record) => record.name.fullname(None),
        _ => String::new(),
    }
}

fn from_value<M: Message>(value: &Value, ty: MessageType) -> Result<M, Rejection> {
    apache_avro::from_value(value).map_err(|e| Rejection::new(RejectReason::TypeMismatch, format!("record does not map to {ty}: {e}")))
}

impl Payload {
    /// The message as JSON, for people and logs.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Payload::IndicatorAlert(m) => serde_json::to_value(&**m),
            Payload::FreezeRequest(m) => serde_json::to_value(&**m),
            Payload::TakedownConfirmation(m) => serde_json::to_value(&**m),
            Payload::LogCheckpoint(m) => serde_json::to_value(&**m),
            Payload::AlertRetraction(m) => serde_json::to_value(&**m),
            Payload::AlertFeedback(m) => serde_json::to_value(&**m),
        };
        value.expect("Concord messages always serialize to JSON")
    }
}

/// Registers `schema` (Avro JSON) under `subject`; returns its id. A schema the
/// registry's compatibility rule refuses is an error naming the rule's verdict.
pub async fn register_schema(registry_url: &str, subject: &str, schema: &str) -> Result<u32, SRCError> {
    use schema_registry_converter::async_impl::schema_registry::post_schema;
    use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
    let settings = registry_settings(registry_url)?;
    let supplied = SuppliedSchema::new(Some(subject.to_owned()), SchemaType::Avro, schema.to_owned());
    post_schema(&settings, subject.to_owned(), supplied).await.map(|r| r.id)
}
