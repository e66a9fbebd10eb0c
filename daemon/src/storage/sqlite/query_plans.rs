//! The plans SQLite makes for every list order and the common filters:
//! each page is read through an index in the order asked for (no scan of
//! the table, no sort of every match), and a total under status, priority
//! and category filters is read from `milestone_counts`. A change to the
//! schema or the compiler that loses one fails here, since speed itself is
//! only measured by the benchmarks.

use milestones_protocol::{Query, Value};
use rusqlite::params_from_iter;

use super::compile::{compile, CompiledQuery};
use super::{Flavour, MilestoneTable};
use crate::storage::common_lists::{common_queries, equal, filtered, sought_columns};

fn plan(table: &MilestoneTable, sql: &str, params: Vec<rusqlite::types::Value>) -> Vec<String> {
    let conn = table.reader().expect("a reader");
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
    let rows = stmt.query_map(params_from_iter(params), |r| r.get::<_, String>(3)).expect("plan rows");
    rows.collect::<Result<_, _>>().expect("plan")
}

fn describe(query: &Query, compiled: &CompiledQuery, plan: &[String]) -> String {
    format!("{query:?}\n  ORDER BY {}\n  plan: {plan:?}", compiled.order_sql)
}

#[test]
fn every_list_order_and_common_filter_is_read_through_an_index() {
    for flavour in [Flavour::Index, Flavour::Database] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (table, _) = MilestoneTable::open(&dir.path().join("milestones.db"), flavour).expect("open");
        for query in common_queries() {
            let compiled = compile(&query, None);
            let page = plan(&table, &compiled.page_sql(), compiled.page_params(&query).collect());
            let read_whole = page.iter().any(|step| step == "SCAN m" || step.contains("TEMP B-TREE"));
            assert!(
                !read_whole,
                "{flavour:?}: a page scans or sorts every row:\n{}",
                describe(&query, &compiled, &page)
            );
            let ordered = page.iter().any(|step| step.contains("USING INDEX") || step.contains("USING PRIMARY KEY"));
            assert!(
                ordered,
                "{flavour:?}: a page is not read through an index:\n{}",
                describe(&query, &compiled, &page)
            );

            for column in sought_columns(&query) {
                assert!(
                    page.iter().any(|step| step.contains(&format!("{column}=?"))),
                    "{flavour:?}: a page is not sought by {column} in an index:\n{}",
                    describe(&query, &compiled, &page)
                );
            }
            assert!(
                compiled.counted,
                "{flavour:?}: the total is counted row by row rather than read from milestone_counts:\n{}",
                describe(&query, &compiled, &page)
            );
        }
    }
}

#[test]
fn a_database_from_before_the_list_indexes_gains_them_with_its_counts() {
    for flavour in [Flavour::Index, Flavour::Database] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("milestones.db");
        let (table, _) = MilestoneTable::open(&path, flavour).expect("open");
        let doc = |id: &str, status: &str| {
            let mut doc = milestones_protocol::Map::new();
            for (key, value) in [("id", id), ("title", "t"), ("status", status), ("priority", "high")] {
                doc.insert(key, Value::from(value));
            }
            doc
        };
        table
            .write(|w| {
                for (i, status) in ["blocked", "blocked", "planning"].into_iter().enumerate() {
                    let record = crate::storage::record::Record::of(&doc(&format!("m-{i}"), status))?;
                    let stamp = crate::storage::tree::Stamp { size: 0, mtime_ns: 0 };
                    let file = super::FileColumns { path: "x", stamp, hash: "h" };
                    w.put(&record, Some(&file))?;
                }
                Ok(())
            })
            .expect("rows");
        // As version 1 left it: no list indexes, no counts, no tally, no
        // log of the graph's changes.
        {
            let conn = rusqlite::Connection::open(&path).expect("open directly");
            conn.execute_batch(
                "DROP TRIGGER milestone_counts_insert; DROP TRIGGER milestone_counts_delete;
                 DROP TRIGGER milestone_counts_update; DROP TABLE milestone_counts;
                 DROP INDEX idx_order_created_at_desc; PRAGMA user_version = 1;
                 DROP TRIGGER milestone_tally_insert; DROP TRIGGER milestone_tally_delete;
                 DROP TRIGGER milestone_tally_update; DROP TABLE milestone_tally;
                 DROP TRIGGER graph_changes_milestone_insert; DROP TRIGGER graph_changes_milestone_delete;
                 DROP TRIGGER graph_changes_edge_insert; DROP TRIGGER graph_changes_edge_delete;
                 DROP TRIGGER graph_changes_pruned; DROP TABLE graph_changes;",
            )
            .expect("downgrade");
        }
        drop(table);
        let (table, _) = MilestoneTable::open(&path, flavour).expect("open again");
        let query = filtered(vec![equal("status", "blocked")]);
        let page = table.query(&query).expect("query");
        assert_eq!(page.total, 2, "{flavour:?}: the counts were filled from the rows");
        let tally = super::tally::Tally::read(&table.reader().expect("a reader")).expect("read the tally");
        assert_eq!(tally.map(|t| t.milestones), Some(3), "{flavour:?}: the tally was filled from the rows");
        let changes = super::tally::GraphChanges::last(&table.reader().expect("a reader")).expect("read the changes");
        assert_eq!(changes, Some(0), "{flavour:?}: the graph's changes are logged from now on");
        let compiled = compile(&filtered(vec![]), None);
        let page = plan(&table, &compiled.page_sql(), compiled.page_params(&filtered(vec![])).collect());
        assert!(page.iter().any(|s| s.contains("idx_order_created_at_desc")), "{flavour:?}: {page:?}");
    }
}

#[test]
fn a_broad_search_walks_the_order_and_is_counted_in_the_search_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (table, _) = MilestoneTable::open(&dir.path().join("milestones.db"), Flavour::Database).expect("open");
    let terms = crate::search::SearchTerms::parse(Some("release")).expect("terms").expect("words");
    for query in [filtered(vec![]), filtered(vec![equal("status", "blocked")])] {
        let query = Query { text: Some("release".into()), ..query };
        let compiled = compile(&query, Some(&terms));
        for asking in [false, true] {
            let (walk, params) = compiled.walk_page(&query, asking).expect("an order one index keeps can be walked");
            let page = plan(&table, &walk, params);
            assert!(
                !page.iter().any(|step| step.contains("TEMP B-TREE") || step.contains("INTEGER PRIMARY KEY")),
                "a broad search (asking each row: {asking}) is read match by match and sorted:\n{}",
                describe(&query, &compiled, &page)
            );
            assert!(
                page.iter().any(|step| step.contains("USING INDEX")),
                "a broad search (asking each row: {asking}) is not read along the order's index:\n{}",
                describe(&query, &compiled, &page)
            );
        }
    }
    let query = Query { text: Some("release".into()), ..filtered(vec![]) };
    let compiled = compile(&query, Some(&terms));
    let count = plan(&table, &compiled.count_sql(), compiled.where_params.clone());
    assert!(
        !count.iter().any(|step| step == "SCAN m" || step.contains("INTEGER PRIMARY KEY")),
        "a search alone is counted by reading every match's row:\n{count:?}"
    );
}
