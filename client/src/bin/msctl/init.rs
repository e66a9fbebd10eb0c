//! `msctl init`: make a folder a milestone project and start its daemon.
//! The daemon creates the `.milestones/` tree itself; msctl starts it the
//! way auto-start does and reports its error if it cannot start.

use std::fs;
use std::path::{Path, PathBuf};

use milestones_client::protocol::{BackendTarget, DatabaseKind, Request, Response};
use milestones_client::Client;

use crate::args::Cli;
use crate::{exit, DaemonAddress, Failure};

pub fn run(cli: &Cli) -> Result<u8, Failure> {
    let root = match cli
        .root
        .clone()
        .or_else(|| std::env::var_os("MILESTONES_ROOT").filter(|r| !r.is_empty()).map(PathBuf::from))
    {
        Some(root) => root,
        None => std::env::current_dir()
            .map_err(|e| Failure::new(exit::FAILURE, format!("cannot read the working directory: {e}")))?,
    };
    let root = root
        .canonicalize()
        .map_err(|e| Failure::new(exit::FAILURE, format!("cannot use {} as the project root: {e}", root.display())))?;
    let socket =
        cli.socket.clone().unwrap_or_else(|| milestones_client::protocol::socket_path::default_socket_path(&root));
    let crate::args::Command::Init { backend: wanted, database, url, git_setup } = &cli.command else {
        unreachable!("init::run runs `msctl init` only")
    };
    // Checked before anything is written.
    let target = wanted.as_deref().map(|w| crate::input::backend_target(w, database.as_deref())).transpose()?;
    // A project on PostgreSQL starts on files and migrates: into an empty
    // database, or joining one that holds another root's milestones.
    let server = matches!(target, Some(BackendTarget::Database(DatabaseKind::Postgresql)));
    if url.is_some() && !server {
        return Err(Failure::new(exit::USAGE, "--url goes with --backend database --database postgresql only"));
    }
    let address = DaemonAddress { root: root.clone(), socket: socket.clone() };
    let fresh = match Client::connect(&socket, "msctl") {
        Ok(_) => false,
        Err(_) => {
            if let Some(wanted) = wanted.as_deref().filter(|_| !server) {
                choose_backend(&root, wanted)?;
            }
            crate::daemon::start(&address, cli.socket.as_deref())?
        }
    };
    let mut client = Client::connect(&socket, "msctl").map_err(|e| crate::daemon::refused(&address, e))?;
    if let (Some(target), true) = (target, server && client.welcome().backend != "database") {
        match client.request(Request::MigrateTo { target, url: url.clone() })? {
            Response::Migrated(_) => {}
            other => return Err(crate::unexpected(other)),
        }
        client = Client::connect(&socket, "msctl").map_err(|e| crate::daemon::refused(&address, e))?;
    }
    let welcome = client.welcome().clone();
    let (pid, backend) = (welcome.pid, welcome.backend);
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
    offer_git_setup(&root, *git_setup, cli.json)?;
    Ok(0)
}

/// In a git work tree without the merge driver for milestone files: sets it
/// up when asked to (`--git-setup`), asks on a terminal, and otherwise
/// says how.
fn offer_git_setup(root: &Path, asked: bool, json: bool) -> Result<(), Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    if !crate::git::could_set_up(root) {
        return Ok(());
    }
    if asked {
        return crate::git::setup(root, &crate::render::Output { json }).map(drop);
    }
    if json {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        eprintln!("msctl: note: `msctl git setup` registers the merge driver for milestone files in this git clone");
        return Ok(());
    }
    eprint!("Register the merge driver for milestone files in this git clone (msctl git setup)? [Y/n] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "" | "y" | "yes") {
        crate::git::setup(root, &crate::render::Output { json: false })?;
    }
    Ok(())
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
