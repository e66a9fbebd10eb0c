//! The server: accepts connections (up to a limit), runs the handshake, and
//! answers requests until the client leaves or the daemon shuts down.
//!
//! Each connection is its own task. Requests that touch the disk run on the
//! blocking pool; in-memory reads run inline because the hop to the pool
//! would cost more than the read.
//!
//! No client can lock the others out: when every slot is taken the
//! longest-idle connection makes room ([`ConnectionSlots`]), frames and
//! replies must move within the frame timeout, connections idle past the
//! idle timeout close, and a failing `accept` (out of file descriptors)
//! backs off and frees a descriptor instead of spinning.

use std::sync::Arc;
use std::time::Duration;

use milestones_protocol::handshake::{decode_handshake, encode_handshake};
use milestones_protocol::{
    codec, Encoding, ErrorInfo, ErrorKind, EventFilter, FrameError, HandshakeReply, Hello, Page, Rejection, Request,
    RequestFrame, Response, ServerMessage, Value, Welcome, WorkPage, CAPABILITY_CONFLICT_ERRORS, PROTOCOL_VERSION,
};
use tokio::net::UnixListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::connection::{Connection, ReadError};
use crate::connection_slots::{ConnectionSlots, Slot};
use crate::peer::{Peer, UserNames};
use crate::service::MilestoneService;

const DAEMON_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_frame: usize,
    pub handshake_timeout: Duration,
    /// How long a frame, once begun, may take to arrive, and a reply to be
    /// taken.
    pub frame_timeout: Duration,
    /// How long a connection may sit between requests (subscribers may
    /// wait for events for ever).
    pub client_idle_timeout: Duration,
    /// Exit after this long without a client (an auto-started daemon).
    pub idle_exit: Option<Duration>,
}

/// What every connection shares.
struct Shared {
    service: Arc<MilestoneService>,
    names: UserNames,
    limits: Limits,
    root: String,
}

pub struct Server {
    listener: UnixListener,
    shared: Arc<Shared>,
}

impl Server {
    pub fn new(listener: UnixListener, service: Arc<MilestoneService>, limits: Limits, root: String) -> Self {
        Server { listener, shared: Arc::new(Shared { service, names: UserNames::default(), limits, root }) }
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets every
    /// connection finish the request it is on, and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let slots = ConnectionSlots::new(self.shared.limits.max_connections);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut accept_failures = AcceptFailures::default();
        tokio::pin!(shutdown);
        // Idle exit counts from the moment the last connection closed.
        let mut idle_since = tokio::time::Instant::now();
        let far = Duration::from_secs(86_400 * 365);
        loop {
            let idle_deadline = idle_since + self.shared.limits.idle_exit.unwrap_or(far);
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {
                    if connections.is_empty() {
                        idle_since = tokio::time::Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(idle_deadline), if self.shared.limits.idle_exit.is_some() && connections.is_empty() => {
                    info!(idle_seconds = self.shared.limits.idle_exit.unwrap_or(far).as_secs(), "no client for the idle time; exiting");
                    break;
                }
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => {
                            accept_failures.recovered();
                            stream
                        }
                        Err(e) => {
                            tokio::time::sleep(accept_failures.failed(&e, &slots)).await;
                            continue;
                        }
                    };
                    let shared = self.shared.clone();
                    let slot = slots.take();
                    let stop = stop_rx.clone();
                    connections.spawn(async move {
                        let limits = &shared.limits;
                        let mut conn = Connection::new(stream, limits.max_frame, limits.frame_timeout);
                        match slot {
                            Some(slot) => serve(&mut conn, &shared, &slot, stop).await,
                            None => {
                                let reason = format!(
                                    "all {} of the daemon's connections are busy with requests; try again shortly",
                                    limits.max_connections
                                );
                                // Take the client's hello first: closing on an
                                // unread hello could fail its write with EPIPE
                                // before it ever reads why.
                                let _ = tokio::time::timeout(REJECT_READ_TIMEOUT, conn.read_frame(None)).await;
                                reject(&mut conn, reason).await;
                            }
                        }
                    });
                }
            }
        }
        info!(open = connections.len(), "shutting down: no new connections; finishing requests in flight");
        drop(self.listener);
        let _ = stop_tx.send(true);
        let drained =
            tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            // A client that stopped reading cannot hold the daemon hostage.
            warn!(open = connections.len(), "connections still open after {} s; closing them", DRAIN_TIMEOUT.as_secs());
            connections.abort_all();
        }
    }
}

