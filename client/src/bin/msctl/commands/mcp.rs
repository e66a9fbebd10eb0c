//! `msctl mcp`: a Model Context Protocol server on standard input and
//! output, so that coding agents work with milestones as tools. Each tool
//! is one request to the project's daemon, like any other command.
//!
//! MCP over stdio is JSON-RPC 2.0, one message per line. A server that
//! offers tools needs `initialize`, `tools/list`, `tools/call` and `ping`;
//! that small a protocol is written here over serde_json rather than
//! bringing an async runtime into `msctl` for an SDK.
//!
//! Calls with arguments of the wrong shape, and unknown tools, are
//! JSON-RPC errors; a tool the daemon refuses (a milestone that does not
//! exist, a value that breaks the rules) is a result with `isError` and
//! the daemon's message, which is what MCP clients show the model.

use std::io::{BufRead, Write};

use milestones_client::protocol::{Assignment, Change, DocumentInput, Map, NewTask, Query, Request, Response, Value};
use milestones_client::Client;
use serde_json::{json, Value as Json};

use crate::input::{parse_sort, selection};
use crate::{exit, Failure};

/// The protocol versions this server speaks, newest first.
const VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC's error codes.
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const PARSE_ERROR: i64 = -32700;

/// How many `ready` or `blocked` items a call gets unless it says.
const WORK_PAGE: u64 = 50;

/// Serves until standard input closes.
pub fn serve(client: &mut Client) -> Result<u8, Failure> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| Failure::new(exit::FAILURE, format!("cannot read standard input: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let Some(reply) = answer(client, &line) else { continue };
        writeln!(stdout, "{reply}")
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::new(exit::FAILURE, format!("cannot write standard output: {e}")))?;
    }
    Ok(0)
}

/// The reply to one message; `None` for a notification.
fn answer(client: &mut Client, line: &str) -> Option<Json> {
    let message: Json = match serde_json::from_str(line) {
        Ok(message) => message,
        Err(e) => return Some(error(Json::Null, PARSE_ERROR, &format!("not JSON: {e}"))),
    };
    let id = message.get("id").cloned()?;
    let params = message.get("params").cloned().unwrap_or(Json::Null);
    let result = match message.get("method").and_then(Json::as_str) {
        Some("initialize") => Ok(initialize(&params)),
        Some("ping") => Ok(json!({})),
        Some("tools/list") => Ok(json!({ "tools": tools() })),
        Some("tools/call") => call(client, &params),
        Some(other) => Err((METHOD_NOT_FOUND, format!("no method `{other}`"))),
        None => Err((INVALID_PARAMS, "a request needs a `method`".to_owned())),
    };
    Some(match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err((code, message)) => error(id, code, &message),
    })
}

fn error(id: Json, code: i64, message: &str) -> Json {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

fn initialize(params: &Json) -> Json {
    let asked = params.get("protocolVersion").and_then(Json::as_str);
    let version = VERSIONS.iter().find(|v| Some(**v) == asked).unwrap_or(&VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": "msctl", "version": env!("CARGO_PKG_VERSION") },
        "instructions": "Milestones of this project, through its milestoned daemon. Ids look like ms-k3f9x; \
            `ready` says what can be worked on now.",
    })
}

