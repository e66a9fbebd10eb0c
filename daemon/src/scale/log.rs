//! The scale logs, `logs/scale-events.jsonl` and
//! `logs/performance-metrics.jsonl`: JSON lines appended in seed 004's
//! shapes, by the monitor and by the migration manager (a rolled-back
//! migration's reason is a scale event too).

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::layout::ProjectLayout;

/// Appends a scale event: what happened, the backend serving, the one the
/// decision calls for (empty when none was weighed), and the details.
pub fn scale_event(layout: &ProjectLayout, event: &str, current: &str, optimal: &str, details: Value) {
    let line = json!({
        "timestamp": crate::document::now_timestamp(),
        "event": event,
        "current_backend": current,
        "optimal_backend": optimal,
        "details": details,
    });
    append_line(&layout.scale_events(), &line);
}

/// Appends one JSON line; a failed write is logged, never fatal.
pub fn append_line(path: &Path, value: &Value) {
    let mut line = value.to_string();
    line.push('\n');
    let written =
        std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot append to a scale log");
    }
}