async fn serve(conn: &mut Connection, shared: &Shared, slot: &Slot, mut stop: watch::Receiver<bool>) {
    let peer = match conn.stream().peer_cred() {
        Ok(cred) => shared.names.peer(cred.uid(), cred.gid()),
        Err(e) => return warn!(error = %e, "cannot read peer credentials; closing"),
    };
    if shared.service.role_of(&peer).is_none() {
        let reason = format!(
            "permission denied: {} (uid {}) is neither this project's owner nor on its access list \
             (storage.access in .milestones/config/storage-config.yaml)",
            peer.user, peer.uid
        );
        return reject(conn, reason).await;
    }
    let agreed = tokio::select! {
        agreed = handshake(conn, shared) => agreed,
        _ = slot.asked_to_give_way() => return,
    };
    let Some((encoding, conflict_errors)) = agreed else { return };
    debug!(user = %peer.user, ?encoding, "client connected");
    loop {
        slot.idle();
        let frame = tokio::select! {
            frame = conn.read_frame(Some(shared.limits.client_idle_timeout)) => frame,
            _ = stop.changed() => return,
            _ = slot.asked_to_give_way() => return debug!(user = %peer.user, "closing an idle connection to make room for a new client"),
        };
        slot.busy();
        let payload = match frame {
            Ok(Some(payload)) => payload,
            Ok(None) => return,
            Err(ReadError::Frame(FrameError::Io(e))) => return debug!(error = %e, "connection error"),
            Err(e @ ReadError::Idle(_)) => return debug!(user = %peer.user, "{e}"),
            Err(e) => {
                // Too large, truncated or stalled: the stream cannot be
                // resynchronised.
                let kind = if matches!(e, ReadError::Frame(FrameError::TooLarge { .. })) {
                    ErrorKind::TooLarge
                } else {
                    ErrorKind::Protocol
                };
                warn!(user = %peer.user, error = %e, "closing connection after a bad frame");
                let _ = send(conn, encoding, 0, Err(ErrorInfo::new(kind, e.to_string())), shared).await;
                return;
            }
        };
        let (id, result) = match codec::decode::<RequestFrame>(encoding, &payload) {
            // Checked before anything runs; the list may have changed since
            // the connection was let in.
            Ok(RequestFrame { id, request }) if let Err(e) = authorize(shared, &request, &peer) => (id, Err(e)),
            Ok(RequestFrame { id, request: Request::Subscribe { filter } }) => {
                slot.subscribed();
                return stream_events(conn, encoding, Subscription { id, filter, peer: &peer }, shared, slot, stop)
                    .await;
            }
            Ok(RequestFrame { id, request }) => {
                let result = execute(shared, request, &peer).await;
                (id, if conflict_errors { result } else { result.map_err(ErrorInfo::for_older_clients) })
            }
            // The id, when it can be read, lets a client matching replies by
            // id see the error as the answer to its request.
            Err(e) => (
                codec::request_id(encoding, &payload).unwrap_or(0),
                Err(ErrorInfo::new(ErrorKind::Protocol, format!("cannot read request: {e}"))),
            ),
        };
        if send(conn, encoding, id, result, shared).await.is_err() {
            return;
        }
    }
}

