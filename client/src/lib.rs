//! A small blocking client for `milestoned`, used by `msctl` and usable by
//! any Rust tool or plugin: connect, handshake, send requests, get replies.
//!
//! It uses plain `std` sockets: a command-line call should not pay for
//! starting an async runtime.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use milestones_protocol::frame::{read_frame, write_frame};
use milestones_protocol::handshake::{decode_handshake, encode_handshake};
use milestones_protocol::{
    codec, CodecError, Encoding, ErrorInfo, EventFilter, FrameError, HandshakeReply, Hello, Page, Query, Rejection,
    Request, RequestFrame, Response, ServerMessage, Welcome, WorkPage, DEFAULT_MAX_FRAME,
};

pub use milestones_protocol as protocol;

/// How long [`Client::connect`] waits for the daemon's handshake: a daemon
/// that is stopped (`SIGSTOP`) or hung accepts the connection and never
/// answers.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no milestoned is answering at {}: {source}", .socket.display())]
    NoDaemon { socket: PathBuf, source: io::Error },
    /// The socket is another user's: only its owner and root may connect.
    #[error("permission denied on {}: this project's milestoned belongs to another user, which lets in only its owner, root, and those its storage.access list names", .socket.display())]
    PermissionDenied { socket: PathBuf },
    /// The daemon took the connection but did not answer in time.
    #[error("milestoned did not answer within {} s (is it stopped, or overloaded?)", .waited.as_secs_f64())]
    TimedOut { waited: Duration },
    /// The request does not fit in one frame; nothing was sent.
    #[error("the request is {len} bytes, over the {max} byte frame limit; send less at once")]
    RequestTooLarge { len: u64, max: usize },
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
    timeout: Option<Duration>,
}

impl Client {
    /// Connects and runs the handshake (bincode encoding), waiting at most
    /// [`HANDSHAKE_TIMEOUT`] for the daemon to answer. Replies are then
    /// waited for without a limit unless [`Client::set_timeout`] sets one.
    pub fn connect(socket: &Path, client_name: &str) -> Result<Client, ClientError> {
        Self::connect_within(socket, client_name, HANDSHAKE_TIMEOUT)
    }

