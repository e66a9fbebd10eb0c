//! `--set PATH=VALUE` edits applied to a document: any path and value is
//! applied or refused with an error, never a panic, and an edited document
//! that passes the limits reads back from YAML as it is.

#![no_main]

use libfuzzer_sys::fuzz_target;
use milestoned::{document, document_limits, yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A document, then `path=value` lines.
    let (doc_text, edits) = text.split_once("\n---\n").unwrap_or((text, ""));
    let Ok(mut doc) = yaml::parse_document(doc_text, "fuzz.yaml") else { return };
    for line in edits.lines() {
        let Some((path, value)) = line.split_once('=') else { continue };
        let Ok(value) = yaml::parse_value(value, "value") else { continue };
        let _ = document::set_path(&mut doc, path, value);
    }
    document::fill_task_defaults(&mut doc);
    document::derive_progress(&mut doc, "2026-01-01T00:00:00Z");
    // NaN is unequal to itself; the limits are what a request must pass.
    if document_limits::check(&doc).is_err() || format!("{doc:?}").contains("NaN") {
        return;
    }
    let written = yaml::to_yaml(&doc);
    let reread = yaml::parse_document(&written, "written.yaml").expect("an edited document parses back");
    assert_eq!(doc, reread, "YAML round trip of:\n{written}");
});
