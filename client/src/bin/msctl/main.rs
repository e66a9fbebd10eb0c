//! `msctl`: the milestone command line. Every command is one or a few
//! requests to the project's `milestoned`; people get tables and sentences,
//! scripts get exact JSON (`--json`) and the exit codes of DESIGN §8.

mod args;
mod daemon;
mod init;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use milestones_client::protocol::{
    Assignment, BackendTarget, Change, DatabaseKind, EventFilter, EventKind, ServerMessage, DocumentInput, ErrorKind, Filter, FilterOp, Map, NewTask, Query, Request, Response, Severity,
    SortKey, Target, Value, PROTOCOL_VERSION,
};
use milestones_client::{find_root, Client, ClientError};

use crate::args::{Cli, Command, TaskCommand};

/// Exit codes scripts can rely on (also in the README).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const INVALID: u8 = 4;
    pub const PROBLEMS_FOUND: u8 = 5;
    pub const NO_DAEMON: u8 = 6;
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
                    _ => exit::FAILURE,
                };
                Failure { code, message: info.message, kind: Some(info.kind), field: info.field }
            }
            e @ (ClientError::NoDaemon { .. } | ClientError::Rejected(_)) => Failure::new(exit::NO_DAEMON, e.to_string()),
            other => Failure::new(exit::FAILURE, other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
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

fn locate(cli: &Cli) -> Result<DaemonAddress, Failure> {
    let root = find_root(cli.root.as_deref()).map_err(|m| Failure::new(exit::FAILURE, m))?;
    let socket = cli.socket.clone().unwrap_or_else(|| milestones_client::protocol::socket_path::default_socket_path(&root));
    Ok(DaemonAddress { root, socket })
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let json = cli.json;
    if let Command::Version = cli.command {
        return version(&cli);
    }
    if let Command::Init { .. } = cli.command {
        return init::run(&cli);
    }
    let target = locate(&cli)?;
    if let Command::Daemon(command) = &cli.command {
        return daemon::run(&cli, command, &target);
    }
    let mut client = daemon::connect(&target, &cli)?;
    let out = render::Output { json };
    match cli.command {
        Command::Init { .. } | Command::Version | Command::Daemon(_) => unreachable!("handled above"),
        Command::Ping => {
            let started = std::time::Instant::now();
            let reply = client.request(Request::Ping)?;
            let elapsed = started.elapsed();
            if let Response::Pong { daemon_version, uptime_ms } = reply {
                let w = client.welcome();
                out.print_json_or(
                    &serde_json::json!({ "daemon_version": daemon_version, "pid": w.pid, "uptime_ms": uptime_ms, "round_trip_us": elapsed.as_micros() as u64 }),
                    || format!("pong from milestoned {daemon_version} (pid {}) in {:.2} ms", w.pid, elapsed.as_secs_f64() * 1e3),
                );
            }
        }
        Command::Create { title, id, status, priority, category, description, requires, from_file } => {
            let input = match from_file {
                Some(path) => DocumentInput::Yaml(read_input(&path)?),
                None => {
                    let title = title.ok_or_else(|| Failure::new(exit::USAGE, "create needs --title or --from-file"))?;
                    let mut doc = Map::new();
                    let fields = [("id", id), ("title", Some(title)), ("description", description), ("status", status), ("priority", priority), ("category", category)];
                    for (key, value) in fields {
                        if let Some(v) = value {
                            doc.insert(key, Value::String(v));
                        }
                    }
                    if !requires.is_empty() {
                        let mut deps = Map::new();
                        deps.insert("requires", Value::List(requires.into_iter().map(Value::String).collect()));
                        doc.insert("dependencies", Value::Map(deps));
                    }
                    DocumentInput::Fields(Value::Map(doc))
                }
            };
            let doc = expect_document(client.request(Request::Create { input })?)?;
            out.document_id(&doc);
        }
        Command::Get { id } => {
            let doc = expect_document(client.request(Request::Get { id })?)?;
            out.document(&doc);
        }
        Command::List { status, priority, category, filter, sort, limit, offset, all } => {
            let mut filters = Vec::new();
            for (path, value) in [("status", status), ("priority", priority), ("category", category)] {
                if let Some(v) = value {
                    filters.push(Filter { path: path.into(), op: FilterOp::Eq, value: Value::String(v) });
                }
            }
            for f in filter {
                filters.push(parse_filter(&f)?);
            }
            let query = Query { filters, text: None, sort: parse_sort(sort.as_deref()), include_archived: all, limit, offset };
            match client.request(Request::List { query })? {
                Response::Page(page) => out.page(&page),
                other => return Err(unexpected(other)),
            }
        }
        Command::Search { words, limit } => {
            let query = Query { text: Some(words.join(" ")), limit, ..Query::default() };
            match client.request(Request::List { query })? {
                Response::Page(page) => out.page(&page),
                other => return Err(unexpected(other)),
            }
        }
        Command::Update { id, set, from_file } => {
            let change = match from_file {
                Some(path) => Change::Replace(DocumentInput::Yaml(read_input(&path)?)),
                None if set.is_empty() => return Err(Failure::new(exit::USAGE, "update needs --set PATH=VALUE or --from-file")),
                None => Change::Set(set.iter().map(|s| parse_assignment(s)).collect::<Result<_, _>>()?),
            };
            let doc = expect_document(client.request(Request::Update { id, change })?)?;
            out.changed(&doc, "updated");
        }
        Command::Delete { id, purge } => match client.request(Request::Delete { id, purge })? {
            Response::Deleted { id, purged } => out.print_json_or(
                &serde_json::json!({ "id": id, "purged": purged }),
                || if purged { format!("{id} deleted for good") } else { format!("{id} archived (moved to completed/)") },
            ),
            other => return Err(unexpected(other)),
        },
        Command::Complete { id } => {
            let doc = expect_document(client.request(Request::Complete { id })?)?;
            out.changed(&doc, "completed");
        }
        Command::Task(task) => {
            let (request, verb) = match task {
                TaskCommand::Add { milestone, title, id, depends_on } => {
                    (Request::TaskAdd { milestone, task: NewTask { id, title, depends_on } }, "task added to")
                }
                TaskCommand::Start { milestone, task } => {
                    (Request::TaskSetStatus { milestone, task, status: "in_progress".into() }, "task started in")
                }
                TaskCommand::Done { milestone, task } => {
                    (Request::TaskSetStatus { milestone, task, status: "completed".into() }, "task done in")
                }
            };
            let doc = expect_document(client.request(request)?)?;
            out.changed(&doc, verb);
        }
        Command::Deps { id, check } => match client.request(Request::Deps { id })? {
            Response::Deps(report) => {
                out.deps(&report);
                if check && (!report.cycles.is_empty() || !report.missing.is_empty()) {
                    return Ok(exit::PROBLEMS_FOUND);
                }
            }
            other => return Err(unexpected(other)),
        },
        Command::Validate { id, all } => {
            let target = target_of(id, all, "validate")?;
            match client.request(Request::Validate { target })? {
                Response::Validation(report) => {
                    out.validation(&report);
                    if report.problems.iter().any(|p| p.severity == Severity::Error) {
                        return Ok(exit::PROBLEMS_FOUND);
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
        Command::Health => {
            let Response::Status(status) = client.request(Request::Status)? else { return Err(Failure::new(exit::FAILURE, "unexpected answer to Status")) };
            let report = match client.request(Request::Validate { target: Target::All })? {
                Response::Validation(report) => report,
                other => return Err(unexpected(other)),
            };
            let errors = report.problems.iter().filter(|p| p.severity == Severity::Error).count();
            let mut advice = Vec::new();
            let broken_files = report.problems.iter().filter(|p| p.severity == Severity::Error && p.file.is_some()).count();
            if broken_files > 0 {
                advice.push(format!("fix or remove the {broken_files} file(s) that do not load; their last good versions are served meanwhile"));
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
        }
        Command::Upgrade { id, all } => {
            let target = target_of(id, all, "upgrade")?;
            match client.request(Request::Upgrade { target })? {
                Response::Upgraded(outcomes) => out.upgraded(&outcomes),
                other => return Err(unexpected(other)),
            }
        }
        Command::Stats => match client.request(Request::Stats)? {
            Response::Stats(stats) => out.stats(&stats),
            other => return Err(unexpected(other)),
        },
        Command::Backend => match client.request(Request::Backend)? {
            Response::Backend(info) => out.backend(&info),
            other => return Err(unexpected(other)),
        },
        Command::Watch { ref id, ref status, ref kind } => {
            let filter = EventFilter { ids: id.clone(), statuses: status.clone(), kinds: kind.iter().map(|k| event_kind(k)).collect() };
            client.subscribe(filter)?;
            loop {
                match client.next_event()? {
                    ServerMessage::Event(event) => out.event(&event),
                    ServerMessage::Lagged { missed } => out.lagged(missed),
                    ServerMessage::Reply { .. } => {}
                }
            }
        }
        Command::Migrate { ref target, ref database } => {
            let target = backend_target(target, database.as_deref())?;
            match client.request(Request::Migrate { target })? {
                Response::Migrated(report) => out.migrated(&report),
                other => return Err(unexpected(other)),
            }
        }
    }
    Ok(0)
}

fn event_kind(name: &str) -> EventKind {
    match name {
        "created" => EventKind::Created,
        "moved" => EventKind::Moved,
        "deleted" => EventKind::Deleted,
        "invalid" => EventKind::Invalid,
        "migration_started" => EventKind::MigrationStarted,
        "migration_finished" => EventKind::MigrationFinished,
        // clap allows only the names above.
        _ => EventKind::Updated,
    }
}

/// The protocol's name for a backend given on the command line.
pub fn backend_target(backend: &str, database: Option<&str>) -> Result<BackendTarget, Failure> {
    let kind = match database {
        None | Some("sqlite") => DatabaseKind::Sqlite,
        Some(other) => return Err(Failure::new(exit::USAGE, format!("unknown database `{other}` (known: sqlite)"))),
    };
    match (backend, database) {
        ("database", _) => Ok(BackendTarget::Database(kind)),
        (_, Some(_)) => Err(Failure::new(exit::USAGE, "--database goes with the database backend only")),
        ("file", None) => Ok(BackendTarget::File),
        ("hybrid", None) => Ok(BackendTarget::Hybrid),
        (other, None) => Err(Failure::new(exit::USAGE, format!("unknown backend `{other}` (known: file, hybrid, database)"))),
    }
}

fn version(cli: &Cli) -> Result<u8, Failure> {
    let mine = env!("CARGO_PKG_VERSION");
    let daemon = locate(cli).ok().and_then(|t| Client::connect(&t.socket, "msctl").ok().map(|c| (t, c.welcome().clone())));
    let out = render::Output { json: cli.json };
    out.print_json_or(
        &serde_json::json!({
            "msctl": mine,
            "protocol": PROTOCOL_VERSION,
            "daemon": daemon.as_ref().map(|(t, w)| serde_json::json!({ "version": w.daemon_version, "protocol": w.protocol_version, "pid": w.pid, "socket": t.socket })),
        }),
        || match &daemon {
            Some((t, w)) => format!(
                "msctl {mine} (protocol {PROTOCOL_VERSION})\nmilestoned {} (protocol {}, pid {}) at {}",
                w.daemon_version,
                w.protocol_version,
                w.pid,
                t.socket.display()
            ),
            None => format!("msctl {mine} (protocol {PROTOCOL_VERSION})\nmilestoned: not running"),
        },
    );
    Ok(0)
}

fn target_of(id: Option<String>, all: bool, command: &str) -> Result<Target, Failure> {
    match (id, all) {
        (Some(id), false) => Ok(Target::One(id)),
        (None, true) => Ok(Target::All),
        _ => Err(Failure::new(exit::USAGE, format!("{command} needs exactly one of ID or --all"))),
    }
}

fn expect_document(response: Response) -> Result<Map, Failure> {
    match response {
        Response::Document(Value::Map(doc)) => Ok(doc),
        other => Err(unexpected(other)),
    }
}

fn unexpected(response: Response) -> Failure {
    Failure::new(exit::FAILURE, format!("unexpected reply from milestoned: {response:?}"))
}

/// Reads a file, or standard input for `-`.
fn read_input(path: &std::path::Path) -> Result<String, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    text.map_err(|e| Failure::new(exit::FAILURE, format!("cannot read {}: {e}", path.display())))
}

/// `PATH=VALUE`, the value read as YAML (so `40` is a number, `true` a
/// boolean, `[a, b]` a list and anything else text).
fn parse_assignment(arg: &str) -> Result<Assignment, Failure> {
    let (path, raw) = arg
        .split_once('=')
        .ok_or_else(|| Failure::new(exit::USAGE, format!("`{arg}` is not PATH=VALUE")))?;
    if path.is_empty() {
        return Err(Failure::new(exit::USAGE, format!("`{arg}` has no PATH before `=`")));
    }
    Ok(Assignment { path: path.to_owned(), value: parse_scalar(path, raw)? })
}

fn parse_scalar(path: &str, raw: &str) -> Result<Value, Failure> {
    serde_norway::from_str::<Value>(raw).map_err(|e| {
        Failure::new(exit::INVALID, format!("the value for `{path}` is not valid YAML ({e}); quote it to make it text"))
    })
}

/// `PATH=VALUE`, `PATH!=VALUE`, `PATH>VALUE`, `PATH>=VALUE`, `PATH<VALUE`,
/// `PATH<=VALUE`, `PATH~TEXT` (contains).
fn parse_filter(arg: &str) -> Result<Filter, Failure> {
    const OPS: &[(&str, FilterOp)] = &[
        ("!=", FilterOp::Ne),
        (">=", FilterOp::Ge),
        ("<=", FilterOp::Le),
        ("=", FilterOp::Eq),
        (">", FilterOp::Gt),
        ("<", FilterOp::Lt),
        ("~", FilterOp::Contains),
    ];
    let (pos, token, op) = OPS
        .iter()
        .filter_map(|(token, op)| arg.find(token).map(|pos| (pos, *token, *op)))
        .min_by_key(|(pos, token, _)| (*pos, std::cmp::Reverse(token.len())))
        .ok_or_else(|| Failure::new(exit::USAGE, format!("`{arg}` is not a filter (PATH=VALUE, PATH>VALUE, PATH~TEXT, ...)")))?;
    let path = &arg[..pos];
    let raw = &arg[pos + token.len()..];
    let value = if op == FilterOp::Contains { Value::String(raw.to_owned()) } else { parse_scalar(path, raw)? };
    Ok(Filter { path: path.to_owned(), op, value })
}

/// `FIELD` sorts ascending, `-FIELD` descending; comma-separated keys.
fn parse_sort(arg: Option<&str>) -> Vec<SortKey> {
    arg.unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('-') {
            Some(path) => SortKey { path: path.to_owned(), descending: true },
            None => SortKey { path: s.to_owned(), descending: false },
        })
        .collect()
}
