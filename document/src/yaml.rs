//! YAML text to documents and back. serde_norway (a maintained fork of
//! serde_yaml) bounds recursion depth and alias expansion, which is what keeps
//! a YAML bomb or a deeply nested document from taking the daemon down.

use std::collections::{HashMap, HashSet};

use milestones_protocol::{Map, Value};

/// YAML text that cannot be read as what it should be; the message names
/// the source and the place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub String);

/// Parses YAML text that must hold one mapping (a milestone document).
/// `source` names where the text came from in error messages.
pub fn parse_document(text: &str, source: &str) -> Result<Map, YamlError> {
    match parse_value(text, source)? {
        Value::Map(map) => Ok(map),
        other => Err(YamlError(format!(
            "{source}: a milestone document must be a YAML mapping, found a {}",
            other.type_name()
        ))),
    }
}

/// Parses any YAML value.
pub fn parse_value(text: &str, source: &str) -> Result<Value, YamlError> {
    serde_norway::from_str::<Value>(text).map_err(|e| YamlError(format!("{source}: invalid YAML: {e}")))
}

/// Renders a document as YAML.
pub fn to_yaml(doc: &Map) -> String {
    // Serialising a Value to YAML only fails on non-string keys, which Map
    // cannot hold.
    serde_norway::to_string(doc).unwrap_or_default()
}

/// Rewrites `original` (the text of a file that parses to `old`) so that it
/// parses to `new`, changing only what differs: comments, key order,
/// quoting and blank lines elsewhere stay as the user wrote them. Returns
/// `None` when that cannot be done faithfully; the caller then writes the
/// document afresh. The result is checked by parsing it back, so a file
/// is never written that does not hold exactly `new`.
pub fn edit_preserving(original: &str, old: &Map, new: &Map) -> Option<String> {
    use std::str::FromStr;
    if parse_document(original, "edit").ok().as_ref() != Some(old) {
        return None;
    }
    let file = yaml_edit::YamlFile::from_str(original).ok()?;
    let root = file.document()?.as_mapping()?;
    edit_mapping(&root, old, new)?;
    let text = file.to_string();
    (parse_document(&text, "edit").ok().as_ref() == Some(new)).then_some(text)
}

/// The longest line the daemon leaves in a file on its own: a flow list or
/// map (`[a, b]`, `{id: x}`) longer than this, changed or not, is written
/// in block style whenever the file is written (and `msctl upgrade`
/// writes the files that have one).
pub const LINE_LIMIT: usize = 100;

fn edit_mapping(mapping: &yaml_edit::Mapping, old: &Map, new: &Map) -> Option<()> {
    // Looked up by key once per key: linear however wide the mapping.
    let old_values: HashMap<&str, &Value> = old.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let new_keys: HashSet<&str> = new.keys().map(String::as_str).collect();
    for (key, _) in old.iter().filter(|(k, _)| !new_keys.contains(k.as_str())) {
        mapping.remove(key.as_str())?;
    }
    for (key, value) in new.iter() {
        let before = old_values.get(key.as_str()).copied();
        // An unchanged value is only looked into for long flow lines: one
        // that cannot be is left exactly as it is.
        let unchanged = before == Some(value);
        match (before, value) {
            (Some(Value::Map(before)), Value::Map(after)) => {
                let Some(inner) = mapping.get_mapping(key.as_str()) else {
                    if unchanged {
                        continue;
                    }
                    return None;
                };
                let gains = after.keys().any(|k| !before.contains_key(k));
                if inner.is_flow_style() && (grows(before.len(), gains) || too_long(key, &inner.to_string())) {
                    mapping.set(key.as_str(), node(value)?)
                } else if !inner.is_flow_style() || !unchanged {
                    edit_mapping(&inner, before, after)?
                }
            }
            (Some(Value::List(before)), Value::List(after)) => {
                let Some(inner) = mapping.get_sequence(key.as_str()) else {
                    if unchanged {
                        continue;
                    }
                    return None;
                };
                let gains = after.len() > before.len();
                if inner.is_flow_style() && (grows(before.len(), gains) || too_long(key, &inner.to_string())) {
                    mapping.set(key.as_str(), node(value)?)
                } else if !inner.is_flow_style() || !unchanged {
                    edit_sequence(&inner, before, after)?
                }
            }
            _ if unchanged => {}
            _ => mapping.set(key.as_str(), node(value)?),
        }
    }
    Some(())
}

/// Whether `key: text` would make a line longer than [`LINE_LIMIT`].
fn too_long(key: &str, text: &str) -> bool {
    text.lines().any(|line| key.len() + 2 + line.trim_start().len() > LINE_LIMIT)
}

/// Whether a flow-style list or map (`[a, b]`, `{}`) that an edit changes
/// is rewritten in block style, one item per line: when it was empty (the
/// `[]` a new milestone starts with) or gains items, so that lists the
/// daemon grows stay readable in `git diff` and never make one long line.
/// A short flow list written by hand and changed in place stays as it is.
fn grows(before: usize, gains: bool) -> bool {
    before == 0 || gains
}

