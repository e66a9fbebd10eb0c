//! The three-way merge of one milestone file, field by field: what git's
//! merge driver (`msctl merge-driver`) runs when two branches changed the
//! same milestone.
//!
//! - Changes to different fields merge, however close their lines are.
//! - `tasks` merge by task id: both sides may add, edit and remove tasks.
//!   Two different tasks added under one id (both sides counted on to the
//!   same `task-N`) are both kept, theirs under the next free id.
//! - The lists under `dependencies` and each task's `depends_on` merge as
//!   sets: what either side added is in, what either side removed is out.
//! - Time stamps both sides moved take the later `updated_at` and the
//!   earlier `started_at`/`completed_at`; `progress` is derived again from
//!   the merged tasks.
//! - The result is the current side's text edited in place (see
//!   [`crate::yaml::edit_preserving`]), so its comments, key order and
//!   formatting stay wherever its text survives.
//! - A real conflict (one field changed to two different values, or
//!   changed on one side and removed on the other) keeps git's standard
//!   markers around just that field's lines.

use std::collections::{HashMap, HashSet};

use milestones_protocol::{Map, Value};

use crate::document;
use crate::yaml::{self, YamlError};

/// What a merge gives: the file's new text, and the fields that conflict
/// (empty when the merge is clean).
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub text: String,
    /// Dotted paths, tasks by id: `status`, `tasks[task-2].title`.
    pub conflicts: Vec<String>,
}

/// One of the three versions is not a milestone document (broken YAML,
/// conflict markers, not a mapping): a field-by-field merge is impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(#[from] pub YamlError);

/// Merges `ours` and `theirs`, both descended from `base` (empty when the
/// file was added on both sides). `now` stamps `progress.last_update` when
/// the merged tasks change it.
pub fn merge(base: &str, ours: &str, theirs: &str, now: &str) -> Result<Merged, MergeError> {
    let base_doc = if base.trim().is_empty() { None } else { Some(yaml::parse_document(base, "the common ancestor")?) };
    let ours_doc = yaml::parse_document(ours, "the current version")?;
    let theirs_doc = yaml::parse_document(theirs, "the other version")?;
    let has_tasks = |doc: &Map| doc.get("tasks").and_then(Value::as_list).is_some_and(|t| !t.is_empty());
    let mut merger = Merger { conflicts: Vec::new(), derived_progress: has_tasks(&ours_doc) || has_tasks(&theirs_doc) };
    let (mine, other) = merger.maps("", base_doc.as_ref(), &ours_doc, &theirs_doc);
    let (mut mine, mut other) = (mine, other);
    document::derive_progress(&mut mine, now);
    document::derive_progress(&mut other, now);

    let text = yaml::edit_preserving(ours, &ours_doc, &mine).unwrap_or_else(|| yaml::to_yaml(&mine));
    if merger.conflicts.is_empty() {
        return Ok(Merged { text, conflicts: Vec::new() });
    }
    // Their side of each conflict, applied to the merged text: the two
    // differ in the conflicting fields' lines only.
    let theirs_text = yaml::edit_preserving(&text, &mine, &other).unwrap_or_else(|| yaml::to_yaml(&other));
    Ok(Merged { text: with_markers(&text, &theirs_text), conflicts: merger.conflicts })
}

/// Whether `text` holds a line git's conflict markers begin (`<<<<<<< `,
/// `=======`, `>>>>>>> `): the 1-based number of the first.
pub fn conflict_marker_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.starts_with("<<<<<<< ") || line == "<<<<<<<" || line.starts_with(">>>>>>> ") || line == "======="
        })
        .map(|i| i + 1)
}

/// One merged value in two versions: as ours has it and as theirs has it.
/// They are equal except beneath a conflict. `None`: the field is absent.
type Pair = (Option<Value>, Option<Value>);

struct Merger {
    conflicts: Vec<String>,
    /// Either side has tasks, so `progress`'s counts are derived from them
    /// and never conflict.
    derived_progress: bool,
}