/// Runs the handshake; returns the agreed encoding and whether the client
/// knows the appended error kinds, or `None` after telling the client why
/// not.
async fn handshake(conn: &mut Connection, shared: &Shared) -> Option<(Encoding, bool)> {
    let frame = match tokio::time::timeout(shared.limits.handshake_timeout, conn.read_frame(None)).await {
        Err(_) => {
            let ms = shared.limits.handshake_timeout.as_millis();
            reject(conn, format!("no handshake within {ms} ms; closing")).await;
            return None;
        }
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) | Ok(Err(ReadError::Frame(FrameError::Io(_)))) => return None,
        Ok(Err(e)) => {
            reject(conn, format!("bad handshake frame: {e}")).await;
            return None;
        }
    };
    let hello: Hello = match decode_handshake(&frame) {
        Ok(hello) => hello,
        Err(e) => {
            reject(conn, format!("malformed handshake (expected a JSON hello): {e}")).await;
            return None;
        }
    };
    if hello.protocol_version != PROTOCOL_VERSION {
        let relation = if hello.protocol_version < PROTOCOL_VERSION { "older" } else { "newer" };
        let reason = format!(
            "{} {} speaks protocol {}, which is {relation} than this milestoned {DAEMON_VERSION} (protocol {PROTOCOL_VERSION}); \
             use matching versions of msctl and milestoned (restart the daemon after an upgrade)",
            hello.client_name, hello.client_version, hello.protocol_version
        );
        reject(conn, reason).await;
        return None;
    }
    let welcome = HandshakeReply::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        daemon_version: DAEMON_VERSION.to_owned(),
        encoding: hello.encoding,
        capabilities: vec![CAPABILITY_CONFLICT_ERRORS.to_owned()],
        pid: std::process::id(),
        root: shared.root.clone(),
        backend: shared.service.backend_name().to_owned(),
    });
    conn.write_frame(&encode_handshake(&welcome)).await.ok()?;
    Some((hello.encoding, hello.capabilities.iter().any(|c| c == CAPABILITY_CONFLICT_ERRORS)))
}

/// How long a stop waits for connections to finish what they are doing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a client turned away may take to send the hello it is sending.
const REJECT_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// `accept` failing again and again (out of file descriptors, say): each
/// failure in a run waits twice as long as the last, up to a second, and
/// a warning is logged at most once a minute.
#[derive(Default)]
struct AcceptFailures {
    run: u32,
    warned: Option<tokio::time::Instant>,
    since_warned: u64,
}

impl AcceptFailures {
    const FIRST_PAUSE: Duration = Duration::from_millis(10);
    const LONGEST_PAUSE: Duration = Duration::from_secs(1);
    const WARN_EVERY: Duration = Duration::from_secs(60);

    /// Notes a failure and returns how long to pause before the next
    /// `accept`. Out of descriptors, the longest-idle connection is asked
    /// to close so that the next client can be let in.
    fn failed(&mut self, e: &std::io::Error, slots: &ConnectionSlots) -> Duration {
        let out_of_descriptors = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        let freed = out_of_descriptors && slots.free_one();
        self.since_warned += 1;
        if self.warned.is_none_or(|at| at.elapsed() >= Self::WARN_EVERY) {
            warn!(error = %e, failures = self.since_warned, freed_an_idle_connection = freed, "accept failed; backing off");
            self.warned = Some(tokio::time::Instant::now());
            self.since_warned = 0;
        } else {
            debug!(error = %e, "accept failed again");
        }
        self.run = self.run.saturating_add(1);
        Self::FIRST_PAUSE.saturating_mul(1 << self.run.min(7)).min(Self::LONGEST_PAUSE)
    }

    fn recovered(&mut self) {
        if self.run > 0 {
            debug!(failures = self.run, "accept works again");
            self.run = 0;
        }
    }
}

async fn reject(conn: &mut Connection, reason: String) {
    debug!(%reason, "rejecting connection");
    let reply = HandshakeReply::Rejected(Rejection {
        reason,
        daemon_version: DAEMON_VERSION.to_owned(),
        protocol_version: PROTOCOL_VERSION,
    });
    let _ = conn.write_frame(&encode_handshake(&reply)).await;
}

/// Whether `peer`'s role covers `request` (a refusal is the reply).
fn authorize(shared: &Shared, request: &Request, peer: &Peer) -> Result<(), ErrorInfo> {
    shared.service.authorize(request, request_kind(request), peer).map_err(|e| e.to_info())
}

async fn execute(shared: &Shared, request: Request, peer: &Peer) -> Result<Response, ErrorInfo> {
    let started = std::time::Instant::now();
    let kind = request_kind(&request);
    let writes = writes(&request);
    // Only worth a copy when it will be logged.
    let milestone = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| request_milestone(&request).unwrap_or("").to_owned())
        .unwrap_or_default();
    let result = if shared.service.is_quick(&request) {
        shared.service.handle(request, peer)
    } else {
        let service = shared.service.clone();
        let peer = peer.clone();
        match tokio::task::spawn_blocking(move || service.handle(request, &peer)).await {
            Ok(result) => result,
            Err(e) => {
                // A panic in a handler is a bug; it costs this request, not the daemon.
                warn!(request = kind, error = %e, "request handler failed");
                return Err(ErrorInfo::new(ErrorKind::Internal, format!("internal error while handling {kind}")));
            }
        }
    };
    shared.service.record_request(kind, &peer.user, started.elapsed(), writes);
    debug!(
        request = kind,
        milestone = %milestone,
        user = %peer.user,
        micros = started.elapsed().as_micros() as u64,
        ok = result.is_ok(),
        "request"
    );
    result.map_err(|e| e.to_info())
}

