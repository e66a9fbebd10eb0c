//! `HookRunner`: runs the shell command lines `storage-config.yaml` names
//! under `storage.hooks.<event>` when that happens to a milestone (created,
//! status changed, completed, deleted) or a migration finishes. Each runs
//! as `sh -c LINE` in the project root with the event as JSON on standard
//! input, on this runner's own thread: a request never waits for a hook and
//! never fails because of one. A hook that runs past its time is killed
//! with everything it started; failures are logged and shown in `health`
//! until that hook next succeeds.
//!
//! Only changes made through this daemon (requests, outside edits, its
//! migrations) run hooks: another daemon sharing the database runs its own.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use milestones_protocol::{EventKind, EventSource};
use tokio::sync::broadcast::error::RecvError;

use crate::change_feed::Change;
use crate::service::MilestoneService;

/// How much of a failing hook's standard error its problem quotes.
const STDERR_KEPT: usize = 400;

pub struct HookRunner;

impl HookRunner {
    /// Starts the runner's thread; it ends when the daemon's feed closes.
    pub fn start(service: Arc<MilestoneService>, root: PathBuf) {
        let mut changes = service.feed().subscribe();
        let spawned = std::thread::Builder::new().name("hooks".into()).spawn(move || loop {
            match changes.blocking_recv() {
                Ok(change) => {
                    let hooks = service.hook_settings();
                    if hooks.is_empty() {
                        continue;
                    }
                    for event in events_of(&change) {
                        for command in hooks.for_event(event) {
                            let input = payload(event, &change, &root);
                            let failure = run(command, &input, &root, hooks.timeout).err();
                            if let Some(why) = &failure {
                                tracing::warn!(event, command = %command, "hook failed: {why}");
                            }
                            service.note_hook_outcome(event, command, failure);
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "hooks fell behind; the hooks of {missed} changes were not run")
                }
                Err(RecvError::Closed) => return,
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the hooks thread; no hook will run");
        }
    }
}

/// The hook events one change is.
fn events_of(change: &Change) -> Vec<&'static str> {
    let event = &change.event;
    if !matches!(event.source, EventSource::Request | EventSource::OutsideEdit) {
        return Vec::new();
    }
    match event.kind {
        EventKind::Created => vec!["created"],
        EventKind::Updated | EventKind::Moved => {
            let mut events = Vec::new();
            if change.previous_status.is_some() && change.previous_status != event.status {
                events.push("status_changed");
                if event.status.as_deref() == Some("completed") {
                    events.push("completed");
                }
            }
            events
        }
        EventKind::Deleted => vec!["deleted"],
        EventKind::MigrationFinished => vec!["migration_finished"],
        EventKind::Invalid | EventKind::MigrationStarted => Vec::new(),
    }
}

/// What a hook reads on its standard input.
fn payload(name: &str, change: &Change, root: &std::path::Path) -> String {
    let event = &change.event;
    serde_json::json!({
        "event": name,
        "id": event.id,
        "status": event.status,
        "previous_status": change.previous_status,
        "source": format!("{:?}", event.source),
        "timestamp": event.timestamp,
        "file": event.file,
        "detail": event.detail,
        "root": root,
    })
    .to_string()
}

/// Runs one hook to its end, or kills it at `timeout`; why it failed.
fn run(command: &str, input: &str, root: &std::path::Path, timeout: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is not a failure.
        let _ = stdin.write_all(input.as_bytes());
    }
    // Read on the side, so a hook writing much to stderr never blocks.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let outcome = wait(&mut child, timeout);
    let said = stderr.and_then(|reader| reader.join().ok()).unwrap_or_default();
    let said = said.trim();
    let said = if said.is_empty() {
        String::new()
    } else {
        let start = said.len().saturating_sub(STDERR_KEPT);
        let start = (start..said.len()).find(|i| said.is_char_boundary(*i)).unwrap_or(said.len());
        format!(": {}", &said[start..])
    };
    match outcome {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{status}{said}")),
        Err(why) => Err(format!("{why}{said}")),
    }
}

fn wait(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                // SAFETY: signals the hook's own process group, nothing else.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return Err(format!("killed after running past its {} s", timeout.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    }
}
