//! YAML text to documents and back. serde_norway (a maintained fork of
//! serde_yaml) bounds recursion depth and alias expansion, which is what keeps
//! a YAML bomb or a deeply nested document from taking the daemon down.

use milestones_protocol::{Map, Value};

use crate::error::ServiceError;

/// Parses YAML text that must hold one mapping (a milestone document).
/// `source` names where the text came from in error messages.
pub fn parse_document(text: &str, source: &str) -> Result<Map, ServiceError> {
    match parse_value(text, source)? {
        Value::Map(map) => Ok(map),
        other => Err(ServiceError::invalid(format!(
            "{source}: a milestone document must be a YAML mapping, found a {}",
            other.type_name()
        ))),
    }
}

/// Parses any YAML value.
pub fn parse_value(text: &str, source: &str) -> Result<Value, ServiceError> {
    serde_norway::from_str::<Value>(text).map_err(|e| ServiceError::invalid(format!("{source}: invalid YAML: {e}")))
}

/// Renders a document as YAML.
pub fn to_yaml(doc: &Map) -> String {
    // Serialising a Value to YAML only fails on non-string keys, which Map
    // cannot hold.
    serde_norway::to_string(doc).unwrap_or_default()
}