async fn send(
    conn: &mut Connection,
    encoding: Encoding,
    id: u64,
    result: Result<Response, ErrorInfo>,
    shared: &Shared,
) -> Result<(), FrameError> {
    conn.write_frame(&reply_within_frame(encoding, id, result, shared.limits.max_frame)).await
}

/// The reply's payload, within the frame limit. A page of milestones (or of
/// `ready`/`blocked` items) that would not fit is cut to the items that do
/// (its `total` still says how many there are, and the client asks again
/// from where it ends), so a few large milestones never break a list; any
/// other reply too large becomes a `TooLarge` error.
fn reply_within_frame(encoding: Encoding, id: u64, result: Result<Response, ErrorInfo>, max: usize) -> Vec<u8> {
    let encoded = |result| codec::encode(encoding, &ServerMessage::Reply { id, result });
    let error = |kind, message: String| encoded(Err(ErrorInfo::new(kind, message))).unwrap_or_default();
    let bytes = match encoded(result) {
        Ok(bytes) => bytes,
        Err(e) => return error(ErrorKind::Internal, format!("cannot encode the reply: {e}")),
    };
    if bytes.len() <= max {
        return bytes;
    }
    let too_large = format!(
        "the reply is {} bytes, over the {max} byte frame limit; ask for less (for example `list --limit`)",
        bytes.len()
    );
    // Rare enough to read the page back rather than keep a copy of every
    // reply in case it does not fit.
    let cut = match codec::decode(encoding, &bytes) {
        Ok(ServerMessage::Reply { result: Ok(Response::Page(mut page)), .. }) => {
            let empty = Response::Page(Page { items: Vec::new(), total: page.total });
            let first = page.items.first().and_then(|m| m.pointer("id")).and_then(Value::as_str).map(str::to_owned);
            fitting(encoding, &encoded, &page.items, empty, max)
                .map(|n| {
                    page.items.truncate(n);
                    Response::Page(page)
                })
                .ok_or(first)
        }
        Ok(ServerMessage::Reply { result: Ok(Response::WorkPage(mut page)), .. }) => {
            let empty = Response::WorkPage(WorkPage { items: Vec::new(), total: page.total });
            let first = page.items.first().map(|i| i.milestone.clone());
            fitting(encoding, &encoded, &page.items, empty, max)
                .map(|n| {
                    page.items.truncate(n);
                    Response::WorkPage(page)
                })
                .ok_or(first)
        }
        _ => Err(None),
    };
    match cut {
        Ok(response) => encoded(Ok(response))
            .ok()
            .filter(|b| b.len() <= max)
            .unwrap_or_else(|| error(ErrorKind::TooLarge, too_large)),
        Err(Some(id)) => {
            error(ErrorKind::TooLarge, format!("milestone `{id}` alone is over the {max} byte frame limit"))
        }
        Err(None) => error(ErrorKind::TooLarge, too_large),
    }
}

/// How many of a page's `items` fit in a frame of `max` bytes beside the
/// rest of the reply (`empty`: the page without them); `None` when not one.
fn fitting<T: serde::Serialize>(
    encoding: Encoding,
    encoded: &impl Fn(Result<Response, ErrorInfo>) -> Result<Vec<u8>, codec::CodecError>,
    items: &[T],
    empty: Response,
    max: usize,
) -> Option<usize> {
    let separator = usize::from(encoding == Encoding::Json);
    let mut room = max.saturating_sub(encoded(Ok(empty)).ok()?.len());
    let mut fitting = 0;
    for item in items {
        let size = codec::encode(encoding, item).map_or(usize::MAX, |b| b.len()).saturating_add(separator);
        if size > room {
            break;
        }
        room -= size;
        fitting += 1;
    }
    (fitting > 0).then_some(fitting)
}

