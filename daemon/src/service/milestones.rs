//! Requests about single milestones: `Get`, `List`, `Create`, `Update`,
//! `Delete`, `Complete`.

use milestones_protocol::{
    Assignment, Change, DocumentInput, EventKind, ImportProblem, ImportReport, Map, Page, Query, Response, Value,
};
use serde_json::json;

use super::{Edit, MilestoneService, ServiceError, ServiceResult};
use crate::change_feed::NewEvent;
use crate::document::{self, Status, CANONICAL_ORDER};
use crate::peer::Peer;
use crate::storage::{StorageError, Stored};

/// Room in a reply for what is not the page's items: the reply's id, its
/// tags, the total, the items' count.
const REPLY_ENVELOPE_BYTES: usize = 64;

impl MilestoneService {
    pub(super) fn get(&self, id: &str) -> ServiceResult<Stored> {
        self.stored(id)
    }

    /// A page of `query`, as much of it as one reply carries: the client
    /// asks again from where it ends, and `total` still counts every match.
    pub(super) fn list(&self, query: &Query) -> ServiceResult<Page> {
        let room = self.endpoint.max_reply_bytes.saturating_sub(REPLY_ENVELOPE_BYTES) as u64;
        if room == 0 {
            return Ok(self.storage().query(query)?);
        }
        let mut used: u64 = 0;
        let mut fits = |item: &Value| {
            let first = used == 0;
            used = used.saturating_add(milestones_protocol::codec::bincode_len(item).unwrap_or(u64::MAX));
            // The first always goes in: alone over the limit, the reply
            // names it.
            first || used <= room
        };
        Ok(self.storage().query_within(query, &mut fits)?)
    }

    pub fn create(&self, input: DocumentInput, peer: &Peer) -> ServiceResult<Stored> {
        let (doc, generated) = prepare_new(input)?;
        let _gate = self.write_gate();
        let storage = self.storage();
        let stored = if generated {
            let prefix = self.settings.read().unwrap_or_else(|p| p.into_inner()).config.id_prefix.clone();
            self.ids.insert_new(&*storage, doc, &prefix)?
        } else {
            storage.insert(doc)?
        };
        let id = document::id(&stored.doc).unwrap_or_default();
        self.written.note(id);
        self.log("milestone_created", id, peer, json!({ "revision": stored.revision.as_str() }));
        self.feed.publish(NewEvent::by_request(EventKind::Created, id, document::status(&stored.doc)));
        Ok(stored)
    }

    /// `msctl import`'s batches: each document is checked as `create`
    /// checks it, and one whose id is taken is refused unless `replace`;
    /// with `check_only` nothing is stored. A document's problem is
    /// reported at its position and never stops the others.
    pub(super) fn import(
        &self,
        documents: Vec<DocumentInput>,
        replace: bool,
        check_only: bool,
        peer: &Peer,
    ) -> ServiceResult<ImportReport> {
        let mut report = ImportReport { imported: 0, problems: Vec::new() };
        for (index, input) in documents.into_iter().enumerate() {
            // Named even when the document is refused before its id is checked.
            let mut id = match &input {
                DocumentInput::Fields(doc) => doc.pointer("id").and_then(Value::as_str).map(str::to_owned),
                DocumentInput::Yaml(_) => None,
            };
            let outcome = prepare_new(input).and_then(|(doc, generated)| {
                id = document::id(&doc).map(str::to_owned);
                let exists = match id.as_deref().filter(|_| !generated) {
                    Some(id) => match self.storage().get(id) {
                        Ok(found) => found.is_some(),
                        Err(StorageError::Unreadable { .. }) => true,
                        Err(e) => return Err(e.into()),
                    },
                    None => false,
                };
                match (exists, replace, check_only) {
                    (true, false, _) => Err(StorageError::AlreadyExists(id.clone().unwrap_or_default()).into()),
                    (_, _, true) => Ok(()),
                    (true, true, false) => {
                        let replacement = Change::Replace(DocumentInput::Fields(Value::Map(doc)));
                        self.update(id.as_deref().unwrap_or_default(), replacement, peer).map(drop)
                    }
                    (false, _, false) => self.create(DocumentInput::Fields(Value::Map(doc)), peer).map(drop),
                }
            });
            match outcome {
                Ok(()) => report.imported += u64::from(!check_only),
                Err(e) => report.problems.push(ImportProblem { index: index as u64, id, message: e.to_string() }),
            }
        }
        Ok(report)
    }

    pub fn update(&self, id: &str, change: Change, peer: &Peer) -> ServiceResult<Stored> {
        // Checked and parsed once; applied to each version read.
        let (assignments, replacement) = match change {
            Change::Set(assignments) => {
                if assignments.is_empty() {
                    return Err(ServiceError::invalid("nothing to update: give at least one PATH=VALUE"));
                }
                if assignments.iter().any(|a| a.path == "id" || a.path.starts_with("id.")) {
                    return Err(ServiceError::invalid_field("id", "a milestone's id cannot be changed"));
                }
                (assignments, None)
            }
            Change::Replace(input) => (Vec::new(), Some(parse_input(input, "the replacement document")?)),
        };
        let touched: Vec<String> = match replacement {
            Some(_) => vec!["*".to_owned()],
            None => assignments.iter().map(|a| a.path.clone()).collect(),
        };
        self.modify(id, peer, |current| {
            let doc = match &replacement {
                Some(new) => replace_document(id, current, new.clone())?,
                None => {
                    let mut doc = current.clone();
                    for Assignment { path, value } in &assignments {
                        document::set_path(&mut doc, path, value.clone())?;
                    }
                    doc
                }
            };
            let details = json!({ "fields": touched });
            Ok(Some(Edit { doc, event: "milestone_updated", details, touched: touched.clone(), stamped: true }))
        })
    }

