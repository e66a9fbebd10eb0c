//! A small blocking client for `milestoned`, used by `msctl` and usable by
//! any Rust tool or plugin: connect, handshake, send requests, get replies.
//!
//! It uses plain `std` sockets: a command-line call should not pay for
//! starting an async runtime.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use milestones_protocol::frame::{read_frame, write_frame};
use milestones_protocol::handshake::{decode_handshake, encode_handshake};
use milestones_protocol::{
    codec, CodecError, Encoding, ErrorInfo, EventFilter, FrameError, HandshakeReply, Hello, Rejection, Request,
    RequestFrame, Response, ServerMessage, Welcome, DEFAULT_MAX_FRAME,
};

pub use milestones_protocol as protocol;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no milestoned is answering at {}: {source}", .socket.display())]
    NoDaemon { socket: PathBuf, source: io::Error },
    #[error("milestoned {} refused the connection: {}", .0.daemon_version, .0.reason)]
    Rejected(Rejection),
    #[error("the daemon's handshake was unreadable: {0}")]
    Handshake(String),
    #[error("connection to milestoned failed: {0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("milestoned closed the connection")]
    Closed,
    /// The daemon answered with a structured error.
    #[error("{0}")]
    Daemon(ErrorInfo),
    #[error("unexpected reply from milestoned: {0}")]
    Unexpected(String),
}

/// One connection to a daemon.
pub struct Client {
    stream: UnixStream,
    socket: PathBuf,
    welcome: Welcome,
    next_id: u64,
}

impl Client {
    /// Connects and runs the handshake (bincode encoding).
    pub fn connect(socket: &Path, client_name: &str) -> Result<Client, ClientError> {
        let mut stream = UnixStream::connect(socket)
            .map_err(|source| ClientError::NoDaemon { socket: socket.to_path_buf(), source })?;
        let mut hello = Hello::new(client_name, env!("CARGO_PKG_VERSION"), Encoding::Bincode);
        hello.capabilities.push(milestones_protocol::CAPABILITY_CONFLICT_ERRORS.to_owned());
        write_frame(&mut stream, &encode_handshake(&hello), DEFAULT_MAX_FRAME)?;
        let reply = read_frame(&mut stream, DEFAULT_MAX_FRAME)?.ok_or(ClientError::Closed)?;
        match decode_handshake::<HandshakeReply>(&reply) {
            Ok(HandshakeReply::Welcome(welcome)) => {
                Ok(Client { stream, socket: socket.to_path_buf(), welcome, next_id: 1 })
            }
            Ok(HandshakeReply::Rejected(rejection)) => Err(ClientError::Rejected(rejection)),
            Err(e) => Err(ClientError::Handshake(e.to_string())),
        }
    }

    /// The socket this client is connected to (for a second connection).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// What the daemon said about itself in the handshake.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Sends one request and waits for its reply. A structured error from
    /// the daemon comes back as [`ClientError::Daemon`].
    pub fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let payload = codec::encode(Encoding::Bincode, &RequestFrame { id, request })?;
        write_frame(&mut self.stream, &payload, DEFAULT_MAX_FRAME)?;
        let reply = read_frame(&mut self.stream, DEFAULT_MAX_FRAME)?.ok_or(ClientError::Closed)?;
        match codec::decode::<ServerMessage>(Encoding::Bincode, &reply)? {
            ServerMessage::Reply { id: got, result } if got == id || got == 0 => result.map_err(ClientError::Daemon),
            ServerMessage::Reply { id: got, .. } => {
                Err(ClientError::Unexpected(format!("reply to request {got} while waiting for {id}")))
            }
            other => Err(ClientError::Unexpected(format!("{other:?} while waiting for the reply to request {id}"))),
        }
    }

    /// Subscribes to change events; afterwards read them with
    /// [`Client::next_event`]. The connection serves nothing else.
    pub fn subscribe(&mut self, filter: EventFilter) -> Result<(), ClientError> {
        match self.request(Request::Subscribe { filter })? {
            Response::Subscribed => Ok(()),
            other => Err(ClientError::Unexpected(format!("{other:?} in answer to Subscribe"))),
        }
    }

    /// The next event (or lag notice) on a subscribed connection; blocks.
    pub fn next_event(&mut self) -> Result<ServerMessage, ClientError> {
        let bytes = read_frame(&mut self.stream, DEFAULT_MAX_FRAME)?.ok_or(ClientError::Closed)?;
        Ok(codec::decode::<ServerMessage>(Encoding::Bincode, &bytes)?)
    }
}

/// Finds the project root like git finds a work tree: `explicit` (from
/// `--root`), else `$MILESTONES_ROOT`, else the nearest ancestor of the
/// working directory that holds `.milestones/`.
pub fn find_root(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(root) = explicit {
        return canonical(root);
    }
    if let Some(root) = std::env::var_os("MILESTONES_ROOT").filter(|r| !r.is_empty()) {
        return canonical(Path::new(&root));
    }
    let cwd = std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    cwd.ancestors().find(|dir| dir.join(".milestones").is_dir()).map(Path::to_path_buf).ok_or_else(|| {
        format!("no .milestones folder in {} or any parent; run `msctl init` there or pass --root", cwd.display())
    })
}

fn canonical(root: &Path) -> Result<PathBuf, String> {
    root.canonicalize().map_err(|e| format!("cannot use {} as the project root: {e}", root.display()))
}