/// Every tool with its input's JSON schema.
fn tools() -> Json {
    let text = json!({ "type": "string" });
    let count = json!({ "type": "integer", "minimum": 0 });
    let ids = json!({ "type": "array", "items": { "type": "string" } });
    let tool = |name: &str, description: &str, properties: Json, required: &[&str]| {
        json!({
            "name": name,
            "description": description,
            "inputSchema": { "type": "object", "properties": properties, "required": required },
        })
    };
    let status = json!({ "type": "string", "enum": ["planning", "in_progress", "blocked", "completed", "cancelled", "archived"] });
    let priority = json!({ "type": "string", "enum": ["low", "medium", "high", "critical"] });
    json!([
        tool(
            "list",
            "List milestones, newest first unless sorted; archived ones only with `all`.",
            json!({
                "status": status, "priority": priority, "category": text,
                "where": { "type": "array", "items": { "type": "string" },
                           "description": "filters such as `progress.percentage>=50` or `title~parser`" },
                "sort": { "type": "string", "description": "a field, `-` first for descending: `-priority`" },
                "limit": { "type": "integer", "minimum": 0 }, "offset": { "type": "integer", "minimum": 0 },
                "all": { "type": "boolean" },
            }),
            &[]
        ),
        tool("get", "One milestone, the whole document.", json!({ "id": text }), &["id"]),
        tool(
            "create",
            "Create a milestone; returns it with its new id.",
            json!({
                "title": text, "id": text, "status": status, "priority": priority, "category": text,
                "description": text, "requires": ids,
            }),
            &["title"]
        ),
        tool(
            "update",
            "Set fields of a milestone by dotted path (`progress.percentage`, `status`).",
            json!({
                "id": text,
                "set": { "type": "object", "description": "dotted path → new value", "additionalProperties": true },
            }),
            &["id", "set"]
        ),
        tool(
            "task_add",
            "Append a task to a milestone.",
            json!({
                "milestone": text, "title": text, "id": text, "depends_on": ids,
            }),
            &["milestone", "title"]
        ),
        tool(
            "task_start",
            "Mark a task in progress.",
            json!({ "milestone": text, "task": text }),
            &["milestone", "task"]
        ),
        tool("task_done", "Mark a task completed.", json!({ "milestone": text, "task": text }), &["milestone", "task"]),
        tool(
            "ready",
            "What can be worked on now, most urgent first; with `tasks`, tasks across milestones.",
            json!({ "tasks": { "type": "boolean" }, "limit": count, "offset": count }),
            &[]
        ),
        tool(
            "blocked",
            "What waits, and on what; with `tasks`, tasks across milestones.",
            json!({ "tasks": { "type": "boolean" }, "limit": count, "offset": count }),
            &[]
        ),
        tool(
            "search",
            "Milestones whose id, title, description, category or task titles hold every word.",
            json!({ "words": text, "limit": { "type": "integer", "minimum": 0 } }),
            &["words"]
        ),
        tool("stats", "Counts by status, completion times, dependency figures, trends.", json!({}), &[]),
    ])
}

type CallResult = Result<Json, (i64, String)>;

fn call(client: &mut Client, params: &Json) -> CallResult {
    let name = params.get("name").and_then(Json::as_str).ok_or((INVALID_PARAMS, "a call names its tool".into()))?;
    let args = match params.get("arguments") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(_)) => serde_json::from_value::<Map>(params["arguments"].clone())
            .map_err(|e| (INVALID_PARAMS, format!("arguments: {e}")))?,
        Some(_) => return Err((INVALID_PARAMS, "arguments must be an object".into())),
    };
    let args = Arguments(&args);
    let (request, shown): (Request, fn(Response) -> Json) = match name {
        "list" | "search" => (Request::List { query: query(name, &args)? }, page),
        "get" => (Request::Get { id: args.text("id")? }, document),
        "create" => (Request::Create { input: DocumentInput::Fields(Value::Map(new_milestone(&args)?)) }, document),
        "update" => {
            let set =
                args.0.get("set").and_then(Value::as_map).ok_or((INVALID_PARAMS, "`set` must be an object".into()))?;
            let assignments = set.iter().map(|(path, value)| Assignment { path: path.clone(), value: value.clone() });
            (Request::Update { id: args.text("id")?, change: Change::Set(assignments.collect()) }, document)
        }
        "task_add" => {
            let task = NewTask {
                id: args.optional_text("id")?,
                title: args.text("title")?,
                depends_on: args.ids("depends_on")?,
            };
            (Request::TaskAdd { milestone: args.text("milestone")?, task }, document)
        }
        "task_start" | "task_done" => {
            let status = if name == "task_start" { "in_progress" } else { "completed" };
            let request = Request::TaskSetStatus {
                milestone: args.text("milestone")?,
                task: args.text("task")?,
                status: status.into(),
            };
            (request, document)
        }
        "ready" | "blocked" => {
            let request = Request::WorkPage {
                tasks: args.flag("tasks")?,
                blocked: name == "blocked",
                offset: args.count("offset")?.unwrap_or(0),
                limit: args.count("limit")?.unwrap_or(WORK_PAGE),
            };
            (request, work_page)
        }
        "stats" => (Request::Stats, stats),
        other => return Err((INVALID_PARAMS, format!("no tool `{other}`"))),
    };
    let (content, is_error) = match client.request(request) {
        Ok(response) => (serde_json::to_string_pretty(&shown(response)).unwrap_or_default(), false),
        Err(e) => (Failure::from(e).message, true),
    };
    Ok(json!({ "content": [{ "type": "text", "text": content }], "isError": is_error }))
}