    /// Connects and runs the handshake, waiting at most `timeout` for it.
    pub fn connect_within(socket: &Path, client_name: &str, timeout: Duration) -> Result<Client, ClientError> {
        let mut stream = UnixStream::connect(socket).map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { socket: socket.to_path_buf() },
            _ => ClientError::NoDaemon { socket: socket.to_path_buf(), source },
        })?;
        set_timeouts(&stream, Some(timeout))?;
        let mut hello = Hello::new(client_name, env!("CARGO_PKG_VERSION"), Encoding::Bincode);
        hello.capabilities.push(milestones_protocol::CAPABILITY_CONFLICT_ERRORS.to_owned());
        let waited = |e| timed_out(e, Some(timeout));
        write_frame(&mut stream, &encode_handshake(&hello), DEFAULT_MAX_FRAME).map_err(waited)?;
        let reply = read_frame(&mut stream, DEFAULT_MAX_FRAME).map_err(waited)?.ok_or(ClientError::Closed)?;
        match decode_handshake::<HandshakeReply>(&reply) {
            Ok(HandshakeReply::Welcome(welcome)) => {
                set_timeouts(&stream, None)?;
                Ok(Client { stream, socket: socket.to_path_buf(), welcome, next_id: 1, timeout: None })
            }
            Ok(HandshakeReply::Rejected(rejection)) => Err(ClientError::Rejected(rejection)),
            Err(e) => Err(ClientError::Handshake(e.to_string())),
        }
    }

    /// How long each later request may wait for its reply (`None`: as long
    /// as it takes). A request that times out leaves the connection
    /// unusable: its reply may still come.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        set_timeouts(&self.stream, timeout)?;
        self.timeout = timeout;
        Ok(())
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
        if payload.len() > DEFAULT_MAX_FRAME {
            return Err(ClientError::RequestTooLarge { len: payload.len() as u64, max: DEFAULT_MAX_FRAME });
        }
        if let Err(e) = write_frame(&mut self.stream, &payload, DEFAULT_MAX_FRAME) {
            // A daemon with a smaller frame limit answers the header with
            // an error and closes before taking the rest: its answer says
            // more than the broken pipe does.
            return Err(self.answer_after_a_failed_write().unwrap_or_else(|| timed_out(e, self.timeout)));
        }
        let reply = read_frame(&mut self.stream, DEFAULT_MAX_FRAME)
            .map_err(|e| timed_out(e, self.timeout))?
            .ok_or(ClientError::Closed)?;
        match codec::decode::<ServerMessage>(Encoding::Bincode, &reply)? {
            ServerMessage::Reply { id: got, result } if got == id || got == 0 => result.map_err(ClientError::Daemon),
            ServerMessage::Reply { id: got, .. } => {
                Err(ClientError::Unexpected(format!("reply to request {got} while waiting for {id}")))
            }
            other => Err(ClientError::Unexpected(format!("{other:?} while waiting for the reply to request {id}"))),
        }
    }

    /// Lists or searches: one `List` request, and more when the daemon
    /// cut the page short to fit its frame limit, until the page holds
    /// what `query` asked for.
    pub fn list(&mut self, query: Query) -> Result<Page, ClientError> {
        let mut page = Page { items: Vec::new(), total: 0 };
        let query_offset = query.offset;
        let mut next = query;
        loop {
            let part = match self.request(Request::List { query: next.clone() })? {
                Response::Page(part) => part,
                other => return Err(ClientError::Unexpected(format!("{other:?} in answer to List"))),
            };
            let got = part.items.len() as u64;
            page.total = part.total;
            if next.offset == query_offset {
                page.items.extend(part.items);
            } else {
                // A record the daemon could not read and left out shifts
                // the rows after it: whatever this part repeats is dropped.
                let id = |m: &protocol::Value| m.pointer("id").and_then(protocol::Value::as_str).map(str::to_owned);
                let seen: std::collections::HashSet<String> = page.items.iter().filter_map(id).collect();
                page.items.extend(part.items.into_iter().filter(|m| id(m).is_none_or(|id| !seen.contains(&id))));
            }
            let wanted = next.limit.unwrap_or(u64::MAX).min(part.total.saturating_sub(next.offset));
            if got == 0 || got >= wanted {
                return Ok(page);
            }
            next.offset += got;
            next.limit = next.limit.map(|limit| limit - got);
        }
    }

    /// `limit` ready (or `blocked`) items from `offset` on (all without a
    /// limit): one `WorkPage` request, and more when the daemon cut the
    /// page short to fit its frame limit.
    pub fn work(
        &mut self,
        tasks: bool,
        blocked: bool,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<WorkPage, ClientError> {
        let mut page = WorkPage { items: Vec::new(), total: 0 };
        let (mut offset, mut limit) = (offset, limit.unwrap_or(u64::MAX));
        loop {
            let part = match self.request(Request::WorkPage { tasks, blocked, offset, limit })? {
                Response::WorkPage(part) => part,
                other => return Err(ClientError::Unexpected(format!("{other:?} in answer to WorkPage"))),
            };
            let got = part.items.len() as u64;
            page.total = part.total;
            page.items.extend(part.items);
            if got == 0 || got >= limit.min(part.total.saturating_sub(offset)) {
                return Ok(page);
            }
            offset += got;
            limit -= got;
        }
    }

    /// The daemon's error reply, if it sent one before closing.
    fn answer_after_a_failed_write(&mut self) -> Option<ClientError> {
        let reply = read_frame(&mut self.stream, DEFAULT_MAX_FRAME).ok()??;
        match codec::decode::<ServerMessage>(Encoding::Bincode, &reply).ok()? {
            ServerMessage::Reply { result: Err(e), .. } => Some(ClientError::Daemon(e)),
            _ => None,
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

fn set_timeouts(stream: &UnixStream, timeout: Option<Duration>) -> Result<(), ClientError> {
    stream.set_read_timeout(timeout).and_then(|()| stream.set_write_timeout(timeout)).map_err(FrameError::Io)?;
    Ok(())
}

/// A read or write that ran out of time (a socket timeout shows as
/// `WouldBlock`) as [`ClientError::TimedOut`]; other failures as they are.
fn timed_out(e: FrameError, timeout: Option<Duration>) -> ClientError {
    match (&e, timeout) {
        (FrameError::Io(io), Some(waited))
            if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
        {
            ClientError::TimedOut { waited }
        }
        _ => ClientError::Frame(e),
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
