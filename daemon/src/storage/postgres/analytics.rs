//! `msctl stats` and the dependency graph in PostgreSQL: aggregates over
//! the generated columns and the dependency table, finished by the same
//! [`AnalyticsBuilder`] every backend uses, so figures agree to the last
//! digit. No document is read whole.

use milestones_protocol::Analytics;
use postgres::Transaction;

use super::failure::failed;
use crate::analytics::{AnalyticsBuilder, Dimension};
use crate::graph::DependencyGraph;
use crate::storage::error::StorageResult;

pub fn graph(tx: &mut Transaction<'_>, target: &str) -> StorageResult<DependencyGraph> {
    let failed = || failed(target, "read dependencies");
    let mut graph = DependencyGraph::default();
    for row in tx.query("SELECT id FROM milestones", &[]).map_err(failed())? {
        graph.add_node(row.get(0));
    }
    for row in tx.query("SELECT milestone_id, depends_on FROM milestone_dependencies", &[]).map_err(failed())? {
        graph.add_edge(row.get(0), row.get(1));
    }
    Ok(graph)
}

pub fn compute(
    tx: &mut Transaction<'_>,
    graph: &DependencyGraph,
    today: chrono::NaiveDate,
    target: &str,
) -> StorageResult<Analytics> {
    let mut builder = AnalyticsBuilder::new(today);
    let row = tx
        .query_one(
            "SELECT COUNT(*), COALESCE(SUM(tasks_total), 0)::int8, COALESCE(SUM(tasks_completed), 0)::int8 FROM milestones",
            &[],
        )
        .map_err(failed(target, "count milestones"))?;
    builder.add_total(row.get::<_, i64>(0) as u64);
    builder.add_tasks(row.get::<_, i64>(1) as u64, row.get::<_, i64>(2) as u64);

    for dimension in Dimension::ALL {
        let field = dimension.field();
        let failed = || failed(target, "count milestones by field");
        // Text values from the generated column; the JSON's type only for
        // rows where the column is NULL, to tell an absent field from one
        // holding something other than text. `field` is one of three
        // column names, never user input.
        let by_text = format!("SELECT {field}, COUNT(*) FROM milestones WHERE {field} IS NOT NULL GROUP BY {field}");
        for row in tx.query(&by_text, &[]).map_err(failed())? {
            builder.count(dimension, row.get::<_, String>(0), row.get::<_, i64>(1) as u64);
        }
        let by_type = format!(
            "SELECT CASE WHEN jsonb_typeof(data -> '{field}') = 'number'
                    THEN CASE WHEN (data -> '{field}')::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'number' END
                    ELSE jsonb_typeof(data -> '{field}') END, COUNT(*)
             FROM milestones WHERE {field} IS NULL GROUP BY 1"
        );
        for row in tx.query(&by_type, &[]).map_err(failed())? {
            builder.count(dimension, type_label(row.get(0)), row.get::<_, i64>(1) as u64);
        }
    }

    // Completed milestones (for completion times), and the others created
    // recently enough to be in the trend.
    let rows = tx
        .query(
            "SELECT created_at, completed_at FROM milestones WHERE completed_at IS NOT NULL
             UNION ALL SELECT created_at, NULL FROM milestones WHERE completed_at IS NULL AND created_at >= $1",
            &[&builder.trend_cutoff()],
        )
        .map_err(failed(target, "read completion times"))?;
    for row in rows {
        builder.add_times(row.get(0), row.get(1));
    }
    Ok(builder.finish(graph))
}

/// The label [`crate::analytics::label`] gives a field that is not text,
/// from its JSON type.
fn type_label(json_type: Option<&str>) -> String {
    let type_name = match json_type {
        None | Some("null") => return "(none)".to_owned(),
        Some("boolean") => "boolean",
        Some("array") => "list",
        Some("object") => "mapping",
        Some(other) => other,
    };
    format!("({type_name})")
}