fn query(tool: &str, args: &Arguments) -> Result<Query, (i64, String)> {
    let mut query = Query::default();
    if tool == "search" {
        query.text = Some(args.text("words")?);
        query.limit = args.count("limit")?;
        return Ok(query);
    }
    let (status, priority, category) =
        (args.optional_text("status")?, args.optional_text("priority")?, args.optional_text("category")?);
    query.filters =
        selection(status, priority, category, &args.ids("where")?).map_err(|f| (INVALID_PARAMS, f.message))?;
    query.sort = parse_sort(args.optional_text("sort")?.as_deref());
    query.limit = args.count("limit")?;
    query.offset = args.count("offset")?.unwrap_or(0);
    query.include_archived = args.flag("all")?;
    Ok(query)
}

fn new_milestone(args: &Arguments) -> Result<Map, (i64, String)> {
    let mut doc = Map::new();
    doc.insert("title", Value::String(args.text("title")?));
    for field in ["id", "description", "status", "priority", "category"] {
        if let Some(value) = args.optional_text(field)? {
            doc.insert(field, Value::String(value));
        }
    }
    let requires = args.ids("requires")?;
    if !requires.is_empty() {
        let mut deps = Map::new();
        deps.insert("requires", Value::List(requires.into_iter().map(Value::String).collect()));
        doc.insert("dependencies", Value::Map(deps));
    }
    Ok(doc)
}

/// A call's arguments, read with errors that name the argument.
struct Arguments<'a>(&'a Map);

impl Arguments<'_> {
    fn text(&self, name: &str) -> Result<String, (i64, String)> {
        self.optional_text(name)?.ok_or((INVALID_PARAMS, format!("`{name}` is required")))
    }

    fn optional_text(&self, name: &str) -> Result<Option<String>, (i64, String)> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err((INVALID_PARAMS, format!("`{name}` must be text, not a {}", other.type_name()))),
        }
    }

    fn ids(&self, name: &str) -> Result<Vec<String>, (i64, String)> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::List(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).ok_or((INVALID_PARAMS, format!("`{name}` lists text"))))
                .collect(),
            Some(other) => Err((INVALID_PARAMS, format!("`{name}` must be a list, not a {}", other.type_name()))),
        }
    }

    fn count(&self, name: &str) -> Result<Option<u64>, (i64, String)> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Int(n)) if *n >= 0 => Ok(Some(*n as u64)),
            Some(_) => Err((INVALID_PARAMS, format!("`{name}` must be a whole number of at least 0"))),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, (i64, String)> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => {
                Err((INVALID_PARAMS, format!("`{name}` must be true or false, not a {}", other.type_name())))
            }
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

fn unexpected(response: &Response) -> Json {
    json!({ "unexpected": format!("{response:?}") })
}

fn page(response: Response) -> Json {
    match response {
        Response::Page(page) => json!({ "items": to_json(&page.items), "total": page.total }),
        other => unexpected(&other),
    }
}

fn document(response: Response) -> Json {
    match response {
        Response::Document(doc) => to_json(&doc),
        other => unexpected(&other),
    }
}

fn work_page(response: Response) -> Json {
    match response {
        Response::WorkPage(page) => json!({ "items": to_json(&page.items), "total": page.total }),
        other => unexpected(&other),
    }
}

fn stats(response: Response) -> Json {
    match response {
        Response::Stats(figures) => to_json(&figures),
        other => unexpected(&other),
    }
}
