//! `msctl`: the milestone command line. Every command is one or a few
//! requests to the project's `milestoned`; people get tables and sentences,
//! scripts get exact JSON (`--json`) and the exit codes of DESIGN §8.
//!
//! This file parses the arguments, finds the daemon and turns failures into
//! exit codes; [`commands`] says which function runs each command.

mod args;
mod commands;
mod daemon;
mod git;
mod init;
mod input;
mod progress;
mod render;
mod reply;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use milestones_client::protocol::{ErrorKind, Response};
use milestones_client::{find_root, ClientError};

use crate::args::Cli;

/// Exit codes scripts can rely on (also in the README).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const INVALID: u8 = 4;
    pub const PROBLEMS_FOUND: u8 = 5;
    pub const NO_DAEMON: u8 = 6;
    /// Worth trying again: a conflicting change, or storage that is
    /// briefly unavailable.
    pub const RETRY: u8 = 7;
    /// The caller's role (`storage.access`) does not cover the command.
    pub const DENIED: u8 = 8;
}

/// A failure with the exit code it maps to.
pub struct Failure {
    code: u8,
    message: String,
    kind: Option<ErrorKind>,
    field: Option<String>,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure { code, message: message.into(), kind: None, field: None }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Daemon(info) => {
                let code = match info.kind {
                    ErrorKind::NotFound => exit::NOT_FOUND,
                    ErrorKind::InvalidId
                    | ErrorKind::InvalidInput
                    | ErrorKind::AlreadyExists
                    | ErrorKind::DependencyCycle
                    | ErrorKind::TooLarge => exit::INVALID,
                    ErrorKind::Conflict | ErrorKind::Unavailable => exit::RETRY,
                    ErrorKind::PermissionDenied => exit::DENIED,
                    _ => exit::FAILURE,
                };
                Failure { code, message: info.message, kind: Some(info.kind), field: info.field }
            }
            e @ (ClientError::NoDaemon { .. } | ClientError::Rejected(_) | ClientError::PermissionDenied { .. }) => {
                Failure::new(exit::NO_DAEMON, e.to_string())
            }
            e @ ClientError::TimedOut { .. } => {
                Failure::new(exit::NO_DAEMON, format!("{e}; `--timeout SECONDS` waits longer"))
            }
            e @ ClientError::RequestTooLarge { .. } => Failure::new(exit::INVALID, e.to_string()),
            other => Failure::new(exit::FAILURE, other.to_string()),
        }
    }
}

/// The command line, as `Cli::parse` reads it, less freeing clap's
/// description of every command afterwards: msctl exits soon after, and
/// the freeing was an eighth of the instructions of a whole `msctl ping`.
fn parse_command_line() -> Cli {
    let mut command = std::mem::ManuallyDrop::new(Cli::command());
    let mut matches = command.get_matches_mut();
    Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command).exit())
}

fn main() -> ExitCode {
    // Output piped into `head` that closes early ends msctl quietly, as it
    // does any other Unix tool, rather than panicking on the broken pipe.
    // SAFETY: restoring a signal's default action, before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = parse_command_line();
    let json = cli.json;
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if json {
                let error = serde_json::json!({ "error": { "kind": f.kind.map(|k| format!("{k:?}")), "message": f.message, "field": f.field } });
                eprintln!("{error}");
            } else {
                eprintln!("msctl: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Where the daemon for this invocation lives.
pub struct DaemonAddress {
    pub root: PathBuf,
    pub socket: PathBuf,
}

/// The project root and its daemon's socket, from the flags or the defaults.
fn locate(cli: &Cli) -> Result<DaemonAddress, Failure> {
    let root = find_root(cli.root.as_deref()).map_err(|m| Failure::new(exit::FAILURE, m))?;
    let socket =
        cli.socket.clone().unwrap_or_else(|| milestones_client::protocol::socket_path::default_socket_path(&root));
    Ok(DaemonAddress { root, socket })
}

/// The failure for a reply that does not answer the request.
fn unexpected(response: Response) -> Failure {
    Failure::new(exit::FAILURE, format!("unexpected reply from milestoned: {response:?}"))
}
