//! How large one milestone may be, and the check every way in applies:
//! requests (create, update, tasks), files found in the tree (at start-up
//! and from the watcher), and files dropped into a database project.
//!
//! Without limits, one milestone holds everyone up: every write of it
//! rewrites, re-indexes and re-sends the whole document while others wait,
//! and a list that includes it may outgrow the frame a reply must fit in.
//! A milestone is a plan, not a data store: the limits sit far above any
//! real one and far below what would hurt.

use std::fmt::Write as _;

use milestones_protocol::value::MAX_NESTING;
use milestones_protocol::{Map, Value};

use crate::document::DocumentError;

/// The largest milestone file the daemon reads: 1 MiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The most text (keys and strings together) in one document: 1 MiB.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// The most values in one document, counting every map entry and list
/// item at any depth.
pub const MAX_VALUES: usize = 10_000;

/// The longest key or string: 64 KiB.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// Checks `doc` against the limits in one pass, naming the field at fault.
/// Nesting is held to what every reader takes back
/// ([`MAX_NESTING`], the document itself being the first level): values
/// read from anywhere are bounded as they are read, but an edit (`--set`
/// of a long dotted path) can nest deeper.
pub fn check(doc: &Map) -> Result<(), DocumentError> {
    let mut tally = Tally::default();
    let mut path = Vec::new();
    visit_map(doc, &mut tally, &mut path)
}

#[derive(Default)]
struct Tally {
    values: usize,
    text: usize,
}

/// One step of the path to the value being checked.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn visit_map<'a>(map: &'a Map, tally: &mut Tally, path: &mut Vec<Step<'a>>) -> Result<(), DocumentError> {
    // The document is level 1; a value at the end of `path` is one deeper.
    if path.len() + 1 >= MAX_NESTING && !map.is_empty() {
        return Err(too_deep(path));
    }
    for (key, value) in map.iter() {
        path.push(Step::Key(key));
        count(tally, path)?;
        text(key, tally, path, "key")?;
        visit(value, tally, path)?;
        path.pop();
    }
    Ok(())
}

fn visit<'a>(value: &'a Value, tally: &mut Tally, path: &mut Vec<Step<'a>>) -> Result<(), DocumentError> {
    match value {
        Value::String(s) => text(s, tally, path, "text"),
        Value::Map(map) => visit_map(map, tally, path),
        Value::List(items) => {
            if path.len() + 1 >= MAX_NESTING && !items.is_empty() {
                return Err(too_deep(path));
            }
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                count(tally, path)?;
                visit(item, tally, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => Ok(()),
    }
}

fn count(tally: &mut Tally, path: &[Step]) -> Result<(), DocumentError> {
    tally.values += 1;
    if tally.values > MAX_VALUES {
        return Err(too_large(
            path,
            format!(
                "the milestone holds more than {MAX_VALUES} values (map entries and list items, at any depth); \
                 keep bulk data out of milestones, or split this one"
            ),
        ));
    }
    Ok(())
}

fn text(s: &str, tally: &mut Tally, path: &[Step], what: &str) -> Result<(), DocumentError> {
    if s.len() > MAX_STRING_BYTES {
        return Err(too_large(
            path,
            format!(
                "the {what} at `{}` is {} bytes long; at most {MAX_STRING_BYTES} bytes are kept",
                dotted(path),
                s.len()
            ),
        ));
    }
    tally.text += s.len();
    if tally.text > MAX_TEXT_BYTES {
        return Err(too_large(
            path,
            format!("the milestone's keys and text add up to more than {MAX_TEXT_BYTES} bytes; split it"),
        ));
    }
    Ok(())
}

fn too_deep(path: &[Step]) -> DocumentError {
    too_large(
        path,
        format!("lists and maps nest more than {MAX_NESTING} deep at `{}`; no reader takes that back", dotted(path)),
    )
}

fn too_large(path: &[Step], message: String) -> DocumentError {
    DocumentError::TooLarge { message, field: Some(dotted(path)) }
}

/// The path as `msctl update --set` writes it: `tasks.3.title`.
fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for (i, step) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match step {
            Step::Key(key) => out.push_str(key),
            Step::Index(index) => {
                let _ = write!(out, "{index}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(entries: impl IntoIterator<Item = (String, Value)>) -> Map {
        let mut map = Map::new();
        for (k, v) in entries {
            map.insert(k, v);
        }
        map
    }

    #[test]
    fn a_document_at_the_limits_passes_and_one_value_more_is_named() {
        let at_limit = doc((0..MAX_VALUES).map(|i| (format!("k{i}"), Value::Int(1))));
        assert_eq!(check(&at_limit), Ok(()));
        let mut over = at_limit;
        over.insert("one_more", Value::Null);
        let e = check(&over).unwrap_err();
        assert!(e.to_string().contains("more than 10000 values"), "{e}");
        assert_eq!(e.field(), Some("one_more"));
    }

    #[test]
    fn a_long_string_is_named_by_its_path() {
        let long = Value::from("x".repeat(MAX_STRING_BYTES + 1).as_str());
        let nested = doc([("tasks".to_owned(), Value::List(vec![Value::Map(doc([("title".to_owned(), long)]))]))]);
        let e = check(&nested).unwrap_err();
        assert_eq!(e.field(), Some("tasks.0.title"));
        assert!(e.to_string().contains("65537 bytes long"), "{e}");
    }

    /// Found by the `set_paths` fuzz target: a `--set` of a dotted path a
    /// hundred segments long nested maps deeper than any reader takes back.
    #[test]
    fn nesting_deeper_than_readers_take_is_refused() {
        let path: Vec<String> = (0..MAX_NESTING).map(|i| format!("k{i}")).collect();
        let mut deep = Map::new();
        crate::document::set_path(&mut deep, &path.join("."), Value::Int(1)).unwrap();
        let e = check(&deep).unwrap_err();
        assert!(e.to_string().contains("nest more than 100 deep"), "{e}");
        let mut fits = Map::new();
        crate::document::set_path(&mut fits, &path[..MAX_NESTING - 1].join("."), Value::Int(1)).unwrap();
        assert_eq!(check(&fits), Ok(()));
        // What passes reads back from YAML and JSON.
        let yaml = crate::yaml::to_yaml(&fits);
        assert_eq!(crate::yaml::parse_document(&yaml, "t").unwrap(), fits);
    }

    #[test]
    fn text_adds_up_across_the_document() {
        let chunk = "y".repeat(MAX_STRING_BYTES);
        let fits = MAX_TEXT_BYTES / MAX_STRING_BYTES;
        let under = doc((0..fits - 1).map(|i| (format!("{i}"), Value::from(chunk.as_str()))));
        assert_eq!(check(&under), Ok(()));
        let over = doc((0..=fits).map(|i| (format!("{i}"), Value::from(chunk.as_str()))));
        assert!(check(&over).unwrap_err().to_string().contains("add up to more than"));
    }
}
