//! The milestone document's rules (DESIGN §4): ids, statuses, priorities,
//! where a document lives, dotted-path edits, tasks and derived progress.
//!
//! Documents stay [`Map`]s so that fields this code does not know survive
//! untouched; these functions read and write only the fields they own.

use std::sync::Arc;

use milestones_protocol::{Map, Value};

/// A stored document: shared, immutable, cheap to hand to many readers.
pub type Doc = Arc<Map>;

/// A document or an id that breaks the rules of DESIGN §4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("invalid id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str, field: &'static str },
    #[error("{message}")]
    Invalid { message: String, field: Option<String> },
    /// Over one of the size limits (`document_limits`).
    #[error("{message}")]
    TooLarge { message: String, field: Option<String> },
}

impl DocumentError {
    pub fn invalid(message: impl Into<String>) -> Self {
        DocumentError::Invalid { message: message.into(), field: None }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        DocumentError::Invalid { message: message.into(), field: Some(field.into()) }
    }

    /// The document field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            DocumentError::InvalidId { field, .. } => Some(field),
            DocumentError::Invalid { field, .. } | DocumentError::TooLarge { field, .. } => field.as_deref(),
        }
    }
}

impl From<crate::yaml::YamlError> for DocumentError {
    fn from(e: crate::yaml::YamlError) -> Self {
        DocumentError::invalid(e.0)
    }
}

pub type DocumentResult<T> = Result<T, DocumentError>;

/// A milestone's status (DESIGN §4). Documents keep it as text; code reads
/// it through [`status`] and compares enums, never strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Planning,
    InProgress,
    Blocked,
    Completed,
    Cancelled,
    Archived,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Planning, Status::InProgress, Status::Blocked, Status::Completed, Status::Cancelled, Status::Archived];

    /// The name documents, queries and the wire use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Planning => "planning",
            Status::InProgress => "in_progress",
            Status::Blocked => "blocked",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Archived => "archived",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Completed, cancelled and archived milestones live in `completed/`.
    pub fn folder(self) -> Folder {
        match self {
            Status::Completed | Status::Cancelled | Status::Archived => Folder::Completed,
            _ => Folder::Active,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Status> for Value {
    fn from(status: Status) -> Value {
        Value::from(status.as_str())
    }
}

pub const STATUSES: [&str; 6] = [
    Status::ALL[0].as_str(),
    Status::ALL[1].as_str(),
    Status::ALL[2].as_str(),
    Status::ALL[3].as_str(),
    Status::ALL[4].as_str(),
    Status::ALL[5].as_str(),
];
pub const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
pub const TASK_STATUSES: &[&str] = &["pending", "in_progress", "blocked", "completed", "cancelled"];

/// Key order for documents the daemon writes from scratch.
pub const CANONICAL_ORDER: &[&str] = &[
    "id",
    "title",
    "description",
    "status",
    "priority",
    "category",
    "created_at",
    "updated_at",
    "completed_at",
    "timeline",
    "progress",
    "tasks",
    "dependencies",
];

/// Which folder of `.milestones/` a document belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folder {
    Active,
    Completed,
}

impl Folder {
    /// The folder a document's status files it in (`active/` when it has
    /// none).
    pub fn of(doc: &Map) -> Folder {
        status(doc).map_or(Folder::Active, Status::folder)
    }

    pub fn other(self) -> Folder {
        match self {
            Folder::Active => Folder::Completed,
            Folder::Completed => Folder::Active,
        }
    }

    /// The folder's name under `.milestones/`.
    pub fn name(self) -> &'static str {
        match self {
            Folder::Active => "active",
            Folder::Completed => "completed",
        }
    }
}

/// Checks an id against DESIGN §4: 1–128 characters of `[A-Za-z0-9._-]`, not
/// starting with `.`. Runs before an id comes anywhere near a path.
pub fn validate_id(id: &str, field: &'static str) -> DocumentResult<()> {
    let reason = if id.is_empty() {
        "an id cannot be empty"
    } else if id.len() > 128 {
        "an id is at most 128 characters"
    } else if id.starts_with('.') {
        "an id cannot start with `.`"
    } else if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        "an id may only contain letters, digits, `.`, `_` and `-`"
    } else {
        return Ok(());
    };
    Err(DocumentError::InvalidId { id: id.to_owned(), reason, field })
}

pub fn id(doc: &Map) -> Option<&str> {
    doc.get("id").and_then(Value::as_str)
}

/// The document's status; `None` when it has none or one that is not a
/// status (a written document always has a valid one: see
/// [`check_core_fields`]).
pub fn status(doc: &Map) -> Option<Status> {
    doc.get("status").and_then(Value::as_str).and_then(Status::parse)
}

