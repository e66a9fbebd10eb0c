//! The daemon's life from `main` to exit: arguments, start-up, serving,
//! shutdown.
//!
//! Start-up order matters. The project tree is checked and created first,
//! while the process has one thread and the terminal; then the process
//! detaches into the background (unless `--foreground`), since a fork must
//! not carry runtime threads or open databases; then the signal handlers
//! (from here a SIGTERM asks for a stop instead of killing); then the
//! instance lock, the milestones and the socket; then the tokio runtime. The process that was
//! started waits on a pipe until the daemon serves or says why it cannot.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tracing::info;

use sd_notify::NotifyState;
use tracing::level_filters::LevelFilter;

use crate::config::StorageConfig;
use crate::detach::{self, Detached, Readiness};
use crate::instance::{InstanceLock, PidFile};
use crate::layout::ProjectLayout;
use crate::logging::Logging;
use crate::server::{Limits, Server};
use crate::service::{Endpoint, MilestoneService};
use crate::signals::Signals;
use crate::storage::BackendSpec;
use crate::{config, event_log, listener, migration, watcher};

/// The milestone daemon for one project: owns its `.milestones/` tree and
/// serves msctl, scripts and editor plugins over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "milestoned", version)]
pub struct Args {
    /// The project root: the folder that holds (or will hold) `.milestones/`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// Listen here instead of `.milestones/milestoned.sock`.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Stay attached to the terminal (for systemd, launchd and tests).
    /// Without it the daemon detaches into the background and returns once
    /// it is serving.
    #[arg(long)]
    foreground: bool,
    /// error, warn, info, debug or trace [default: MILESTONED_LOG, else
    /// storage.log_level in storage-config.yaml, else info].
    #[arg(long, value_name = "LEVEL", value_parser = config::parse_level)]
    log_level: Option<LevelFilter>,
    /// Most clients connected at once; beyond it the longest-idle
    /// connection makes room, and only when every one is busy is a new
    /// client told to retry. Lowered to what the file-descriptor limit
    /// allows.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Largest frame accepted or sent, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = milestones_protocol::DEFAULT_MAX_FRAME)]
    max_frame_bytes: usize,
    /// How long a new connection may take to send its hello.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    handshake_timeout_ms: u64,
    /// How long a request frame, once begun, may take to arrive whole, and
    /// a client to take its reply.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    frame_timeout_ms: u64,
    /// How long a connection may sit between requests before it is closed
    /// (subscriptions excepted).
    #[arg(long, value_name = "MS", default_value_t = 900_000)]
    client_idle_timeout_ms: u64,
}

/// Runs the daemon with the command line's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let layout = match prepare(&args) {
        Ok(layout) => layout,
        Err(e) => return fail(&e, None),
    };
    // Detach first: nothing may hold threads or database handles across the
    // fork.
    let mut readiness = None;
    if !args.foreground {
        match detach::detach(layout.root(), &layout.daemon_log()) {
            Ok(Detached::Parent(code)) => return code,
            Ok(Detached::Child(r)) => readiness = Some(r),
            Err(e) => return fail(&e, None),
        }
    }
    let logging = match Logging::init(args.log_level) {
        Ok(logging) => logging,
        Err(e) => return fail(&anyhow::anyhow!(e), readiness.as_mut()),
    };
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => return fail(&anyhow::anyhow!("cannot catch signals: {e}"), readiness.as_mut()),
    };
    match run(args, layout, logging, signals, readiness.as_mut()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, readiness.as_mut()),
    }
}

fn fail(e: &anyhow::Error, readiness: Option<&mut Readiness>) -> ExitCode {
    if let Some(readiness) = readiness {
        readiness.failed(&format!("{e:#}"));
    }
    eprintln!("milestoned: {e:#}");
    ExitCode::FAILURE
}

/// Checks the root and creates the `.milestones/` tree (the log file lives
/// in it). Single-threaded and cheap, so it runs before detaching and its
/// errors reach the terminal directly.
fn prepare(args: &Args) -> anyhow::Result<ProjectLayout> {
    if !args.root.is_dir() {
        bail!("the project root {} is not a folder", args.root.display());
    }
    let root = args.root.canonicalize().with_context(|| format!("cannot resolve {}", args.root.display()))?;
    let layout = ProjectLayout::new(&root);
    layout.ensure().with_context(|| format!("cannot create the .milestones tree in {}", root.display()))?;
    Ok(layout)
}

