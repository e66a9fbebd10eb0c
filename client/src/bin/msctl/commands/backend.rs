//! The storage backend and the daemon's health: `backend`, `migrate` and
//! `health`.

use milestones_client::protocol::{BackendTarget, DatabaseHealth, DatabaseKind, Request, Response, Severity, Target};
use milestones_client::Client;

use crate::input::backend_target;
use crate::render::Output;
use crate::{exit, unexpected, Failure};

/// `msctl backend`: the active storage backend.
pub fn backend(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    let info = match client.request(Request::Backend)? {
        Response::Backend(info) => info,
        other => return Err(unexpected(other)),
    };
    let server = database_health(client, info.database.as_deref())?;
    out.backend(&info, server.as_ref());
    Ok(0)
}

/// The database server's state, when the backend has a server.
fn database_health(client: &mut Client, database: Option<&str>) -> Result<Option<DatabaseHealth>, Failure> {
    if database != Some(DatabaseKind::Postgresql.name()) {
        return Ok(None);
    }
    match client.request(Request::DatabaseHealth)? {
        Response::DatabaseHealth(health) => Ok(health),
        other => Err(unexpected(other)),
    }
}

/// `msctl migrate`: move every milestone to another backend.
pub fn migrate(
    client: &mut Client,
    out: &Output,
    target: &str,
    database: Option<String>,
    url: Option<String>,
    dry_run: bool,
) -> Result<u8, Failure> {
    let target = backend_target(target, database.as_deref())?;
    if dry_run {
        if url.is_some() && target != BackendTarget::Database(DatabaseKind::Postgresql) {
            return Err(Failure::new(exit::USAGE, "--url goes with --database postgresql only"));
        }
        match client.request(Request::MigrationPlan { target, url })? {
            Response::MigrationPlan(plan) => out.migration_plan(&plan),
            other => return Err(unexpected(other)),
        }
        return Ok(0);
    }
    let request = match (target, url) {
        (BackendTarget::Database(DatabaseKind::Postgresql), url) => Request::MigrateTo { target, url },
        (_, None) => Request::Migrate { target },
        (_, Some(_)) => return Err(Failure::new(exit::USAGE, "--url goes with --database postgresql only")),
    };
    run_migration(client, out, request)
}

/// `msctl migrate rollback`: back to the backend and the backup of the
/// last migration.
pub fn rollback(client: &mut Client, out: &Output, discard_changes: bool) -> Result<u8, Failure> {
    run_migration(client, out, Request::MigrateRollback { discard_changes })
}

/// Sends a migrating request, showing its progress until it answers.
fn run_migration(client: &mut Client, out: &Output, request: Request) -> Result<u8, Failure> {
    let progress = crate::progress::Progress::start(client.socket(), out.json);
    let answer = client.request(request);
    progress.finish();
    match answer? {
        Response::Migrated(report) => out.migrated(&report),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl migrate history`: past migrations, oldest first.
pub fn history(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    match client.request(Request::MigrationHistory)? {
        Response::MigrationHistory(records) => out.migration_history(&records),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl migrate status`: the migration under way, if any.
pub fn migration_status(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    match client.request(Request::MigrationStatus)? {
        Response::MigrationStatus(progress) => out.migration_status(progress.as_ref()),
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl health`: the daemon's status, every problem found, and advice;
/// exit 5 on errors.
pub fn health(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    // Asked first: with the server gone, nothing else can be answered.
    let server = match client.request(Request::DatabaseHealth)? {
        Response::DatabaseHealth(health) => health,
        other => return Err(unexpected(other)),
    };
    let unreachable = server.as_ref().is_some_and(|d| d.connection != "connected");
    if let Some(d) = server.as_ref().filter(|_| unreachable) {
        out.database_unreachable(d);
        return Ok(exit::PROBLEMS_FOUND);
    }
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
    let tls = match client.request(Request::DatabaseTls)? {
        Response::DatabaseTls(tls) => tls,
        other => return Err(unexpected(other)),
    };
    out.health(&status, server.as_ref(), tls.as_ref(), &report, &advice);
    if errors > 0 {
        return Ok(exit::PROBLEMS_FOUND);
    }
    Ok(0)
}
