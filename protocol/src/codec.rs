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

/// Decodes one message in the connection's encoding.
pub fn decode<T: DeserializeOwned>(encoding: Encoding, bytes: &[u8]) -> Result<T, CodecError> {
    Ok(match encoding {
        // A message can never legitimately expand past a few times its frame.
        Encoding::Bincode => bincode_options((bytes.len() as u64).saturating_mul(4).max(4096)).deserialize(bytes)?,
        Encoding::Json => serde_json::from_slice(bytes)?,
    })
}
