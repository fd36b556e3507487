//! The Confluent wire format of a value: magic byte 0, the schema id as a
//! 4-byte big-endian unsigned integer, then the Avro binary encoding.

/// The magic byte.
pub const MAGIC: u8 = 0;

/// Why a value is not in the Confluent wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer than the 5 header bytes.
    #[error("value is {0} bytes, shorter than the 5-byte Confluent header")]
    TooShort(usize),
    /// The first byte is not 0.
    #[error("first byte is {0:#04x}, not the Confluent magic byte 0x00")]
    BadMagic(u8),
}

/// Splits a framed value into its schema id and Avro payload.
pub fn split(value: &[u8]) -> Result<(u32, &[u8]), WireError> {
    if value.len() < 5 {
        return Err(WireError::TooShort(value.len()));
    }
    if value[0] != MAGIC {
        return Err(WireError::BadMagic(value[0]));
    }
    let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    Ok((id, &value[5..]))
}

/// Frames an Avro payload with its schema id.
pub fn frame(schema_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_splits() {
        let v = frame(0x0102_0304, b"avro");
        assert_eq!(v, [0, 1, 2, 3, 4, b'a', b'v', b'r', b'o']);
        assert_eq!(split(&v), Ok((0x0102_0304, &b"avro"[..])));
        assert_eq!(split(&[0, 0, 1]), Err(WireError::TooShort(3)));
        assert_eq!(split(b"{\"json\":1}"), Err(WireError::BadMagic(b'{')));
    }
}