impl Merger {
    fn maps(&mut self, path: &str, base: Option<&Map>, ours: &Map, theirs: &Map) -> (Map, Map) {
        let (mut mine, mut other) = (Map::new(), Map::new());
        let theirs_only = theirs.keys().filter(|k| !ours.contains_key(k));
        for key in ours.keys().chain(theirs_only) {
            let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            let (m, o) = self.value(&at, key, base.and_then(|b| b.get(key)), ours.get(key), theirs.get(key));
            if let Some(m) = m {
                mine.insert(key.clone(), m);
            }
            if let Some(o) = o {
                other.insert(key.clone(), o);
            }
        }
        (mine, other)
    }

    fn value(
        &mut self,
        path: &str,
        key: &str,
        base: Option<&Value>,
        ours: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Pair {
        let same = |v: Option<&Value>| (v.cloned(), v.cloned());
        if ours == theirs || base == theirs {
            return same(ours);
        }
        if base == ours {
            return same(theirs);
        }
        let (Some(o), Some(t)) = (ours, theirs) else {
            return self.conflict(path, ours, theirs);
        };
        if let (Value::String(a), Value::String(b)) = (o, t) {
            let pick = match key {
                "updated_at" | "last_update" => Some(a.max(b)),
                "started_at" | "completed_at" => Some(a.min(b)),
                _ => None,
            };
            if let Some(pick) = pick {
                return same(Some(&Value::String(pick.clone())));
            }
        }
        if self.derived_progress
            && matches!(path, "progress.percentage" | "progress.tasks_completed" | "progress.total_tasks")
        {
            return same(ours);
        }
        match (o, t) {
            (Value::Map(o), Value::Map(t)) => {
                let (m, o) = self.maps(path, base.and_then(Value::as_map), o, t);
                (Some(Value::Map(m)), Some(Value::Map(o)))
            }
            (Value::List(o), Value::List(t)) if is_set(path) => {
                let merged = Value::List(set_merge(base.and_then(Value::as_list).unwrap_or_default(), o, t));
                same(Some(&merged))
            }
            (Value::List(o), Value::List(t)) if path == "tasks" => {
                match self.tasks(base.and_then(Value::as_list).unwrap_or_default(), o, t) {
                    Some((m, o)) => (Some(Value::List(m)), Some(Value::List(o))),
                    None => self.conflict(path, ours, theirs),
                }
            }
            _ => self.conflict(path, ours, theirs),
        }
    }

    fn conflict(&mut self, path: &str, ours: Option<&Value>, theirs: Option<&Value>) -> Pair {
        self.conflicts.push(path.to_owned());
        (ours.cloned(), theirs.cloned())
    }

    /// Tasks by id; `None` when a list is not tasks with distinct ids (it
    /// then merges as one value).
    fn tasks(&mut self, base: &[Value], ours: &[Value], theirs: &[Value]) -> Option<(Vec<Value>, Vec<Value>)> {
        let (base, ours, mut theirs) = (tasks_by_id(base)?, tasks_by_id(ours)?, tasks_by_id(theirs)?);
        // Both sides added a task under one id, with different content:
        // two tasks, theirs renumbered (with what of theirs depends on it).
        let mut taken: Vec<String> = Vec::new();
        for (id, _) in base.iter().chain(&ours).chain(&theirs) {
            if !taken.contains(id) {
                taken.push(id.clone());
            }
        }
        let mut renamed = HashMap::new();
        for (id, task) in &mut theirs {
            let clash = !base.iter().any(|(i, _)| i == id) && ours.iter().any(|(i, o)| i == id && o != task);
            if clash {
                let fresh = document::new_task_id(&taken);
                taken.push(fresh.clone());
                task.insert("id", Value::String(fresh.clone()));
                renamed.insert(std::mem::replace(id, fresh.clone()), fresh);
            }
        }
        for (_, task) in &mut theirs {
            if let Some(Value::List(needs)) = task.get_mut("depends_on") {
                for need in needs.iter_mut() {
                    if let Some(fresh) = need.as_str().and_then(|n| renamed.get(n)) {
                        *need = Value::String(fresh.clone());
                    }
                }
            }
        }
        let find =
            |tasks: &[(String, Map)], id: &str| tasks.iter().find(|(i, _)| i == id).map(|(_, t)| Value::Map(t.clone()));

        let (mut mine, mut other) = (Vec::new(), Vec::new());
        let theirs_only = theirs.iter().filter(|(id, _)| !ours.iter().any(|(i, _)| i == id));
        let order: Vec<&String> = ours.iter().chain(theirs_only).map(|(id, _)| id).collect();
        for id in order {
            let (b, o, t) = (find(&base, id), find(&ours, id), find(&theirs, id));
            let (m, x) = self.value(&format!("tasks[{id}]"), "", b.as_ref(), o.as_ref(), t.as_ref());
            mine.extend(m);
            other.extend(x);
        }
        Some((mine, other))
    }
}

/// The lists that are sets of ids: a milestone's dependencies and a task's.
fn is_set(path: &str) -> bool {
    path.strip_prefix("dependencies.").is_some_and(|rest| !rest.contains('.'))
        || (path.starts_with("tasks[") && path.ends_with("].depends_on"))
}

/// Ours, without what theirs removed, with what theirs added.
fn set_merge(base: &[Value], ours: &[Value], theirs: &[Value]) -> Vec<Value> {
    let removed = |v: &Value| base.contains(v) && !theirs.contains(v);
    let mut merged: Vec<Value> = Vec::new();
    for v in ours.iter().filter(|v| !removed(v)).chain(theirs.iter().filter(|v| !base.contains(v))) {
        if !merged.contains(v) {
            merged.push(v.clone());
        }
    }
    merged
}

/// Tasks with their ids, in order; `None` unless each is a mapping with an
/// id of its own.
fn tasks_by_id(tasks: &[Value]) -> Option<Vec<(String, Map)>> {
    let mut seen = HashSet::with_capacity(tasks.len());
    tasks
        .iter()
        .map(|task| {
            let task = task.as_map()?;
            let id = task.get("id")?.as_str()?.to_owned();
            seen.insert(id.clone()).then(|| (id, task.clone()))
        })
        .collect()
}

/// The merged text with git's markers around each run of lines where their
/// version differs from ours.
fn with_markers(ours: &str, theirs: &str) -> String {
    let diff = similar::TextDiff::from_lines(ours, theirs);
    let (old, new) = (diff.old_slices(), diff.new_slices());
    let mut out = String::with_capacity(ours.len() + theirs.len());
    let mut hunk: Option<(Vec<&str>, Vec<&str>)> = None;
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    };
    for op in diff.ops() {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            if let Some((mine, other)) = hunk.take() {
                write_hunk(&mut out, &mine, &other, line);
            }
            old[old_range].iter().for_each(|l| line(&mut out, l));
        } else {
            let (mine, other) = hunk.get_or_insert_with(Default::default);
            mine.extend(&old[old_range]);
            other.extend(&new[new_range]);
        }
    }
    if let Some((mine, other)) = hunk {
        write_hunk(&mut out, &mine, &other, line);
    }
    out
}