fn edit_sequence(sequence: &yaml_edit::Sequence, old: &[Value], new: &[Value]) -> Option<()> {
    for (i, value) in new.iter().enumerate() {
        match (old.get(i), value) {
            (Some(Value::Map(before)), Value::Map(after)) => {
                let unchanged = before == after;
                let Some(inner) = sequence.get(i).and_then(|item| item.as_mapping().cloned()) else {
                    if unchanged {
                        continue;
                    }
                    return None;
                };
                if inner.is_flow_style() && too_long("-", &inner.to_string()) {
                    sequence.set(i, node(value)?).then_some(())?;
                } else if !inner.is_flow_style() || !unchanged {
                    edit_mapping(&inner, before, after)?
                }
            }
            (Some(before), after) if before == after => {}
            (Some(_), _) => {
                sequence.set(i, node(value)?).then_some(())?;
            }
            (None, _) => sequence.push(node(value)?),
        }
    }
    for _ in new.len()..old.len() {
        sequence.pop()?;
    }
    Some(())
}

/// Whether `text` has a flow list or map on a line longer than
/// [`LINE_LIMIT`]: what `msctl upgrade` tidies.
pub fn has_long_flow_line(text: &str) -> bool {
    text.lines().any(|line| line.len() > LINE_LIMIT && (line.contains('[') || line.contains('{')))
}

/// A value as a node to put into the tree, written the way new files are.
fn node(value: &Value) -> Option<yaml_edit::YamlNode> {
    use std::str::FromStr;
    let text = serde_norway::to_string(value).ok()?;
    let doc = yaml_edit::Document::from_str(&text).ok()?;
    if let Some(m) = doc.as_mapping() {
        return Some(yaml_edit::YamlNode::Mapping(m));
    }
    if let Some(s) = doc.as_sequence() {
        return Some(yaml_edit::YamlNode::Sequence(s));
    }
    doc.as_scalar().map(yaml_edit::YamlNode::Scalar)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Map {
        parse_document(text, "test").unwrap()
    }

    /// A long flow list, as milestoned once wrote `tasks`, becomes one item
    /// per line on the next write even when it is not what changed; a
    /// short one written by hand stays.
    #[test]
    fn long_flow_lists_are_tidied_on_any_write_and_short_ones_stay() {
        let tasks: Vec<String> = (1..=3)
            .map(|i| format!("{{id: task-{i}, title: A task with a title of some length, status: pending}}"))
            .collect();
        let original = format!("id: m1\ntitle: T\ntags: [a, b]\ntasks: [{}]\n", tasks.join(", "));
        assert!(has_long_flow_line(&original));
        let old = doc(&original);
        let mut new = old.clone();
        new.insert("title", Value::from("Retitled"));
        let text = edit_preserving(&original, &old, &new).expect("an in-place edit");
        assert_eq!(doc(&text), new);
        assert!(!has_long_flow_line(&text), "{text}");
        assert!(text.lines().all(|l| l.len() <= LINE_LIMIT), "{text}");
        assert!(text.contains("tags: [a, b]\n"), "{text}");
        // Unchanged, the same holds: what `msctl upgrade` relies on.
        let again = edit_preserving(&original, &old, &old).expect("an in-place edit");
        assert!(!has_long_flow_line(&again) && doc(&again) == old, "{again}");
    }

    #[test]
    fn edits_keep_comments_order_quoting_and_blank_lines() {
        let original = "# Release plan, kept by hand\nid: m1\ntitle: 'Ship it'   # quoted on purpose\n\nstatus: planning\nprogress:\n  percentage: 0  # derived\n  total_tasks: 2\ntasks:\n  - id: t1\n    title: First\n    status: pending\n  - id: t2\n    title: Second\n    status: pending\nzeta: last\n";
        let old = doc(original);
        let mut new = old.clone();
        new.insert("status", Value::from("in_progress"));
        if let Some(Value::Map(progress)) = new.get_mut("progress") {
            progress.insert("percentage", Value::Int(50));
        }
        if let Some(Value::List(tasks)) = new.get_mut("tasks") {
            tasks[0].as_map_mut().unwrap().insert("status", Value::from("completed"));
        }
        new.insert("updated_at", Value::from("2026-11-20T00:00:00Z"));
        let text = edit_preserving(original, &old, &new).expect("an in-place edit");
        assert_eq!(doc(&text), new);
        for kept in [
            "# Release plan, kept by hand",
            "title: 'Ship it'   # quoted on purpose",
            "\n\nstatus:",
            "# derived",
            "zeta: last",
        ] {
            assert!(text.contains(kept), "lost {kept:?}:\n{text}");
        }
        assert!(
            text.find("zeta").unwrap() < text.find("updated_at").unwrap(),
            "untouched keys keep their order:\n{text}"
        );
    }

    #[test]
    fn a_file_that_does_not_hold_the_old_document_is_not_edited() {
        let old = doc("id: m1\ntitle: A\n");
        assert_eq!(edit_preserving("id: m1\ntitle: Changed meanwhile\n", &old, &doc("id: m1\ntitle: B\n")), None);
    }
}