fn run(
    args: Args,
    layout: ProjectLayout,
    logging: Logging,
    mut signals: Signals,
    readiness: Option<&mut Readiness>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = layout.root().to_path_buf();
    let _lock = InstanceLock::acquire(&layout.lock_file())?;

    let config = StorageConfig::load_project(&layout)?;
    logging.apply_config(config.log_level);
    // Before any backend opens: a migration a crash interrupted is finished
    // or undone first.
    if let Some(recovered) = migration::recover(&layout, &config).context("cannot recover an interrupted migration")? {
        tracing::warn!(%recovered, "recovered an interrupted migration");
    }
    remove_abandoned_temp_files(&layout);
    let spec = BackendSpec::configured(&layout, &config)?;
    // Armed before the tree is read: an edit made while it loads is kept.
    let mut watcher = watcher::TreeWatcher::arm(&layout, config.watcher);
    let storage = spec.open(&layout)?;
    let idle_exit_seconds = config.idle_exit_seconds;
    let broken = storage.files().map_or(0, |f| f.problems().len());
    if broken > 0 {
        tracing::warn!(count = broken, "some milestone files could not be loaded; `msctl validate --all` lists them");
    }
    if signals.stop_requested() {
        info!("stopped before serving");
        return Ok(());
    }

    let mut socket = match listener::from_systemd()? {
        Some(socket) => socket,
        None => {
            let path =
                args.socket.clone().unwrap_or_else(|| milestones_protocol::socket_path::default_socket_path(&root));
            listener::bind(&path)?
        }
    };
    let events = event_log::StorageEventLog::open(&layout.storage_events(), config.immutable_logs)
        .with_context(|| format!("cannot open {}", layout.storage_events().display()))?;
    let service = Arc::new(MilestoneService::new(
        storage.clone(),
        layout.clone(),
        config,
        events,
        Endpoint {
            root: root.display().to_string(),
            socket: socket.path().display().to_string(),
            socket_activated: socket.inherited(),
            max_reply_bytes: args.max_frame_bytes,
        },
        logging.level(),
    ));
    let limits = Limits {
        max_connections: connections_within_descriptor_limit(args.max_connections.max(1)),
        max_frame: args.max_frame_bytes,
        handshake_timeout: Duration::from_millis(args.handshake_timeout_ms),
        frame_timeout: Duration::from_millis(args.frame_timeout_ms.max(1)),
        client_idle_timeout: Duration::from_millis(args.client_idle_timeout_ms.max(1)),
        // Under a service manager (always --foreground) the manager decides.
        idle_exit: (!args.foreground && idle_exit_seconds > 0).then(|| Duration::from_secs(idle_exit_seconds)),
    };

    watcher.serve(service.clone());
    crate::hooks::HookRunner::start(service.clone(), layout.root().to_path_buf());
    let monitor = crate::scale::monitor::ScaleMonitor::start(service.clone(), layout.clone());
    let config_follower = crate::config_follower::ConfigFollower::start(service.clone(), layout.clone());

    // Counted before the runtime exists: a database client blocks, and
    // must not on the runtime's threads.
    let milestones = storage.count()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("milestoned")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = socket.take_listener().context("the listening socket is already in use")?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        // Only for people and old clients (the lock decides liveness): on a
        // full disk the daemon serves without it.
        let _pid = PidFile::write(&layout.pid_file())
            .inspect_err(|e| {
                tracing::warn!(file = %layout.pid_file().display(), error = %e, "cannot write the pid file; serving without it")
            })
            .ok();
        info!(
            root = %root.display(),
            socket = %socket.path().display(),
            socket_activated = socket.inherited(),
            backend = %storage.kind(),
            milestones,
            startup_ms = started.elapsed().as_millis() as u64,
            "serving"
        );
        if let Some(readiness) = readiness {
            readiness.ready();
        }
        notify_systemd(&[NotifyState::Ready, NotifyState::Status(&status_line(milestones, service.backend_name()))]);
        if let Some(hangups) = signals.hangups() {
            tokio::spawn(reload_on_hangup(hangups, service.clone(), layout.clone(), logging));
        }
        Server::new(listener, service.clone(), limits, root.display().to_string()).run(signals.stopped()).await;
        notify_systemd(&[NotifyState::Stopping]);
        anyhow::Ok(())
    })?;
    drop(socket);
    monitor.stop();
    config_follower.stop();
    // The last flush, still under the signal handlers: a second SIGTERM
    // cannot cut it short.
    if let Err(e) = service.flush() {
        tracing::warn!(error = %e, "cannot flush the storage on the way out");
    }
    drop(service);
    info!("stopped");
    Ok(())
}

