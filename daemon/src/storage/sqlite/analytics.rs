//! `msctl stats` in SQL: aggregates over the query columns and the dependency
//! table, finished by the same [`AnalyticsBuilder`] the in-memory backends
//! use, so figures agree to the last digit. No document's JSON is parsed.

use milestones_protocol::Analytics;
use rusqlite::Connection;

use crate::analytics::{AnalyticsBuilder, Dimension};
use crate::graph::DependencyGraph;
use crate::storage::{StorageError, StorageResult};

pub fn compute(conn: &Connection, graph: &DependencyGraph, today: chrono::NaiveDate) -> StorageResult<Analytics> {
    let failed = StorageError::sqlite;
    let mut builder = AnalyticsBuilder::new(today);

    let (total, tasks_total, tasks_completed): (i64, i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), IFNULL(SUM(tasks_total), 0), IFNULL(SUM(tasks_completed), 0) FROM milestones",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(failed("cannot count milestones"))?;
    builder.add_total(total as u64);
    builder.add_tasks(tasks_total as u64, tasks_completed as u64);

    for dimension in Dimension::ALL {
        let field = dimension.field();
        // The JSON type is read only where the column is NULL, to tell an
        // absent field from one holding something other than text.
        let sql = format!(
            "SELECT {field}, CASE WHEN {field} IS NULL THEN json_type(data, '$.{field}') END AS kind, COUNT(*) \
             FROM milestones GROUP BY {field}, kind"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(failed("cannot count by field"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?)))
            .map_err(failed("cannot count by field"))?;
        for row in rows {
            let (text, kind, n) = row.map_err(failed("cannot count by field"))?;
            builder.count(dimension, label(text, kind.as_deref()), n as u64);
        }
    }

    // Completed milestones (for completion times), and the others created
    // recently enough to be in the trend.
    let mut stmt = conn
        .prepare_cached(
            "SELECT created_at, completed_at FROM milestones WHERE completed_at IS NOT NULL \
             UNION ALL SELECT created_at, NULL FROM milestones WHERE completed_at IS NULL AND created_at >= ?",
        )
        .map_err(failed("cannot read completion times"))?;
    let rows = stmt
        .query_map([builder.trend_cutoff()], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)))
        .map_err(failed("cannot read completion times"))?;
    for row in rows {
        let (created, completed) = row.map_err(failed("cannot read completion times"))?;
        builder.add_times(created.as_deref(), completed.as_deref());
    }
    Ok(builder.finish(graph))
}

/// The label [`crate::analytics::label`] gives, from a text column and the
/// field's JSON type.
fn label(text: Option<String>, json_type: Option<&str>) -> String {
    if let Some(text) = text {
        return text;
    }
    let type_name = match json_type {
        None | Some("null") => return "(none)".to_owned(),
        Some("true" | "false") => "boolean",
        Some("integer") => "integer",
        Some("real") => "number",
        Some("array") => "list",
        Some("object") => "mapping",
        Some(other) => other,
    };
    format!("({type_name})")
}
