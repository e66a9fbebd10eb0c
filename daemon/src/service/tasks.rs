//! Requests about the tasks inside a milestone: `TaskAdd` and
//! `TaskSetStatus`. Progress follows from the tasks (see
//! [`crate::document::derive_progress`]).

use milestones_protocol::{Map, NewTask, Value};
use serde_json::json;

use super::{Edit, MilestoneService, ServiceError, ServiceResult};
use crate::document::{self, Status, TASK_STATUSES};
use crate::peer::Peer;
use crate::storage::Stored;

impl MilestoneService {
    pub(super) fn task_add(&self, milestone: &str, task: NewTask, peer: &Peer) -> ServiceResult<Stored> {
        if task.title.trim().is_empty() {
            return Err(ServiceError::invalid_field("title", "a task needs a title"));
        }
        self.modify(milestone, peer, |current| {
            let mut doc = current.clone();
            let tasks = tasks_mut(&mut doc)?;
            let existing: Vec<String> = tasks.iter().filter_map(task_id).map(str::to_owned).collect();
            let id = match &task.id {
                Some(id) => {
                    document::validate_id(id, "task")?;
                    if existing.contains(id) {
                        return Err(ServiceError::invalid_field(
                            "task",
                            format!("task `{id}` already exists in `{milestone}`"),
                        ));
                    }
                    id.clone()
                }
                None => document::new_task_id(&existing),
            };
            if let Some(dep) = task.depends_on.iter().find(|dep| !existing.contains(dep)) {
                return Err(ServiceError::invalid_field(
                    "depends_on",
                    format!("task `{dep}` does not exist in `{milestone}`"),
                ));
            }
            let mut new = Map::new();
            new.insert("id", Value::from(id.as_str()));
            new.insert("title", Value::from(task.title.as_str()));
            new.insert("status", Value::from("pending"));
            if !task.depends_on.is_empty() {
                new.insert(
                    "depends_on",
                    Value::List(task.depends_on.iter().map(|d| Value::from(d.as_str())).collect()),
                );
            }
            new.insert("created_at", Value::from(document::now_timestamp()));
            tasks.push(Value::Map(new));
            let details = json!({ "task": id });
            Ok(Some(Edit { doc, event: "task_added", details, touched: Vec::new(), stamped: true }))
        })
    }

    pub(super) fn task_set_status(
        &self,
        milestone: &str,
        task: &str,
        status: &str,
        peer: &Peer,
    ) -> ServiceResult<Stored> {
        if !TASK_STATUSES.contains(&status) {
            return Err(ServiceError::invalid_field(
                "status",
                format!("task status must be one of {}, not `{status}`", TASK_STATUSES.join(", ")),
            ));
        }
        self.modify(milestone, peer, |current| {
            let mut doc = current.clone();
            set_task_status(&mut doc, milestone, task, status)?;
            // Starting work on a milestone's first task starts the milestone.
            if status == "in_progress" && document::status(&doc) == Some(Status::Planning) {
                doc.insert("status", Value::from(Status::InProgress));
            }
            let details = json!({ "task": task, "task_status": status });
            Ok(Some(Edit { doc, event: "task_updated", details, touched: Vec::new(), stamped: true }))
        })
    }
}

fn set_task_status(doc: &mut Map, milestone: &str, task: &str, status: &str) -> ServiceResult<()> {
    let tasks = tasks_mut(doc)?;
    let statuses: Vec<(String, Option<String>)> = tasks
        .iter()
        .filter_map(|t| {
            let m = t.as_map()?;
            Some((task_id(t)?.to_owned(), m.get("status").and_then(Value::as_str).map(str::to_owned)))
        })
        .collect();
    let not_found = || ServiceError::TaskNotFound { milestone: milestone.to_owned(), task: task.to_owned() };
    let entry =
        tasks.iter_mut().find(|t| task_id(t) == Some(task)).and_then(Value::as_map_mut).ok_or_else(not_found)?;
    if status == "completed" {
        let unfinished: Vec<&str> = entry
            .get("depends_on")
            .and_then(Value::as_list)
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .filter(|dep| {
                !statuses.iter().any(|(id, s)| id == dep && matches!(s.as_deref(), Some("completed" | "cancelled")))
            })
            .collect();
        if !unfinished.is_empty() {
            return Err(ServiceError::invalid_field(
                "depends_on",
                format!("task `{task}` waits for {} to be completed first", quote_list(&unfinished)),
            ));
        }
    }
    entry.insert("status", Value::from(status));
    let stamp = match status {
        "in_progress" => Some("started_at"),
        "completed" => Some("completed_at"),
        _ => None,
    };
    if let Some(stamp) = stamp {
        if !entry.contains_key(stamp) {
            entry.insert(stamp, Value::from(document::now_timestamp()));
        }
    }
    Ok(())
}

fn tasks_mut(doc: &mut Map) -> ServiceResult<&mut Vec<Value>> {
    if doc.get("tasks").is_none_or(Value::is_null) {
        doc.insert("tasks", Value::List(Vec::new()));
    }
    match doc.get_mut("tasks") {
        Some(Value::List(tasks)) => Ok(tasks),
        _ => Err(ServiceError::invalid_field("tasks", "this milestone's `tasks` is not a list")),
    }
}

fn task_id(task: &Value) -> Option<&str> {
    task.as_map()?.get("id")?.as_str()
}

fn quote_list(items: &[&str]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}
