//! The milestone documents themselves: `create`, `get`, `list`, `search`,
//! `update`, `delete` and `complete`.

use std::path::PathBuf;

use milestones_client::protocol::{Change, DocumentInput, Map, Query, Request, Response, Value};
use milestones_client::Client;

use crate::input::{parse_assignment, parse_sort, read_input};
use crate::render::Output;
use crate::reply::expect_document;
use crate::{exit, unexpected, Failure};

/// `msctl create`: a document from the flags, or a whole one from
/// `--from-file`; prints the new milestone's id.
#[expect(clippy::too_many_arguments, reason = "one parameter per option of `msctl create`")]
pub fn create(
    client: &mut Client,
    out: &Output,
    title: Option<String>,
    id: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    category: Option<String>,
    description: Option<String>,
    requires: Vec<String>,
    from_file: Option<PathBuf>,
) -> Result<u8, Failure> {
    let input = match from_file {
        Some(path) => DocumentInput::Yaml(read_input(&path)?),
        None => {
            let title = title.ok_or_else(|| Failure::new(exit::USAGE, "create needs --title or --from-file"))?;
            let mut doc = Map::new();
            let fields = [
                ("id", id),
                ("title", Some(title)),
                ("description", description),
                ("status", status),
                ("priority", priority),
                ("category", category),
            ];
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
    Ok(0)
}

/// `msctl get`: one milestone as YAML.
pub fn get(client: &mut Client, out: &Output, id: String) -> Result<u8, Failure> {
    let doc = expect_document(client.request(Request::Get { id })?)?;
    out.document(&doc);
    Ok(0)
}

/// `msctl list`: the milestones matching the flags and `--where` filters.
pub fn list(
    client: &mut Client,
    out: &Output,
    filters: Vec<milestones_client::protocol::Filter>,
    sort: Option<String>,
    limit: Option<u64>,
    offset: u64,
    all: bool,
) -> Result<u8, Failure> {
    let query = Query { filters, text: None, sort: parse_sort(sort.as_deref()), include_archived: all, limit, offset };
    out.page(&client.list(query)?);
    Ok(0)
}

/// `msctl search`: the milestones containing all the words.
pub fn search(client: &mut Client, out: &Output, words: Vec<String>, limit: Option<u64>) -> Result<u8, Failure> {
    let query = Query { text: Some(words.join(" ")), limit, ..Query::default() };
    out.page(&client.list(query)?);
    Ok(0)
}

/// `msctl update`: `--set PATH=VALUE` changes, or a whole replacement
/// document from `--from-file`.
pub fn update(
    client: &mut Client,
    out: &Output,
    id: String,
    set: Vec<String>,
    from_file: Option<PathBuf>,
) -> Result<u8, Failure> {
    let change = match from_file {
        Some(path) => Change::Replace(DocumentInput::Yaml(read_input(&path)?)),
        None if set.is_empty() => {
            return Err(Failure::new(exit::USAGE, "update needs --set PATH=VALUE or --from-file"))
        }
        None => Change::Set(set.iter().map(|s| parse_assignment(s)).collect::<Result<_, _>>()?),
    };
    let doc = expect_document(client.request(Request::Update { id, change })?)?;
    out.changed(&doc, "updated");
    Ok(0)
}

/// `msctl delete`: archive a milestone, or remove it for good with `--purge`.
pub fn delete(client: &mut Client, out: &Output, id: String, purge: bool) -> Result<u8, Failure> {
    match client.request(Request::Delete { id, purge })? {
        Response::Deleted { id, purged } => {
            out.print_json_or(&serde_json::json!({ "id": id, "purged": purged }), || {
                if purged {
                    format!("{id} deleted for good")
                } else {
                    format!("{id} archived (moved to completed/)")
                }
            })
        }
        other => return Err(unexpected(other)),
    }
    Ok(0)
}

/// `msctl complete`: mark a milestone completed.
pub fn complete(client: &mut Client, out: &Output, id: String) -> Result<u8, Failure> {
    let doc = expect_document(client.request(Request::Complete { id })?)?;
    out.changed(&doc, "completed");
    Ok(0)
}
