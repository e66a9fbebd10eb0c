//! The plans PostgreSQL makes for every list order and the common filters
//! (`storage::common_lists`): with sequential scans and sorts (incremental
//! ones too) priced out,
//! each page must still be read through an index in the order asked for,
//! which is only possible when such an index exists. A total under status,
//! priority and category filters is read from `milestone_counts`. Speed
//! itself is measured by the benchmarks.

use postgres::{Client, NoTls};

use super::compile::compile;
use super::PostgresStore;
use crate::database_url::DatabaseUrl;
use crate::storage::common_lists::{common_queries, sought_columns};

#[test]
fn every_list_order_and_common_filter_is_read_through_an_index() {
    let db = milestones_e2e::postgres::shared().database();
    let url = db.url();
    // Opening the store creates the schema.
    drop(PostgresStore::open(&DatabaseUrl::parse(&url).expect("a URL")).expect("open the store"));
    let mut client = Client::connect(&url, NoTls).expect("connect");
    client
        .batch_execute("SET enable_seqscan = off; SET enable_sort = off; SET enable_incremental_sort = off")
        .expect("settings");
    for query in common_queries() {
        let mut compiled = compile(&query, None);
        let sql = compiled.page_sql(query.limit, query.offset);
        let params = compiled.sql_params();
        let plan: Vec<String> =
            client.query(&format!("EXPLAIN {sql}"), &params).expect("explain").iter().map(|row| row.get(0)).collect();
        let plan = plan.join("\n");
        assert!(
            !plan.contains("Sort") && !plan.contains("Seq Scan on milestones"),
            "a page scans or sorts every row:\n{query:?}\n  ORDER BY {}\n{plan}",
            compiled.order_sql
        );
        assert!(plan.contains("Index"), "a page is not read through an index:\n{query:?}\n{plan}");
        for column in sought_columns(&query) {
            let sought = plan.lines().any(|line| line.contains("Index Cond") && line.contains(&format!("{column} = ")));
            assert!(sought, "a page is not sought by {column} in an index:\n{query:?}\n{plan}");
        }
        assert!(compiled.counted, "the total is counted row by row rather than read from milestone_counts:\n{query:?}");
    }
}
