//! A Kafka record as the protocol sees it: owned bytes, no client types.

use serde::{Deserialize, Serialize};

/// One record as read from (or to be written to) a topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RawRecord {
    /// The topic.
    pub topic: String,
    /// The partition, or -1 before it is written.
    pub partition: i32,
    /// The offset, or -1 before it is written.
    pub offset: i64,
    /// Broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// The key bytes.
    pub key: Option<Vec<u8>>,
    /// The value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers in order; a header may repeat and may have no value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl RawRecord {
    /// Every value of header `name`.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_deref())
    }

    /// The size the consumer limits: key + value + header names and values.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self.headers.iter().map(|(n, v)| n.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>()
    }

    /// Sets header `name`, replacing every earlier value.
    pub fn set_header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), Some(value.into())));
    }
}
