//! `msctl stats` in SQL: aggregates over the query columns, `milestone_counts`
//! and the dependency table, finished by the same [`AnalyticsBuilder`] the in-memory backends
//! use, so figures agree to the last digit. No document's JSON is parsed.

use milestones_protocol::Analytics;
use rusqlite::Connection;

use super::tally::Tally;
use crate::analytics::{AnalyticsBuilder, Dimension};
use crate::graph::DependencyGraph;
use crate::storage::error::StorageResult;

/// The creation and completion times `stats` reads (of the completed
/// milestones, and of the others created within the trend), kept as a
/// builder holding only them, while `milestone_tally`'s `times_version`
/// stays (see `DerivedCache`): reading, parsing and sorting them again was
/// most of `stats` after a change.
#[derive(Default)]
pub struct CompletionTimes {
    /// The day they were added for (the trend ends that day).
    kept: Option<(chrono::NaiveDate, AnalyticsBuilder)>,
}

impl CompletionTimes {
    /// A builder for `today` with the times in it.
    fn builder(&mut self, conn: &Connection, today: chrono::NaiveDate) -> StorageResult<AnalyticsBuilder> {
        if let Some((day, builder)) = &self.kept {
            if *day == today {
                return Ok(builder.clone());
            }
        }
        let failed = || super::failure::failed("cannot read completion times");
        let mut builder = AnalyticsBuilder::new(today);
        let mut stmt = conn
            .prepare_cached(
                "SELECT created_at, completed_at FROM milestones WHERE completed_at IS NOT NULL \
                 UNION ALL SELECT created_at, NULL FROM milestones WHERE completed_at IS NULL AND created_at >= ?",
            )
            .map_err(failed())?;
        let mut rows = stmt.query([builder.trend_cutoff()]).map_err(failed())?;
        while let Some(row) = rows.next().map_err(failed())? {
            // Read where they lie, not copied out first.
            fn time<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
                Ok(row.get_ref(i)?.as_str_or_null()?)
            }
            builder.add_times(time(row, 0).map_err(failed())?, time(row, 1).map_err(failed())?);
        }
        builder.sort_times();
        self.kept = Some((today, builder.clone()));
        Ok(builder)
    }
}

pub fn compute(
    conn: &Connection,
    graph: &DependencyGraph,
    today: chrono::NaiveDate,
    times: &mut CompletionTimes,
) -> StorageResult<Analytics> {
    let failed = super::failure::failed;
    // Completed milestones (for completion times), and the others created
    // recently enough to be in the trend.
    let mut builder = times.builder(conn, today)?;

    let (total, tasks_total, tasks_completed) = match Tally::read(conn)? {
        Some(tally) => (tally.milestones, tally.tasks_total, tally.tasks_completed),
        None => conn
            .query_row(
                "SELECT COUNT(*), IFNULL(SUM(tasks_total), 0), IFNULL(SUM(tasks_completed), 0) FROM milestones",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(failed("cannot count milestones"))?,
    };
    builder.add_total(total as u64);
    builder.add_tasks(tasks_total as u64, tasks_completed as u64);

    for dimension in Dimension::ALL {
        let field = dimension.field();
        let failed = || super::failure::failed(format!("cannot count by {field}"));
        // Text values from the counts the triggers keep (a value whose
        // milestones all went keeps its rows, at 0); the JSON is read only
        // for rows where the column is NULL, to tell an absent field from
        // one holding something other than text.
        let by_text = format!(
            "SELECT {field}, SUM(n) FROM milestone_counts WHERE {field} IS NOT NULL GROUP BY {field} HAVING SUM(n) > 0"
        );
        let by_type =
            format!("SELECT json_type(data, '$.{field}'), COUNT(*) FROM milestones WHERE {field} IS NULL GROUP BY 1");
        for (sql, is_text) in [(by_text, true), (by_type, false)] {
            let mut stmt = conn.prepare_cached(&sql).map_err(failed())?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))).map_err(failed())?;
            for row in rows {
                let (value, n) = row.map_err(failed())?;
                let label = if is_text { value.unwrap_or_default() } else { type_label(value.as_deref()) };
                builder.count(dimension, label, n as u64);
            }
        }
    }

    Ok(builder.finish(graph))
}

/// The label [`crate::analytics::label`] gives a field that is not text,
/// from its JSON type.
fn type_label(json_type: Option<&str>) -> String {
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
