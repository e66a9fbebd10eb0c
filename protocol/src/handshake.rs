//! The first exchange on every connection.
//!
//! Handshake frames are always JSON, whatever encoding the rest of the
//! connection uses: a client and a daemon of different versions, or a plugin
//! in another language, can always read each other's hello and say plainly
//! what does not match instead of decoding garbage.

use serde::{Deserialize, Serialize};

/// The protocol this crate speaks. Bumped only when a message changes in a way
/// older peers cannot read (appending enum variants does not count).
pub const PROTOCOL_VERSION: u32 = 1;

/// How frames after the handshake are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Bincode,
    Json,
}

/// The capability a client announces when it understands the error kinds
/// appended after protocol 1 first shipped (`Conflict`, `Unavailable`). A
/// client that does not announce it gets the nearest older kind instead
/// (`Busy`, `Storage`), so that older clients keep decoding every reply.
pub const CAPABILITY_CONFLICT_ERRORS: &str = "conflict-errors";

/// The client's first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub client_name: String,
    pub client_version: String,
    pub encoding: Encoding,
    pub capabilities: Vec<String>,
}

/// The daemon's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HandshakeReply {
    Welcome(Welcome),
    /// The daemon closes the connection after sending this.
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol_version: u32,
    pub daemon_version: String,
    pub encoding: Encoding,
    pub capabilities: Vec<String>,
    pub pid: u32,
    pub root: String,
    pub backend: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: String,
    pub daemon_version: String,
    pub protocol_version: u32,
}

impl Hello {
    pub fn new(client_name: impl Into<String>, client_version: impl Into<String>, encoding: Encoding) -> Self {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: client_name.into(),
            client_version: client_version.into(),
            encoding,
            capabilities: Vec::new(),
        }
    }
}

/// Encodes a handshake message (always JSON).
pub fn encode_handshake<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail.
    serde_json::to_vec(msg).unwrap_or_default()
}

/// Decodes a handshake message (always JSON).
pub fn decode_handshake<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}
