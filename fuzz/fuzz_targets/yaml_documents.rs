//! YAML as it arrives in a milestone file or `--from-file`: parsing never
//! panics, and a document within the limits is readable everywhere: YAML
//! written back parses to the same document, and so does its JSON (the
//! form the SQL backends keep), NaN and infinities aside (JSON cannot hold
//! them, and those backends refuse them).

#![no_main]

use libfuzzer_sys::fuzz_target;
use milestoned::{document_limits, yaml};
use milestones_protocol::Value;

fn finite(value: &Value) -> bool {
    match value {
        Value::Float(f) => f.is_finite(),
        Value::List(items) => items.iter().all(finite),
        Value::Map(map) => map.iter().all(|(_, v)| finite(v)),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(doc) = yaml::parse_document(text, "fuzz.yaml") else { return };
    let doc = Value::Map(doc);
    let Value::Map(map) = &doc else { unreachable!() };
    if document_limits::check(map).is_err() || !finite(&doc) {
        return;
    }
    let written = yaml::to_yaml(map);
    let reread = yaml::parse_document(&written, "written.yaml").expect("written YAML parses");
    assert_eq!(doc, Value::Map(reread), "YAML round trip of:\n{written}");
    let json = serde_json::to_string(&doc).expect("a document serialises to JSON");
    let back: Value = serde_json::from_str(&json).expect("stored JSON reads back");
    assert_eq!(doc, back, "JSON round trip of {json}");
});
