//! Starting, stopping and inspecting the daemon: auto-start for every
//! command (serialised, so ten `msctl` calls at once start one daemon),
//! version-skew notices, and `msctl daemon start|stop|status|restart|logs`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use milestones_client::protocol::{DaemonStatus, Request, Response, Welcome, PROTOCOL_VERSION};
use milestones_client::{Client, ClientError};

use crate::args::{Cli, DaemonCommand};
use crate::{exit, render, unexpected, DaemonAddress, Failure};

/// How long `stop` waits for the daemon to finish what it is doing.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

const MY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// True unless `--no-autostart` or `MSCTL_NO_AUTOSTART=1` says otherwise.
pub fn autostart_enabled(cli: &Cli) -> bool {
    !cli.no_autostart && !std::env::var("MSCTL_NO_AUTOSTART").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Connects to the project's daemon, starting it first when none answers
/// and auto-start is on.
pub fn connect(target: &DaemonAddress, cli: &Cli) -> Result<Client, Failure> {
    let connect = || Client::connect_within(&target.socket, "msctl", cli.connect_timeout());
    let mut client = match connect() {
        Ok(client) => {
            note_version_skew(client.welcome());
            client
        }
        Err(ClientError::NoDaemon { .. }) if autostart_enabled(cli) => {
            start(target, cli.socket.as_deref())?;
            connect().map_err(|e| refused(target, e))?
        }
        Err(e) => return Err(refused(target, e)),
    };
    client.set_timeout(cli.reply_timeout())?;
    Ok(client)
}

/// What a failed connection means to a person.
pub fn refused(target: &DaemonAddress, e: ClientError) -> Failure {
    match e {
        ClientError::NoDaemon { .. } => Failure::new(
            exit::NO_DAEMON,
            format!(
                "no milestoned is running for {} (socket {}); `msctl daemon start` starts it",
                target.root.display(),
                target.socket.display()
            ),
        ),
        ClientError::Rejected(r) if r.protocol_version != PROTOCOL_VERSION => Failure::new(
            exit::NO_DAEMON,
            format!(
                "the running milestoned {} speaks protocol {} and this msctl {MY_VERSION} speaks {PROTOCOL_VERSION}; \
                 `msctl daemon restart` replaces it with the daemon of this version",
                r.daemon_version, r.protocol_version
            ),
        ),
        other => other.into(),
    }
}

/// Daemon and client of different versions still understand each other
/// when their protocol matches; say so once, on stderr, so scripts' output
/// stays clean.
fn note_version_skew(welcome: &Welcome) {
    if welcome.daemon_version != MY_VERSION {
        eprintln!(
            "msctl: note: milestoned {} is running, msctl is {MY_VERSION}; `msctl daemon restart` brings them in step",
            welcome.daemon_version
        );
    }
}

/// Starts the daemon unless one answers; returns true when this call
/// started it. Concurrent callers queue on `.milestones/autostart.lock` and
/// find the daemon the first one started.
pub fn start(target: &DaemonAddress, socket_arg: Option<&Path>) -> Result<bool, Failure> {
    let fail = |m: String| Failure::new(exit::FAILURE, m);
    let dir = target.root.join(".milestones");
    fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let lock_path = dir.join("autostart.lock");
    let lock = File::create(&lock_path).map_err(|e| fail(format!("cannot open {}: {e}", lock_path.display())))?;
    lock.lock().map_err(|e| fail(format!("cannot lock {}: {e}", lock_path.display())))?;
    if Client::connect(&target.socket, "msctl").is_ok() {
        return Ok(false);
    }
    // A daemon that is shutting down (stopped, or idle) no longer answers
    // but still holds its lock for a moment: let it finish first.
    wait_for_lock(&dir.join("milestoned.lock"), STOP_TIMEOUT);
    // Without --foreground, milestoned detaches and exits only once the
    // daemon serves, or with the daemon's own error on stderr.
    let mut command = Command::new(daemon_binary());
    command.arg("--root").arg(&target.root);
    if let Some(socket) = socket_arg {
        command.arg("--socket").arg(socket);
    }
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| fail(format!("cannot run {}: {e}", daemon_binary().display())))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        let why = why.trim().trim_start_matches("milestoned: ");
        return Err(fail(format!(
            "milestoned did not start: {}",
            if why.is_empty() { "no reason given" } else { why }
        )));
    }
    drop(lock);
    Ok(true)
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

