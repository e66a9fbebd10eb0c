//! What people type, read into protocol values: documents from a file or
//! standard input, `PATH=VALUE` assignments, `--where` filters, `--sort`
//! keys, `ID`/`--all` targets, backend names and `watch --kind` names.

use milestones_client::protocol::{
    Assignment, BackendTarget, DatabaseKind, EventKind, Filter, FilterOp, SortKey, Target, Value,
};

use crate::{exit, Failure};

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &std::path::Path) -> Result<String, Failure> {
    let text =
        if path.as_os_str() == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) };
    text.map_err(|e| Failure::new(exit::FAILURE, format!("cannot read {}: {e}", path.display())))
}

/// `PATH=VALUE`, the value read as YAML (so `40` is a number, `true` a
/// boolean, `[a, b]` a list and anything else text).
pub fn parse_assignment(arg: &str) -> Result<Assignment, Failure> {
    let (path, raw) =
        arg.split_once('=').ok_or_else(|| Failure::new(exit::USAGE, format!("`{arg}` is not PATH=VALUE")))?;
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
pub fn parse_filter(arg: &str) -> Result<Filter, Failure> {
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
        .ok_or_else(|| {
            Failure::new(exit::USAGE, format!("`{arg}` is not a filter (PATH=VALUE, PATH>VALUE, PATH~TEXT, ...)"))
        })?;
    let path = &arg[..pos];
    let raw = &arg[pos + token.len()..];
    let value = if op == FilterOp::Contains { Value::String(raw.to_owned()) } else { parse_scalar(path, raw)? };
    Ok(Filter { path: path.to_owned(), op, value })
}

/// The filters of `--status`, `--priority`, `--category` and each
/// `--where` (for `list`, `export`, and the MCP server's `list`).
pub fn selection(
    status: Option<String>,
    priority: Option<String>,
    category: Option<String>,
    wheres: &[String],
) -> Result<Vec<Filter>, Failure> {
    let mut filters = Vec::new();
    for (path, value) in [("status", status), ("priority", priority), ("category", category)] {
        if let Some(v) = value {
            filters.push(Filter { path: path.into(), op: FilterOp::Eq, value: Value::String(v) });
        }
    }
    for filter in wheres {
        filters.push(parse_filter(filter)?);
    }
    Ok(filters)
}

/// `FIELD` sorts ascending, `-FIELD` descending; comma-separated keys.
pub fn parse_sort(arg: Option<&str>) -> Vec<SortKey> {
    arg.unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('-') {
            Some(path) => SortKey { path: path.to_owned(), descending: true },
            None => SortKey { path: s.to_owned(), descending: false },
        })
        .collect()
}

/// `ID` or `--all`, exactly one of them, for `command`.
pub fn target_of(id: Option<String>, all: bool, command: &str) -> Result<Target, Failure> {
    match (id, all) {
        (Some(id), false) => Ok(Target::One(id)),
        (None, true) => Ok(Target::All),
        _ => Err(Failure::new(exit::USAGE, format!("{command} needs exactly one of ID or --all"))),
    }
}

/// The protocol's name for a backend given on the command line.
pub fn backend_target(backend: &str, database: Option<&str>) -> Result<BackendTarget, Failure> {
    let kind = match database {
        None | Some("sqlite") => DatabaseKind::Sqlite,
        Some("postgresql") => DatabaseKind::Postgresql,
        Some(other) => {
            return Err(Failure::new(exit::USAGE, format!("unknown database `{other}` (known: sqlite, postgresql)")))
        }
    };
    match (backend, database) {
        ("database", _) => Ok(BackendTarget::Database(kind)),
        (_, Some(_)) => Err(Failure::new(exit::USAGE, "--database goes with the database backend only")),
        ("file", None) => Ok(BackendTarget::File),
        ("hybrid", None) => Ok(BackendTarget::Hybrid),
        (other, None) => {
            Err(Failure::new(exit::USAGE, format!("unknown backend `{other}` (known: file, hybrid, database)")))
        }
    }
}

/// The kind of change a `watch --kind` name stands for.
pub fn event_kind(name: &str) -> EventKind {
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