/// Tells systemd how things stand, when it is listening (`Type=notify`);
/// a no-op otherwise.
fn notify_systemd(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

/// The one-line status systemd shows (`systemctl status`).
fn status_line(milestones: u64, backend: &str) -> String {
    format!("serving {milestones} milestones on the {backend} backend")
}

/// Each SIGHUP re-reads `storage-config.yaml` and the log level. A file
/// that does not parse is reported and the running settings are kept.
async fn reload_on_hangup(
    mut hangups: tokio::sync::mpsc::UnboundedReceiver<()>,
    service: Arc<MilestoneService>,
    layout: ProjectLayout,
    logging: Logging,
) {
    let logging = Arc::new(logging);
    while hangups.recv().await.is_some() {
        let (service, layout, logging) = (service.clone(), layout.clone(), logging.clone());
        // Reading the file and counting milestones may block: not on a
        // runtime worker.
        let reload = tokio::task::spawn_blocking(move || match StorageConfig::load_project(&layout) {
            Ok(config) => {
                let level = logging.apply_config(config.log_level);
                service.set_config(config, level);
                info!(level = %level, "SIGHUP: storage-config.yaml reloaded");
                match service.milestone_count() {
                    Ok(count) => notify_systemd(&[NotifyState::Status(&status_line(count, service.backend_name()))]),
                    Err(e) => {
                        tracing::warn!(error = %e, "SIGHUP: cannot count the milestones for systemd's status line")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP: storage-config.yaml not reloaded; keeping the running settings")
            }
        });
        if let Err(e) = reload.await {
            tracing::error!(error = %e, "SIGHUP: the reload failed");
        }
    }
}

/// Removes what writes cut short by a kill left (`.NAME.PID.N.tmp` files
/// of a process no longer running) in the folders the daemon writes to.
fn remove_abandoned_temp_files(layout: &ProjectLayout) {
    let folders = [layout.milestones_dir().to_path_buf(), layout.active(), layout.completed(), layout.config()];
    for folder in folders {
        match crate::atomic::remove_abandoned_temp_files(&folder) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(folder = %folder.display(), removed, "removed files of writes a kill cut short")
            }
            Err(e) => tracing::warn!(error = %e, "cannot remove files of writes a kill cut short"),
        }
    }
}

/// Descriptors kept for everything but clients: the listener, the
/// watcher's, database handles, log files, the files a request opens.
const DESCRIPTORS_KEPT: u64 = 64;

/// Raises the soft file-descriptor limit to the hard one, and returns
/// `wanted` connections or as many as the limit leaves room for, so that
/// `accept` does not run out of descriptors before the connection limit
/// is reached.
fn connections_within_descriptor_limit(wanted: usize) -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid rlimit for the call to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the file-descriptor limit");
        return wanted;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to
        // the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    let descriptors = limit.rlim_cur;
    let room = descriptors
        .saturating_sub(DESCRIPTORS_KEPT.min(descriptors / 2))
        .saturating_sub(crate::connection_slots::CLOSING_ALLOWANCE as u64)
        .max(1);
    if (wanted as u64) <= room {
        return wanted;
    }
    tracing::warn!(
        descriptors,
        wanted,
        serving = room,
        "the file-descriptor limit leaves room for fewer connections than --max-connections; serving that many"
    );
    room as usize
}
