//! The wire protocol between `milestoned` and its clients (`msctl`, editor
//! plugins, scripts).
//!
//! A connection is a stream of frames (4-byte big-endian length, then the
//! payload; see [`frame`]). The first frame each way is a JSON handshake
//! ([`handshake`]); after it, [`RequestFrame`]s and [`ServerMessage`]s are
//! encoded with the encoding the client chose ([`codec`]). `PROTOCOL.md` at
//! the repository root documents every message byte by byte.
//!
//! This crate depends on no async runtime and no storage code, so a plugin can
//! depend on it alone.

pub mod codec;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod socket_path;
pub mod value;

pub use codec::{decode, encode, CodecError};
pub use frame::{FrameCodec, FrameError, DEFAULT_MAX_FRAME};
pub use handshake::{
    Encoding, HandshakeReply, Hello, Rejection, Welcome, CAPABILITY_CONFLICT_ERRORS, PROTOCOL_VERSION,
};
pub use message::*;
pub use value::{Map, Value};