    pub(super) fn delete(&self, id: &str, purge: bool, peer: &Peer) -> ServiceResult<Response> {
        if purge {
            let _gate = self.write_gate();
            // A record that cannot be read back can still be purged: that
            // is how it is got rid of.
            let unreadable = match self.stored(id) {
                Ok(_) => None,
                Err(ServiceError::Storage(e @ StorageError::Unreadable { .. })) => Some(e),
                Err(e) => return Err(e),
            };
            if !self.storage().remove(id)? {
                return Err(unreadable.map_or_else(|| ServiceError::NotFound(id.to_owned()), ServiceError::Storage));
            }
            self.written.note(id);
            self.log("milestone_deleted", id, peer, json!({ "purged": true }));
            self.feed.publish(NewEvent::by_request(EventKind::Deleted, id, None));
        } else {
            self.move_to_status(id, peer, Status::Archived, "archived_at", "milestone_archived")?;
        }
        Ok(Response::Deleted { id: id.to_owned(), purged: purge })
    }

    pub(super) fn complete(&self, id: &str, peer: &Peer) -> ServiceResult<Stored> {
        self.move_to_status(id, peer, Status::Completed, "completed_at", "milestone_completed")
    }

    /// Sets the status and stamps when it was set; nothing to do when the
    /// milestone has that status already.
    fn move_to_status(
        &self,
        id: &str,
        peer: &Peer,
        status: Status,
        stamp: &str,
        event: &'static str,
    ) -> ServiceResult<Stored> {
        self.modify(id, peer, |current| {
            if document::status(current) == Some(status) {
                return Ok(None);
            }
            let mut doc = current.clone();
            doc.insert("status", Value::from(status));
            doc.insert(stamp, Value::from(document::now_timestamp()));
            let touched = vec!["status".to_owned()];
            Ok(Some(Edit { doc, event, details: json!({}), touched, stamped: true }))
        })
    }
}

/// A whole replacement document for `id`: its id must be `id` or absent,
/// the stored `created_at` is kept unless it gives one, and what it leaves
/// out gets the defaults a new milestone gets.
fn replace_document(id: &str, current: &Map, mut new: Map) -> ServiceResult<Map> {
    match new.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(new_id)) if new_id == id => {}
        Some(other) => {
            return Err(ServiceError::invalid_field(
                "id",
                format!("the document's id {other:?} does not match `{id}`; ids cannot be changed"),
            ))
        }
    }
    new.insert("id", Value::from(id));
    new.reorder(&["id"]);
    if !new.contains_key("created_at") {
        if let Some(created) = current.get("created_at") {
            new.insert("created_at", created.clone());
        }
    }
    fill_new_document(&mut new, &document::now_timestamp());
    Ok(new)
}

/// Turns what a client sent into a document.
pub(super) fn parse_input(input: DocumentInput, what: &str) -> ServiceResult<Map> {
    match input {
        DocumentInput::Yaml(text) => Ok(crate::yaml::parse_document(&text, what)?),
        DocumentInput::Fields(Value::Map(map)) => Ok(map),
        DocumentInput::Fields(other) => {
            Err(ServiceError::invalid(format!("{what} must be a mapping, not a {}", other.type_name())))
        }
    }
}

/// A field a new milestone gets when the user gave none, and how to make
/// its value from the current time.
type FieldDefault = (&'static str, fn(&str) -> Value);

/// A new milestone as `create` stores it: parsed, its id checked (none:
/// one is generated), defaults filled, the rules and limits checked.
/// Returns it and whether its id is still to be generated.
fn prepare_new(input: DocumentInput) -> ServiceResult<(Map, bool)> {
    let mut doc = parse_input(input, "the new milestone")?;
    let generated = match doc.get("id") {
        None | Some(Value::Null) => true,
        Some(Value::String(id)) => {
            document::validate_id(id, "id")?;
            false
        }
        Some(other) => {
            return Err(ServiceError::invalid_field("id", format!("id must be text, not a {}", other.type_name())))
        }
    };
    let now = document::now_timestamp();
    fill_new_document(&mut doc, &now);
    document::fill_task_defaults(&mut doc);
    document::check_core_fields(&doc)?;
    document::derive_progress(&mut doc, &now);
    crate::document_limits::check(&doc)?;
    doc.reorder(CANONICAL_ORDER);
    if generated {
        doc.remove("id");
    }
    Ok((doc, generated))
}

/// Fills what a new milestone needs and the user did not give.
fn fill_new_document(doc: &mut Map, now: &str) {
    let defaults: [FieldDefault; 7] = [
        ("status", |_| Value::from(Status::Planning)),
        ("priority", |_| Value::from("medium")),
        ("created_at", |now| Value::from(now)),
        ("updated_at", |now| Value::from(now)),
        ("progress", |_| {
            Value::Map(
                [("percentage", 0), ("tasks_completed", 0), ("total_tasks", 0)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::Int(v)))
                    .collect(),
            )
        }),
        ("tasks", |_| Value::List(Vec::new())),
        ("dependencies", |_| {
            Value::Map(
                ["requires", "enables", "external"]
                    .into_iter()
                    .map(|k| (k.to_owned(), Value::List(Vec::new())))
                    .collect(),
            )
        }),
    ];
    for (key, make) in defaults {
        if doc.get(key).is_none_or(Value::is_null) {
            doc.insert(key, make(now));
        }
    }
}
