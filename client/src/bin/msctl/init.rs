//! `msctl init`: make a folder a milestone project and start its daemon.
//! The daemon creates the `.milestones/` tree itself; msctl only launches it
//! detached (its own session, output to `.milestones/logs/milestoned.log`)
//! and waits until it answers, or reports why it did not.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use milestones_client::Client;

use crate::args::Cli;
use crate::{exit, Failure};

const READY_TIMEOUT: Duration = Duration::from_secs(15);

pub fn run(cli: &Cli) -> Result<u8, Failure> {
    let root = match cli.root.clone().or_else(|| std::env::var_os("MILESTONES_ROOT").filter(|r| !r.is_empty()).map(PathBuf::from)) {
        Some(root) => root,
        None => std::env::current_dir().map_err(|e| Failure::new(exit::FAILURE, format!("cannot read the working directory: {e}")))?,
    };
    let root = root
        .canonicalize()
        .map_err(|e| Failure::new(exit::FAILURE, format!("cannot use {} as the project root: {e}", root.display())))?;
    let socket = cli.socket.clone().unwrap_or_else(|| milestones_client::protocol::socket_path::default_socket_path(&root));
    let crate::args::Command::Init { backend: wanted, database } = &cli.command else {
        unreachable!("init::run runs `msctl init` only")
    };
    if let Some(wanted) = wanted {
        // Checked before anything is written.
        crate::backend_target(wanted, database.as_deref())?;
    }
    let started = match Client::connect(&socket, "msctl") {
        Ok(client) => Err(client.welcome().clone()),
        Err(_) => {
            if let Some(wanted) = wanted {
                choose_backend(&root, wanted)?;
            }
            Ok(start_daemon(&root, cli.socket.as_deref(), &socket)?)
        }
    };
    let (pid, backend, fresh) = match started {
        Ok(welcome) => (welcome.pid, welcome.backend, true),
        Err(welcome) => (welcome.pid, welcome.backend, false),
    };
    if let Some(wanted) = wanted.as_deref().filter(|w| *w != backend) {
        return Err(already_on(&backend, wanted));
    }
    let out = crate::render::Output { json: cli.json };
    out.print_json_or(
        &serde_json::json!({ "root": root, "backend": backend, "pid": pid, "socket": socket, "started": fresh }),
        || {
            let how = if fresh { "started" } else { "already running" };
            format!("{} is a milestone project (backend: {backend}); milestoned pid {pid} {how}", root.display())
        },
    );
    Ok(0)
}

/// Names the backend of a new project in `config/storage-backend.txt`, where
/// the daemon reads it. A project already on another backend is left alone.
fn choose_backend(root: &Path, wanted: &str) -> Result<(), Failure> {
    let fail = |m: String| Failure::new(exit::FAILURE, m);
    let config = root.join(".milestones").join("config");
    let path = config.join("storage-backend.txt");
    match fs::read_to_string(&path) {
        Ok(current) if current.trim() == wanted => Ok(()),
        Ok(current) => Err(already_on(current.trim(), wanted)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(&config).map_err(|e| fail(format!("cannot create {}: {e}", config.display())))?;
            fs::write(&path, format!("{wanted}\n")).map_err(|e| fail(format!("cannot write {}: {e}", path.display())))
        }
        Err(e) => Err(fail(format!("cannot read {}: {e}", path.display()))),
    }
}

fn already_on(current: &str, wanted: &str) -> Failure {
    Failure::new(
        exit::FAILURE,
        format!("this project already uses the {current} backend; `msctl migrate {wanted}` moves it to {wanted}"),
    )
}

fn start_daemon(root: &Path, socket_arg: Option<&Path>, socket: &Path) -> Result<milestones_client::protocol::Welcome, Failure> {
    let fail = |m: String| Failure::new(exit::FAILURE, m);
    let logs = root.join(".milestones").join("logs");
    fs::create_dir_all(&logs).map_err(|e| fail(format!("cannot create {}: {e}", logs.display())))?;
    let log_path = logs.join("milestoned.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| fail(format!("cannot open {}: {e}", log_path.display())))?;
    let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut command = Command::new(daemon_binary());
    command.arg("--root").arg(root).arg("--foreground");
    if let Some(s) = socket_arg {
        command.arg("--socket").arg(s);
    }
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log.try_clone().map_err(|e| fail(e.to_string()))?);
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from this
    // terminal's session so closing the shell does not stop it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| fail(format!("cannot start milestoned ({}): {e}", daemon_binary().display())))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(client) = Client::connect(socket, "msctl") {
            return Ok(client.welcome().clone());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log_text = fs::read_to_string(&log_path).unwrap_or_default();
            let tail = log_text.get(log_len as usize..).unwrap_or("").trim();
            let why = tail.lines().last().unwrap_or("no message");
            return Err(fail(format!("milestoned failed to start ({status}): {why}")));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "milestoned did not answer within {} s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `milestoned` next to this `msctl` (how they are installed and built),
/// else whatever `PATH` finds.
fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("milestoned")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("milestoned"))
}
