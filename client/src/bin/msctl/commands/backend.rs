//! The storage backend and the daemon's health: `backend`, `migrate` and
//! `health`.

use milestones_client::protocol::{Request, Response, Severity, Target};
use milestones_client::Client;

use crate::input::backend_target;
use crate::render::Output;
use crate::{exit, unexpected, Failure};

/// `msctl backend`: the active storage backend.
pub fn backend(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    match client.request(Request::Backend)? {
        Response::Backend(info) => out.backend(&info),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl migrate`: move every milestone to another backend.
pub fn migrate(client: &mut Client, out: &Output, target: String, database: Option<String>) -> Result<u8, Failure> {
    let target = backend_target(&target, database.as_deref())?;
    match client.request(Request::Migrate { target })? {
        Response::Migrated(report) => out.migrated(&report),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl health`: the daemon's status, every problem found, and advice;
/// exit 5 on errors.
pub fn health(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    let Response::Status(status) = client.request(Request::Status)? else {
        return Err(Failure::new(exit::FAILURE, "unexpected answer to Status"));
    };
    let report = match client.request(Request::Validate { target: Target::All })? {
        Response::Validation(report) => report,
        other => return Err(unexpected(other)),
    };
    let errors = report.problems.iter().filter(|p| p.severity == Severity::Error).count();
    let mut advice = Vec::new();
    let broken_files = report.problems.iter().filter(|p| p.severity == Severity::Error && p.file.is_some()).count();
    if broken_files > 0 {
        advice.push(format!(
            "fix or remove the {broken_files} file(s) that do not load; their last good versions are served meanwhile"
        ));
    }
    if errors > broken_files {
        advice.push("`msctl validate --all` lists the milestones that break the rules".to_owned());
    }
    if status.watching != "notify" {
        advice.push(format!(
            "outside edits are noticed by {}; on Linux, raising fs.inotify.max_user_watches lets the watcher start",
            status.watching
        ));
    }
    out.health(&status, &report, &advice);
    if errors > 0 {
        return Ok(exit::PROBLEMS_FOUND);
    }
    Ok(0)
}