/// Checks the fields whose values the daemon depends on: a status it can file
/// by, a priority it can rank, a title people can read.
pub fn check_core_fields(doc: &Map) -> DocumentResult<()> {
    match doc.get("title") {
        Some(Value::String(t)) if !t.trim().is_empty() => {}
        Some(Value::String(_)) | None => {
            return Err(DocumentError::invalid_field("title", "a milestone needs a title"))
        }
        Some(other) => {
            return Err(DocumentError::invalid_field(
                "title",
                format!("title must be text, not a {}", other.type_name()),
            ))
        }
    }
    check_choice(doc, "status", &STATUSES)?;
    check_choice(doc, "priority", PRIORITIES)?;
    if let Some(deps) = doc.get("dependencies") {
        let Some(deps) = deps.as_map() else {
            return Err(DocumentError::invalid_field("dependencies", "dependencies must be a mapping"));
        };
        for key in ["requires", "enables"] {
            for dep in id_list(deps.get(key), &format!("dependencies.{key}"))? {
                validate_id(dep, "dependencies")?;
            }
        }
    }
    Ok(())
}

fn check_choice(doc: &Map, field: &str, allowed: &[&str]) -> DocumentResult<()> {
    match doc.get(field) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(other) => Err(DocumentError::invalid_field(
            field,
            format!("{field} must be one of {}, not {}", allowed.join(", "), describe(other)),
        )),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("a {}", other.type_name()),
    }
}

/// Reads a list of ids (`dependencies.requires`): absent or null is empty.
pub fn id_list<'a>(value: Option<&'a Value>, field: &str) -> DocumentResult<Vec<&'a str>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| DocumentError::invalid_field(field, format!("{field} must be a list of ids")))
            })
            .collect(),
        Some(_) => Err(DocumentError::invalid_field(field, format!("{field} must be a list of ids"))),
    }
}

/// The ids this document says it requires (`dependencies.requires`),
/// ignoring malformed entries (validation reports those).
pub fn requires(doc: &Map) -> impl Iterator<Item = &str> {
    dep_ids(doc, "requires")
}

/// The ids this document says it enables (they require it).
pub fn enables(doc: &Map) -> impl Iterator<Item = &str> {
    dep_ids(doc, "enables")
}

fn dep_ids<'a>(doc: &'a Map, key: &str) -> impl Iterator<Item = &'a str> {
    doc.get("dependencies")
        .and_then(Value::as_map)
        .and_then(|d| d.get(key))
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
}

/// Sets a dotted path, creating mappings on the way. Numeric segments index
/// into lists (`tasks.0.title`).
pub fn set_path(doc: &mut Map, path: &str, value: Value) -> DocumentResult<()> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(DocumentError::invalid_field(path, format!("`{path}` is not a valid dotted path")));
    }
    set_in_map(doc, &segments, value, path)
}

fn set_in_map(map: &mut Map, segments: &[&str], value: Value, path: &str) -> DocumentResult<()> {
    let Some((first, rest)) = segments.split_first() else { return Ok(()) };
    if rest.is_empty() {
        map.insert(*first, value);
        return Ok(());
    }
    if map.get(first).is_none_or(Value::is_null) {
        map.insert(*first, Value::Map(Map::new()));
    }
    match map.get_mut(first) {
        Some(next) => set_in_value(next, rest, value, path),
        None => Ok(()),
    }
}

fn set_in_value(target: &mut Value, segments: &[&str], value: Value, path: &str) -> DocumentResult<()> {
    match target {
        Value::Map(m) => set_in_map(m, segments, value, path),
        Value::List(items) => {
            let len = items.len();
            let idx = segments[0].parse::<usize>().ok().filter(|i| *i < len).ok_or_else(|| {
                DocumentError::invalid_field(
                    path,
                    format!("cannot set `{path}`: `{}` is not an index into a list of {len} items", segments[0]),
                )
            })?;
            if segments.len() == 1 {
                items[idx] = value;
                Ok(())
            } else {
                set_in_value(&mut items[idx], &segments[1..], value, path)
            }
        }
        other => Err(DocumentError::invalid_field(
            path,
            format!("cannot set `{path}`: a {} has no field `{}`", other.type_name(), segments[0]),
        )),
    }
}

/// The id `TaskAdd` gives a new task: the first free `task-N`, counting on
/// from the tasks there are.
pub fn new_task_id(existing: &[String]) -> String {
    (existing.len() + 1..).map(|n| format!("task-{n}")).find(|c| !existing.contains(c)).unwrap_or_default()
}