/// A subscribed connection: every change the filter accepts, as it
/// happens, until the client closes or the daemon stops. A subscriber that
/// falls behind is told how many events it missed; nobody waits for it.
/// A `Subscribe` request being answered: its id, what it wants, and who
/// asked (whose role is checked again at each event).
struct Subscription<'a> {
    id: u64,
    filter: EventFilter,
    peer: &'a Peer,
}

async fn stream_events(
    conn: &mut Connection,
    encoding: Encoding,
    Subscription { id, filter, peer }: Subscription<'_>,
    shared: &Shared,
    slot: &Slot,
    mut stop: watch::Receiver<bool>,
) {
    // Subscribe before answering, so no change after the answer is missed.
    let mut events = shared.service.feed().subscribe();
    if send(conn, encoding, id, Ok(Response::Subscribed), shared).await.is_err() {
        return;
    }
    debug!("subscriber connected");
    loop {
        let message = tokio::select! {
            event = events.recv() => match event {
                // Taken off the access list since (SIGHUP): the stream ends.
                Ok(_) if shared.service.role_of(peer).is_none() => {
                    if let Err(refusal) = authorize(shared, &Request::Subscribe { filter: filter.clone() }, peer) {
                        let _ = send(conn, encoding, id, Err(refusal), shared).await;
                    }
                    return;
                }
                Ok(change) if filter.accepts(&change.event) => ServerMessage::Event(change.event.clone()),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => ServerMessage::Lagged { missed },
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // The client sends nothing more; a read ends when it closes.
            frame = conn.read_frame(None) => match frame {
                Ok(Some(_)) => continue,
                _ => return,
            },
            _ = stop.changed() => return,
            _ = slot.asked_to_give_way() => return debug!("closing a subscription to make room for a new client"),
        };
        let Ok(bytes) = codec::encode(encoding, &message) else { continue };
        // A subscriber whose socket is full must not keep the daemon from
        // stopping.
        tokio::select! {
            written = conn.write_frame(&bytes) => if written.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// The milestone a request is about, for the log.
fn request_milestone(request: &Request) -> Option<&str> {
    match request {
        Request::Get { id } | Request::Update { id, .. } | Request::Delete { id, .. } | Request::Complete { id } => {
            Some(id)
        }
        Request::TaskAdd { milestone, .. } | Request::TaskSetStatus { milestone, .. } => Some(milestone),
        Request::Deps { id } => id.as_deref(),
        _ => None,
    }
}

/// True for the requests that change milestones.
fn writes(request: &Request) -> bool {
    matches!(
        request,
        Request::Create { .. }
            | Request::Update { .. }
            | Request::Delete { .. }
            | Request::Complete { .. }
            | Request::TaskAdd { .. }
            | Request::TaskSetStatus { .. }
            | Request::Upgrade { .. }
            | Request::Import { check_only: false, .. }
    )
}

fn request_kind(request: &Request) -> &'static str {
    match request {
        Request::Ping => "ping",
        Request::Create { .. } => "create",
        Request::Get { .. } => "get",
        Request::List { .. } => "list",
        Request::Update { .. } => "update",
        Request::Delete { .. } => "delete",
        Request::Complete { .. } => "complete",
        Request::TaskAdd { .. } => "task_add",
        Request::TaskSetStatus { .. } => "task_set_status",
        Request::Deps { .. } => "deps",
        Request::Validate { .. } => "validate",
        Request::Upgrade { .. } => "upgrade",
        Request::Stats => "stats",
        Request::Backend => "backend",
        Request::Migrate { .. } | Request::MigrateTo { .. } => "migrate",
        Request::Status => "status",
        Request::Subscribe { .. } => "subscribe",
        Request::DatabaseHealth => "database_health",
        Request::DatabaseTls => "database_tls",
        Request::Scale => "scale",
        Request::MigrationHistory => "migration_history",
        Request::MigrationPlan { .. } => "migration_plan",
        Request::MigrationStatus => "migration_status",
        Request::MigrateRollback { .. } => "migrate_rollback",
        Request::AuditVerify => "audit_verify",
        Request::Work { .. } | Request::WorkPage { .. } => "work",
        Request::Import { .. } => "import",
    }
}
