//! `validate` and `upgrade`: seed 000's rules for a milestone document
//! (required fields, known backends, sane thresholds) plus the checks only a
//! whole project can make (dependencies that exist, no cycles), and adding
//! the template's enhanced sections to old documents.

use std::collections::HashSet;
use std::sync::OnceLock;

use milestones_protocol::{Map, Problem, Severity, Value};

use crate::document::{self, PRIORITIES, STATUSES, TASK_STATUSES};
use crate::graph::DependencyGraph;

/// The enhanced sections, in the template's order.
pub const ENHANCED_SECTIONS: &[&str] = &[
    "storage",
    "hybrid_storage",
    "migration",
    "scale_detection",
    "quality_assurance",
    "integrations",
    "analytics",
    "compliance",
];

fn template() -> &'static Map {
    static TEMPLATE: OnceLock<Map> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        crate::yaml::parse_document(include_str!("enhanced-sections.yaml"), "enhanced-sections.yaml")
            .expect("the built-in template is valid YAML")
    })
}

/// Adds every enhanced section the document lacks, with the template's
/// defaults, and changes nothing else. Returns the sections added.
pub fn upgrade(doc: &mut Map) -> Vec<String> {
    let mut added = Vec::new();
    for section in ENHANCED_SECTIONS {
        if !doc.contains_key(section) {
            if let Some(default) = template().get(section) {
                doc.insert(*section, default.clone());
                added.push((*section).to_owned());
            }
        }
    }
    added
}

/// Checks one document on its own.
pub fn check_document(doc: &Map) -> Vec<Problem> {
    let id = document::id(doc).map(str::to_owned);
    let mut out = Vec::new();
    let mut report = |severity, field: &str, message: String| {
        out.push(Problem { id: id.clone(), file: None, severity, field: Some(field.to_owned()), message });
    };

    for field in ["id", "title", "status"] {
        match doc.get(field) {
            None | Some(Value::Null) => report(Severity::Error, field, format!("missing required field `{field}`")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                report(Severity::Error, field, format!("required field `{field}` is empty"))
            }
            _ => {}
        }
    }
    if let Some(id) = doc.get("id").and_then(Value::as_str) {
        if let Err(e) = document::validate_id(id, "id") {
            report(Severity::Error, "id", e.to_string());
        }
    }
    check_choice(doc, "status", &STATUSES, Severity::Error, &mut report);
    check_choice(doc, "priority", PRIORITIES, Severity::Warning, &mut report);

    // Seed 000: known storage backends, sane thresholds.
    if let Some(backend) = doc.pointer("storage.backend.current").filter(|v| !v.is_null()) {
        if !matches!(backend.as_str(), Some("file" | "database" | "hybrid")) {
            report(
                Severity::Warning,
                "storage.backend.current",
                format!("unknown storage backend {backend:?} (expected file, hybrid or database)"),
            );
        }
    }
    if let Some(threshold) = doc.pointer("storage.scale_monitoring.thresholds.file_size_mb").filter(|v| !v.is_null()) {
        match threshold.as_f64() {
            Some(mb) if mb < 1.0 => report(
                Severity::Warning,
                "storage.scale_monitoring.thresholds.file_size_mb",
                format!("file size threshold too low: {mb} MB"),
            ),
            Some(_) => {}
            None => report(
                Severity::Error,
                "storage.scale_monitoring.thresholds.file_size_mb",
                format!("must be a number, not a {}", threshold.type_name()),
            ),
        }
    }
    if let Some(p) = doc.pointer("progress.percentage").filter(|v| !v.is_null()) {
        if !p.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)) {
            report(Severity::Error, "progress.percentage", format!("must be a number from 0 to 100, not {p:?}"));
        }
    }
    check_tasks(doc, &mut report);
    for key in ["requires", "enables"] {
        let field = format!("dependencies.{key}");
        if let Err(e) = document::id_list(doc.pointer(&field), &field) {
            report(Severity::Error, &field, e.to_string());
        }
    }
    out
}

fn check_choice(
    doc: &Map,
    field: &str,
    allowed: &[&str],
    severity: Severity,
    report: &mut impl FnMut(Severity, &str, String),
) {
    match doc.get(field) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(other) => report(severity, field, format!("{field} {other:?} is not one of {}", allowed.join(", "))),
    }
}

