//! Message encodings. Every use of bincode in the project lives here, so a
//! later switch to a compatible encoder touches one file and the golden-bytes
//! test proves the bytes did not move.
//!
//! Bincode is pinned to 1.3.3 (RUSTSEC-2025-0141: unmaintained; 3.0.0 is a
//! compile error by design) and configured explicitly: fixed-width
//! little-endian integers, no trailing bytes, and a size limit so a hostile
//! length inside a message cannot make the decoder allocate more than the
//! frame it came in.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::handshake::Encoding;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot decode bincode message: {0}")]
    Bincode(#[from] bincode::Error),
    #[error("cannot decode JSON message: {0}")]
    Json(#[from] serde_json::Error),
}

fn bincode_options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_little_endian().reject_trailing_bytes().with_limit(limit)
}

/// Encodes one message in the connection's encoding.
pub fn encode<T: Serialize>(encoding: Encoding, msg: &T) -> Result<Vec<u8>, CodecError> {
    Ok(match encoding {
        Encoding::Bincode => bincode_options(u64::MAX).serialize(msg)?,
        Encoding::Json => serde_json::to_vec(msg)?,
    })
}

/// How many bytes [`encode`] makes of `msg` in bincode, without making
/// them.
pub fn bincode_len<T: Serialize>(msg: &T) -> Result<u64, CodecError> {
    Ok(bincode_options(u64::MAX).serialized_size(msg)?)
}

/// Decodes one message in the connection's encoding.
pub fn decode<T: DeserializeOwned>(encoding: Encoding, bytes: &[u8]) -> Result<T, CodecError> {
    Ok(match encoding {
        // A message can never legitimately expand past a few times its frame.
        Encoding::Bincode => bincode_options((bytes.len() as u64).saturating_mul(4).max(4096)).deserialize(bytes)?,
        Encoding::Json => serde_json::from_slice(bytes)?,
    })
}

/// The id of a request frame that does not decode as a whole (an unknown
/// request, a value nesting too deep), so that the error reply can carry
/// it: in bincode the id is the first eight bytes; in JSON the `id` member,
/// if the text parses at all. `None` when even that cannot be read.
pub fn request_id(encoding: Encoding, bytes: &[u8]) -> Option<u64> {
    match encoding {
        Encoding::Bincode => bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes),
        Encoding::Json => {
            #[derive(serde::Deserialize)]
            struct IdOnly {
                id: u64,
            }
            serde_json::from_slice::<IdOnly>(bytes).ok().map(|frame| frame.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, RequestFrame};

    #[test]
    fn the_id_of_a_request_that_does_not_decode_is_still_read() {
        let frame = encode(Encoding::Bincode, &RequestFrame { id: 42, request: Request::Ping }).unwrap();
        let mut unknown = frame.clone();
        unknown[8..12].copy_from_slice(&9_999u32.to_le_bytes());
        assert!(decode::<RequestFrame>(Encoding::Bincode, &unknown).is_err());
        assert_eq!(request_id(Encoding::Bincode, &unknown), Some(42));
        assert_eq!(request_id(Encoding::Bincode, &[1, 2, 3]), None);
        let json = br#"{"id": 7, "request": {"NoSuchRequest": {}}}"#;
        assert!(decode::<RequestFrame>(Encoding::Json, json).is_err());
        assert_eq!(request_id(Encoding::Json, json), Some(7));
        assert_eq!(request_id(Encoding::Json, b"not json"), None);
    }
}
