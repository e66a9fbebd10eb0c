//! Which function runs which `msctl` command. Each family of commands has
//! its own module here; `init`, `daemon` and `git`, which work without (or
//! before) a connection, live in [`crate::init`], [`crate::daemon`] and
//! [`crate::git`].

mod audit;
mod backend;
mod connection;
mod manual;
mod mcp;
mod milestones;
mod pictures;
mod project;
mod scale;
mod tasks;
mod transfer;
mod watch;

use crate::args::{AuditCommand, Cli, Command, GitCommand};
use crate::render::Output;
use crate::{daemon, exit, git, init, locate, Failure};

/// Runs one command and returns its exit code: 0, or
/// [`crate::exit::PROBLEMS_FOUND`] when a check found problems.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    let json = cli.json;
    if let Command::Version = cli.command {
        return connection::version(&cli);
    }
    if let Command::Init { .. } = cli.command {
        return init::run(&cli);
    }
    if let Command::Completions { shell } = &cli.command {
        return manual::completions(shell);
    }
    if let Command::Man = cli.command {
        return manual::man_page();
    }
    if let Command::MergeDriver { base, ours, theirs, path } = &cli.command {
        return git::merge_driver(base, ours, theirs, path.as_deref());
    }
    let target = locate(&cli)?;
    if let Command::Git(GitCommand::Setup) = &cli.command {
        return git::setup(&target.root, &Output { json });
    }
    if let Command::Daemon(command) = &cli.command {
        return daemon::run(&cli, command, &target);
    }
    let client = &mut daemon::connect(&target, &cli)?;
    let out = &Output { json };
    match cli.command {
        Command::Init { .. }
        | Command::Version
        | Command::Daemon(_)
        | Command::MergeDriver { .. }
        | Command::Git(_)
        | Command::Completions { .. }
        | Command::Man => {
            unreachable!("handled above")
        }
        Command::Ping => connection::ping(client, out),
        Command::Create { title, id, status, priority, category, description, requires, from_file } => {
            milestones::create(client, out, title, id, status, priority, category, description, requires, from_file)
        }
        Command::Get { id } => milestones::get(client, out, id),
        Command::List { selection, sort, limit, offset } => {
            let all = selection.all;
            milestones::list(client, out, selection.filters()?, sort, limit, offset, all)
        }
        Command::Search { words, limit } => milestones::search(client, out, words, limit),
        Command::Update { id, set, from_file } => milestones::update(client, out, id, set, from_file),
        Command::Delete { id, purge } => milestones::delete(client, out, id, purge),
        Command::Complete { id } => milestones::complete(client, out, id),
        Command::Task(task) => tasks::run(client, out, task),
        Command::Audit(AuditCommand::Verify) => audit::verify(client, out),
        Command::Deps { id, format, .. } if format != "text" => pictures::deps(client, id, &format),
        Command::Deps { id, check, .. } => project::deps(client, out, id, check),
        Command::Board => pictures::board(client, out),
        Command::Import { file, partial, replace } => transfer::import(client, out, &file, partial, replace),
        Command::Export { format, out: path, selection } => {
            let all = selection.all;
            transfer::export(client, &format, path, selection.filters()?, all)
        }
        Command::Mcp => mcp::serve(client),
        Command::Ready { tasks, page } => project::work(client, out, tasks, false, page),
        Command::Blocked { tasks, page } => project::work(client, out, tasks, true, page),
        Command::Validate { id, all } => project::validate(client, out, id, all),
        Command::Upgrade { id, all } => project::upgrade(client, out, id, all),
        Command::Stats => project::stats(client, out),
        Command::Backend => backend::backend(client, out),
        Command::Migrate { target, .. } if target == "history" => backend::history(client, out),
        Command::Migrate { target, .. } if target == "status" => backend::migration_status(client, out),
        Command::Migrate { target, discard_changes, .. } if target == "rollback" => {
            backend::rollback(client, out, discard_changes)
        }
        Command::Migrate { discard_changes: true, .. } => {
            Err(Failure::new(exit::USAGE, "--discard-changes goes with `msctl migrate rollback` only"))
        }
        Command::Migrate { target, database, url, dry_run, .. } => {
            backend::migrate(client, out, &target, database, url, dry_run)
        }
        Command::Health => backend::health(client, out),
        Command::Scale => scale::scale(client, out),
        Command::Watch { id, status, kind } => watch::run(client, out, id, status, kind),
    }
}
