//! `milestoned`: the per-project milestone daemon.
//!
//! Start-up order matters. Everything that can fail fast (the project tree,
//! the instance lock, loading the milestones, binding the socket) happens
//! before the tokio runtime exists and while the process has one thread, so
//! that forking into the background (which must happen before any runtime
//! thread exists) can slot in right before the runtime is built.

mod analytics;
mod config;
mod connection;
mod document;
mod error;
mod event_log;
mod graph;
mod instance;
mod layout;
mod listener;
mod migration;
mod peer;
mod query;
mod rules;
mod search;
mod server;
mod service;
mod storage;
mod yaml;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tracing::info;

use crate::config::StorageConfig;
use crate::instance::{InstanceLock, PidFile};
use crate::layout::ProjectLayout;
use crate::server::{Limits, Server};
use crate::service::MilestoneService;

/// The milestone daemon for one project: owns its `.milestones/` tree and
/// serves msctl, scripts and editor plugins over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "milestoned", version)]
struct Args {
    /// The project root: the folder that holds (or will hold) `.milestones/`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// Listen here instead of `.milestones/milestoned.sock`.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Stay attached to the terminal. This build always does; detaching into
    /// the background is not implemented yet.
    #[arg(long)]
    foreground: bool,
    /// error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: tracing::Level,
    /// Most clients served at once; more are told to retry.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Largest frame accepted or sent, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = milestones_protocol::DEFAULT_MAX_FRAME)]
    max_frame_bytes: usize,
    /// How long a new connection may take to send its hello.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    handshake_timeout_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt().with_max_level(args.log_level).with_writer(std::io::stderr).with_target(false).init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("milestoned: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    if !args.root.is_dir() {
        bail!("the project root {} is not a folder", args.root.display());
    }
    let root = args.root.canonicalize().with_context(|| format!("cannot resolve {}", args.root.display()))?;
    let layout = ProjectLayout::new(&root);
    layout.ensure().with_context(|| format!("cannot create the .milestones tree in {}", root.display()))?;
    let _lock = InstanceLock::acquire(&layout.lock_file())?;

    let backend = layout.configured_backend().context("cannot read config/storage-backend.txt")?;
    let config = StorageConfig::load(&layout.storage_config())?;
    let storage = storage::open(&layout, &config, &backend)?;
    let problems = storage.problems();
    if !problems.is_empty() {
        tracing::warn!(count = problems.len(), "some milestone files could not be loaded; `msctl validate --all` lists them");
    }

    let socket_path = args.socket.clone().unwrap_or_else(|| milestones_protocol::socket_path::default_socket_path(&root));
    let socket = listener::bind(&socket_path)?;
    let events = event_log::StorageEventLog::open(&layout.storage_events())
        .with_context(|| format!("cannot open {}", layout.storage_events().display()))?;
    let service = Arc::new(MilestoneService::new(
        storage.clone(),
        layout.clone(),
        events,
        root.display().to_string(),
        socket.path().display().to_string(),
    ));
    let limits = Limits {
        max_connections: args.max_connections.max(1),
        max_frame: args.max_frame_bytes,
        handshake_timeout: Duration::from_millis(args.handshake_timeout_ms),
    };

    // Daemonising (fork + setsid) belongs exactly here: after every check
    // above, before the runtime creates threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("milestoned")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::UnixListener::from_std(socket.listener.try_clone()?)?;
        let _pid = PidFile::write(&layout.pid_file())?;
        info!(
            root = %root.display(),
            socket = %socket.path().display(),
            backend = storage.backend_name(),
            milestones = storage.count()?,
            startup_ms = started.elapsed().as_millis() as u64,
            "serving"
        );
        Server::new(listener, service, limits, root.display().to_string()).run(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    drop(socket);
    info!("stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
}