/// Stops the daemon: SIGTERM, then waits until its instance lock is free
/// (the lock, not the pid, decides liveness). Returns false when none was
/// running.
pub fn stop(target: &DaemonAddress) -> Result<bool, Failure> {
    let dir = target.root.join(".milestones");
    let lock_path = dir.join("milestoned.lock");
    let pid = match Client::connect(&target.socket, "msctl") {
        Ok(client) => client.welcome().pid,
        Err(ClientError::NoDaemon { .. }) => return Ok(false),
        // A daemon of another protocol still has a pid file; trust it only
        // while the instance lock says a daemon lives, and only for a pid
        // that names one process.
        Err(e) => match read_pid(&dir.join("milestoned.pid")) {
            Some(pid) if lock_held(&lock_path) && (2..=i32::MAX as u32).contains(&pid) => pid,
            _ => return Err(refused(target, e)),
        },
    };
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } != 0 {
        return Err(Failure::new(
            exit::FAILURE,
            format!("cannot signal milestoned (pid {pid}): {}", std::io::Error::last_os_error()),
        ));
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if !lock_held(&lock_path) {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Err(Failure::new(
                exit::FAILURE,
                format!("milestoned (pid {pid}) did not stop within {} s", STOP_TIMEOUT.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while a daemon holds the project's instance lock.
fn lock_held(lock_path: &Path) -> bool {
    File::options().write(true).open(lock_path).is_ok_and(|f| f.try_lock().is_err())
}

/// Waits (up to `limit`) for a stopping daemon to let go of the lock.
fn wait_for_lock(lock_path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while lock_held(lock_path) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn run(cli: &Cli, command: &DaemonCommand, target: &DaemonAddress) -> Result<u8, Failure> {
    let out = render::Output { json: cli.json };
    match command {
        DaemonCommand::Start => {
            let fresh = start(target, cli.socket.as_deref())?;
            report_running(cli, target, if fresh { "started" } else { "already running" })
        }
        DaemonCommand::Stop => {
            let stopped = stop(target)?;
            let message = if stopped { "stopped" } else { "not running" };
            out.print_json_or(&serde_json::json!({ "root": target.root, "stopped": stopped }), || {
                format!("milestoned for {}: {message}", target.root.display())
            });
            Ok(0)
        }
        DaemonCommand::Restart => {
            stop(target)?;
            start(target, cli.socket.as_deref())?;
            report_running(cli, target, "restarted")
        }
        DaemonCommand::Status => {
            let mut client = match Client::connect(&target.socket, "msctl") {
                Ok(client) => client,
                Err(e) => return Err(refused(target, e)),
            };
            match client.request(Request::Status)? {
                Response::Status(status) => {
                    out.print_json_or(&serde_json::json!({ "daemon": status, "msctl_version": MY_VERSION }), || {
                        describe(&status)
                    });
                    Ok(0)
                }
                other => Err(unexpected(other)),
            }
        }
        DaemonCommand::Logs { lines } => {
            let path = target.root.join(".milestones/logs/milestoned.log");
            let text = fs::read_to_string(&path)
                .map_err(|e| Failure::new(exit::FAILURE, format!("cannot read {}: {e}", path.display())))?;
            let all: Vec<&str> = text.lines().collect();
            for line in &all[all.len().saturating_sub(*lines)..] {
                println!("{line}");
            }
            Ok(0)
        }
    }
}

fn report_running(cli: &Cli, target: &DaemonAddress, how: &str) -> Result<u8, Failure> {
    let client = Client::connect(&target.socket, "msctl").map_err(|e| refused(target, e))?;
    let pid = client.welcome().pid;
    render::Output { json: cli.json }.print_json_or(
        &serde_json::json!({ "root": target.root, "pid": pid, "socket": target.socket, "state": how }),
        || format!("milestoned pid {pid} for {}: {how}", target.root.display()),
    );
    Ok(0)
}

fn describe(s: &DaemonStatus) -> String {
    let db = s.database.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    let activated = if s.socket_activated { " (from systemd)" } else { "" };
    let t = &s.thresholds;
    [
        format!(
            "milestoned {} (protocol {}), pid {}, up {}",
            s.daemon_version,
            s.protocol_version,
            s.pid,
            uptime(s.uptime_ms)
        ),
        format!("msctl      {MY_VERSION} (protocol {PROTOCOL_VERSION})"),
        format!("backend    {}{db}, {} milestones", s.backend, s.milestones),
        format!("root       {}", s.root),
        format!("socket     {}{activated}", s.socket),
        format!("log level  {}; configuration read {}", s.log_level, s.config_loaded_at),
        format!("watching   {}", s.watching),
        format!(
            "thresholds file→hybrid at {} milestones or {} users, hybrid→database at {} milestones or {} users",
            t.file_to_hybrid_milestones,
            t.file_to_hybrid_users,
            t.hybrid_to_database_milestones,
            t.hybrid_to_database_users
        ),
    ]
    .join("\n")
}

fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}