/// Gives each task a request brought without an id (tasks inside a
/// `Create`, a replacement document, a `--set tasks=...`) an id, `task-N`
/// for the N-th task unless another task has that one, and `pending` as
/// its status when it has none, so that what a request stores always
/// passes `validate`. Files edited by hand are left as written.
pub fn fill_task_defaults(doc: &mut Map) {
    let Some(Value::List(tasks)) = doc.get_mut("tasks") else { return };
    // Every write passes here: the usual case, nothing missing, copies no ids.
    let missing =
        |t: &Value| t.as_map().is_some_and(|t| ["id", "status"].iter().any(|k| t.get(k).is_none_or(Value::is_null)));
    if !tasks.iter().any(missing) {
        return;
    }
    let mut existing: Vec<String> =
        tasks.iter().filter_map(|t| t.as_map()?.get("id")?.as_str().map(str::to_owned)).collect();
    for (position, task) in tasks.iter_mut().enumerate() {
        let Some(task) = task.as_map_mut() else { continue };
        if task.get("id").is_none_or(Value::is_null) {
            let id = (position + 1..).map(|n| format!("task-{n}")).find(|c| !existing.contains(c)).unwrap_or_default();
            task.insert("id", Value::from(id.as_str()));
            task.reorder(&["id"]);
            existing.push(id);
        }
        if task.get("status").is_none_or(Value::is_null) {
            task.insert("status", Value::from("pending"));
        }
    }
}

/// Keeps `progress` consistent with `tasks`. With no tasks, a percentage the
/// user set by hand is left alone (that is how milestones without tasks
/// record progress).
pub fn derive_progress(doc: &mut Map, now: &str) {
    let (total, done) = match doc.get("tasks").and_then(Value::as_list) {
        Some(tasks) if !tasks.is_empty() => {
            let done = tasks
                .iter()
                .filter(|t| t.as_map().and_then(|m| m.get("status")).and_then(Value::as_str) == Some("completed"))
                .count();
            (tasks.len() as i64, done as i64)
        }
        _ => return,
    };
    let percentage = (done * 100 + total / 2) / total;
    let progress = match doc.get_mut("progress") {
        Some(Value::Map(m)) => m,
        _ => {
            doc.insert("progress", Value::Map(Map::new()));
            doc.get_mut("progress").and_then(Value::as_map_mut).expect("just inserted")
        }
    };
    let changed = progress.get("percentage") != Some(&Value::Int(percentage))
        || progress.get("tasks_completed") != Some(&Value::Int(done))
        || progress.get("total_tasks") != Some(&Value::Int(total));
    progress.insert("percentage", Value::Int(percentage));
    progress.insert("tasks_completed", Value::Int(done));
    progress.insert("total_tasks", Value::Int(total));
    if changed {
        progress.insert("last_update", Value::from(now));
    }
}

/// A document's content hash: SHA-256 of its JSON, keys in order (a
/// migration's check of every record, an export's manifest). A document
/// that cannot be written as JSON hashes as its error, which matches
/// nothing a stored copy can hash to.
pub fn fingerprint(doc: &Map) -> String {
    let json = serde_json::to_vec(doc).unwrap_or_else(|e| format!("unhashable: {e}").into_bytes());
    sha256_hex(&json)
}

/// The SHA-256 of `bytes`, in lower-case hex (a file's or a document's
/// content hash).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    text
}

/// The current time as the documents write it: RFC 3339, UTC, seconds.
pub fn now_timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Map {
        crate::yaml::parse_document(yaml, "test").unwrap()
    }

    #[test]
    fn hostile_ids_are_refused_with_a_reason() {
        for bad in ["", "../x", "a/b", ".hidden", "a\0b", &"x".repeat(129), "white space"] {
            assert!(validate_id(bad, "id").is_err(), "{bad:?} was accepted");
        }
        for good in ["milestone-042", "v1.2_rc", &"x".repeat(128)] {
            validate_id(good, "id").unwrap();
        }
    }

    #[test]
    fn set_path_creates_parents_and_indexes_lists() {
        let mut d = doc("title: t\ntasks:\n  - id: a\n    status: pending\n");
        set_path(&mut d, "progress.percentage", Value::Int(40)).unwrap();
        set_path(&mut d, "tasks.0.status", Value::from("completed")).unwrap();
        let v = Value::Map(d.clone());
        assert_eq!(v.pointer("progress.percentage"), Some(&Value::Int(40)));
        assert_eq!(v.pointer("tasks.0.status"), Some(&Value::from("completed")));
        assert!(set_path(&mut d, "title.sub", Value::Null).is_err());
        assert!(set_path(&mut d, "tasks.7.status", Value::Null).is_err());
        assert!(set_path(&mut d, "a..b", Value::Null).is_err());
    }

    #[test]
    fn progress_follows_tasks_and_leaves_taskless_progress_alone() {
        let mut d =
            doc("tasks:\n  - {id: a, status: completed}\n  - {id: b, status: pending}\n  - {id: c, status: pending}\n");
        derive_progress(&mut d, "now");
        let v = Value::Map(d);
        assert_eq!(v.pointer("progress.percentage"), Some(&Value::Int(33)));
        assert_eq!(v.pointer("progress.tasks_completed"), Some(&Value::Int(1)));
        assert_eq!(v.pointer("progress.total_tasks"), Some(&Value::Int(3)));

        let mut d = doc("progress: {percentage: 40}\ntasks: []\n");
        derive_progress(&mut d, "now");
        assert_eq!(Value::Map(d).pointer("progress.percentage"), Some(&Value::Int(40)));
    }
}