fn write_hunk(out: &mut String, mine: &[&str], other: &[&str], line: impl Fn(&mut String, &str)) {
    out.push_str("<<<<<<< ours\n");
    mine.iter().for_each(|l| line(out, l));
    out.push_str("=======\n");
    other.iter().for_each(|l| line(out, l));
    out.push_str(">>>>>>> theirs\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-30T12:00:00Z";

    fn merged(base: &str, ours: &str, theirs: &str) -> Merged {
        merge(base, ours, theirs, NOW).unwrap()
    }

    fn doc(text: &str) -> Map {
        yaml::parse_document(text, "test").unwrap()
    }

    const BASE: &str = "\
# Release planning: keep this comment
id: beta
title: Beta
status: planning   # moves when work starts
priority: medium
updated_at: 2026-11-01T00:00:00Z
tasks:
- id: task-1
  title: Write the parser
  status: pending
dependencies:
  requires:
  - alpha
";

    #[test]
    fn changes_to_different_fields_merge_and_keep_the_current_sides_comments() {
        let ours = BASE.replace("status: planning", "status: in_progress").replace("11-01", "11-02");
        let theirs = BASE.replace("priority: medium", "priority: high").replace("11-01", "11-03");
        let m = merged(BASE, &ours, &theirs);
        assert!(m.conflicts.is_empty(), "{m:?}");
        assert!(m.text.starts_with("# Release planning: keep this comment\n"), "{}", m.text);
        assert!(m.text.contains("status: in_progress   # moves when work starts"), "{}", m.text);
        let d = doc(&m.text);
        assert_eq!(d.get("priority"), Some(&Value::from("high")));
        assert_eq!(d.get("updated_at"), Some(&Value::from("2026-11-03T00:00:00Z")), "the later stamp");
    }

    #[test]
    fn tasks_added_on_both_sides_are_all_kept_and_progress_is_derived_again() {
        let ours = BASE
            .replace("  status: pending\n", "  status: completed\n- id: task-2\n  title: Ours\n  status: pending\n");
        let theirs = BASE.replace(
            "  status: pending\n",
            "  status: pending\n- id: task-2\n  title: Theirs\n  status: pending\n\
             - id: task-3\n  title: After theirs\n  status: pending\n  depends_on: [task-2]\n",
        );
        let m = merged(BASE, &ours, &theirs);
        assert!(m.conflicts.is_empty(), "{m:?}");
        let d = doc(&m.text);
        let tasks: Vec<(String, String)> = d
            .get("tasks")
            .and_then(Value::as_list)
            .unwrap()
            .iter()
            .map(|t| {
                let t = t.as_map().unwrap();
                (t.get("id").unwrap().as_str().unwrap().into(), t.get("title").unwrap().as_str().unwrap().into())
            })
            .collect();
        let titles: Vec<&str> = tasks.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(titles, ["Write the parser", "Ours", "Theirs", "After theirs"]);
        let ids: Vec<&str> = tasks.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["task-1", "task-2", "task-4", "task-3"], "theirs' task-2 renumbered");
        assert_eq!(d.pointer("tasks.3.depends_on.0"), Some(&Value::from("task-4")), "and what depends on it");
        assert_eq!(d.pointer("progress.percentage"), Some(&Value::Int(25)));
        assert_eq!(d.pointer("progress.total_tasks"), Some(&Value::Int(4)));
    }

    #[test]
    fn dependencies_merge_as_sets() {
        let ours = BASE.replace("  - alpha\n", "  - alpha\n  - gamma\n");
        let theirs = BASE.replace("  - alpha\n", "  - delta\n");
        let m = merged(BASE, &ours, &theirs);
        assert!(m.conflicts.is_empty(), "{m:?}");
        assert_eq!(
            doc(&m.text).pointer("dependencies.requires"),
            Some(&Value::List(vec![Value::from("gamma"), Value::from("delta")]))
        );
    }

    #[test]
    fn one_field_changed_two_ways_is_marked_and_nothing_else() {
        let ours = BASE.replace("title: Beta", "title: Beta one").replace("priority: medium", "priority: low");
        let theirs = BASE.replace("title: Beta", "title: Beta two");
        let m = merged(BASE, &ours, &theirs);
        assert_eq!(m.conflicts, ["title"]);
        assert!(
            m.text.contains("<<<<<<< ours\ntitle: Beta one\n=======\ntitle: Beta two\n>>>>>>> theirs\n"),
            "{}",
            m.text
        );
        assert_eq!(conflict_marker_line(&m.text), Some(3));
        assert!(m.text.contains("priority: low"));
        assert!(yaml::parse_document(&m.text, "t").is_err(), "the file is broken until resolved");
    }

    #[test]
    fn a_task_edited_on_one_side_and_removed_on_the_other_conflicts() {
        let ours = BASE.replace("title: Write the parser", "title: Write the parser again");
        let theirs = BASE
            .replace("- id: task-1\n  title: Write the parser\n  status: pending\n", "")
            .replace("tasks:\n", "tasks: []\n");
        let m = merged(BASE, &ours, &theirs);
        assert_eq!(m.conflicts, ["tasks[task-1]"]);
        assert!(m.text.contains("<<<<<<< ours\n"), "{}", m.text);
    }

    #[test]
    fn a_file_added_on_both_sides_merges_what_agrees() {
        let m = merged("", "id: x\ntitle: X\nowner: ann\n", "id: x\ntitle: X\nteam: core\n");
        assert!(m.conflicts.is_empty());
        assert_eq!(doc(&m.text), doc("id: x\ntitle: X\nowner: ann\nteam: core\n"));
    }

    #[test]
    fn a_version_that_is_not_a_document_is_refused() {
        let err = merge(BASE, "title: [broken\n", BASE, NOW).unwrap_err();
        assert!(err.to_string().contains("the current version"), "{err}");
    }
}