fn check_tasks(doc: &Map, report: &mut impl FnMut(Severity, &str, String)) {
    let Some(tasks) = doc.get("tasks").filter(|v| !v.is_null()) else { return };
    let Some(tasks) = tasks.as_list() else {
        report(Severity::Error, "tasks", "tasks must be a list".into());
        return;
    };
    let ids: Vec<Option<&str>> =
        tasks.iter().map(|t| t.as_map().and_then(|t| t.get("id")).and_then(Value::as_str)).collect();
    let mut seen = HashSet::new();
    for (i, task) in tasks.iter().enumerate() {
        let field = format!("tasks.{i}");
        let Some(t) = task.as_map() else {
            report(Severity::Error, &field, "a task must be a mapping".into());
            continue;
        };
        match ids[i] {
            None => report(Severity::Error, &field, "task has no id".into()),
            Some(id) if !seen.insert(id) => report(Severity::Error, &field, format!("duplicate task id `{id}`")),
            _ => {}
        }
        if let Some(s) = t.get("status").filter(|v| !v.is_null()) {
            if !s.as_str().is_some_and(|s| TASK_STATUSES.contains(&s)) {
                report(
                    Severity::Warning,
                    &field,
                    format!("task status {s:?} is not one of {}", TASK_STATUSES.join(", ")),
                );
            }
        }
        for dep in t.get("depends_on").and_then(Value::as_list).unwrap_or(&[]) {
            if !ids.iter().any(|id| id.is_some() && *id == dep.as_str()) {
                report(Severity::Error, &field, format!("depends on task {dep:?}, which is not in this milestone"));
            }
        }
    }
}

/// Checks that need the whole project: dependencies on milestones that do
/// not exist, and cycles.
pub fn check_graph(graph: &DependencyGraph, only: Option<&str>) -> Vec<Problem> {
    let mut out = Vec::new();
    for edge in graph.missing() {
        if only.is_some_and(|id| id != edge.from) {
            continue;
        }
        out.push(Problem {
            id: Some(edge.from.clone()),
            file: None,
            severity: Severity::Error,
            field: Some("dependencies".into()),
            message: format!("requires milestone `{}`, which does not exist", edge.to),
        });
    }
    for cycle in graph.cycles() {
        if only.is_some_and(|id| !cycle.iter().any(|n| n == id)) {
            continue;
        }
        out.push(Problem {
            id: cycle.first().cloned(),
            file: None,
            severity: Severity::Error,
            field: Some("dependencies".into()),
            message: format!("dependency cycle: {}", cycle.join(" -> ")),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_adds_only_missing_sections() {
        let mut doc =
            crate::yaml::parse_document("id: a\ntitle: t\nstatus: planning\nstorage: {custom: 1}\n", "t").unwrap();
        let added = upgrade(&mut doc);
        assert_eq!(added.len(), ENHANCED_SECTIONS.len() - 1);
        assert!(!added.contains(&"storage".to_string()));
        let v = Value::Map(doc.clone());
        assert_eq!(v.pointer("storage.custom"), Some(&Value::Int(1)));
        assert_eq!(v.pointer("migration.constraints.migration_window_hours.1"), Some(&Value::Int(6)));
        assert_eq!(v.pointer("hybrid_storage.caching.ttl_seconds"), Some(&Value::Int(1800)));
        assert!(upgrade(&mut doc).is_empty());
    }

    #[test]
    fn seed_rules_are_reported() {
        let doc = crate::yaml::parse_document(
            "id: a\nstatus: nope\nstorage: {backend: {current: tape}, scale_monitoring: {thresholds: {file_size_mb: 0}}}\n",
            "t",
        )
        .unwrap();
        let problems = check_document(&doc);
        let fields: Vec<_> = problems.iter().filter_map(|p| p.field.as_deref()).collect();
        assert!(fields.contains(&"title"), "{problems:?}");
        assert!(fields.contains(&"status"));
        assert!(fields.contains(&"storage.backend.current"));
        assert!(fields.contains(&"storage.scale_monitoring.thresholds.file_size_mb"));
    }
}
