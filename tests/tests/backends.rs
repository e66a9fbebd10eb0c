//! The storage backends side by side: one suite of commands run on file,
//! hybrid and SQLite database projects must give the same answers; documents
//! survive migrations value for value; the shell tooling's `sqlite3` queries
//! keep working; the hybrid index heals itself; hostile queries are refused
//! or answered correctly, never executed.

use milestones_e2e::protocol::{Filter, FilterOp, Query, Request, Response, SortKey, Value as Wire};
use milestones_e2e::{fixture, Daemon, Project, ALL_BACKENDS, SERVER_BACKEND};
use serde_json::{json, Value};

const DOCS: &[&str] = &[
    "id: auth-core\ntitle: Authentication core rewrite\ndescription: Replace the legacy login flow\nstatus: in_progress\npriority: critical\ncategory: security\ncreated_at: '2026-09-01T10:00:00Z'\ntimeline: {estimated_hours: 120}\ntags: [backend, security]\ntasks:\n  - {id: t1, title: Design token storage, status: completed}\n  - {id: t2, title: Migrate sessions, status: pending}\n",
    "id: auth-ui\ntitle: Auth screens\nstatus: planning\npriority: high\ncategory: frontend\ncreated_at: '2026-09-03T08:30:00Z'\ntimeline: {estimated_hours: 40.5}\ntags: [frontend]\ndependencies: {requires: [auth-core]}\n",
    "id: docs-site\ntitle: Documentation site\nstatus: planning\npriority: low\ncategory: docs\ncreated_at: '2026-08-15T00:00:00Z'\ntags: []\n",
    "id: search-v2\ntitle: 'Search v2: FTS'\ndescription: Full-text search with ranking\nstatus: blocked\npriority: high\ncategory: backend\ncreated_at: '2026-10-01T12:00:00Z'\ntimeline: {estimated_hours: 80}\ntags: [backend]\ndependencies: {requires: [auth-core]}\n",
    "id: mobile-app\ntitle: Mobile app beta\nstatus: planning\npriority: medium\ncategory: frontend\ncreated_at: '2026-10-10T09:00:00Z'\ntimeline: {estimated_hours: unknown}\n",
    "id: billing\ntitle: Billing integration\nstatus: completed\npriority: high\ncategory: backend\ncreated_at: '2026-07-01T00:00:00Z'\ncompleted_at: '2026-08-01T12:00:00Z'\ntimeline: {estimated_hours: 60}\ndependencies: {enables: [search-v2]}\n",
    "id: ops-alerts\ntitle: Ops alerting\nstatus: cancelled\npriority: low\ncategory: ops\ncreated_at: '2026-06-01T00:00:00Z'\ntasks:\n  - {id: p1, title: Wire pager rotation, status: pending}\n",
    "id: legacy-cleanup\ntitle: Legacy cleanup\nstatus: archived\npriority: medium\ncategory: ops\ncreated_at: '2026-05-01T00:00:00Z'\n",
    "id: perf\ntitle: Performance budget\nstatus: planning\npriority: critical\ncreated_at: '2026-10-20T00:00:00Z'\ntimeline: {estimated_hours: 8}\nprogress: {percentage: 50}\n",
    "id: quote-test\ntitle: \"O'Brien's \\\"quoted\\\" title; DROP TABLE milestones; --\"\nstatus: planning\npriority: medium\ncategory: qa\ncreated_at: '2026-10-21T00:00:00Z'\n",
    "id: unicode\ntitle: Café déploiement Über\nstatus: planning\npriority: low\ncategory: i18n\ncreated_at: '2026-10-22T00:00:00Z'\n",
    "id: same-time-b\ntitle: Tie B\nstatus: planning\npriority: medium\ncategory: qa\ncreated_at: '2026-10-05T00:00:00Z'\n",
    "id: same-time-a\ntitle: Tie A\nstatus: planning\npriority: medium\ncategory: qa\ncreated_at: '2026-10-05T00:00:00Z'\n",
    // A core text field holding a list counts as absent in queries.
    "id: odd-types\ntitle: Odd types\nstatus: planning\ncategory: [a, b]\ncreated_at: '2026-04-01T00:00:00Z'\n",
];

const QUOTE_TITLE: &str = "O'Brien's \"quoted\" title; DROP TABLE milestones; --";

/// `list` invocations whose results must agree on every backend.
const LISTS: &[&[&str]] = &[
    &[],
    &["--status", "planning"],
    &["--priority", "high"],
    &["--category", "frontend"],
    &["--sort", "-priority"],
    &["--sort", "priority"],
    &["--sort", "title"],
    &["--sort", "-timeline.estimated_hours"],
    &["--sort", "timeline.estimated_hours"],
    &["--sort", "category,-created_at"],
    &["--sort", "-completed_at"],
    &["--where", "timeline.estimated_hours>50"],
    &["--where", "timeline.estimated_hours<=40.5"],
    &["--where", "timeline.estimated_hours=unknown"],
    &["--where", "tags~backend"],
    &["--where", "title~AUTH"],
    &["--where", "description~legacy"],
    &["--where", "progress.percentage>=50"],
    &["--where", "status!=planning"],
    &["--where", "dependencies.requires~auth-core"],
    &["--where", "tasks.0.title~design"],
    &["--where", "tasks.1.status=pending"],
    &["--where", "category=null"],
    &["--where", "created_at>=2026-10-01"],
    &["--where", "created_at<2026-09-02", "--where", "priority!=low"],
    &["--where", "nosuch.path=1"],
    &["--all"],
    &["--where", "status=archived"],
    &["--limit", "3", "--offset", "2"],
    &["--all", "--sort", "id", "--offset", "10"],
];

const SEARCHES: &[&str] = &[
    "auth",
    "AUTH rew",
    "pager",
    "café",
    "CAFÉ ÜBER",
    "drop table",
    "O'Brien",
    "\"quoted\"",
    "fts ranking",
    "nothing-like-this",
];

fn ids(v: &Value) -> Vec<String> {
    v.as_array().expect("a JSON array").iter().map(|m| m["id"].as_str().unwrap_or("?").to_owned()).collect()
}

/// Queries only the client library can express (`Exists`, typed values).
fn wire_queries() -> Vec<Query> {
    let filter = |path: &str, op, value| Query {
        filters: vec![Filter { path: path.into(), op, value }],
        include_archived: true,
        sort: vec![SortKey { path: "id".into(), descending: false }],
        ..Query::default()
    };
    vec![
        filter("timeline", FilterOp::Exists, Wire::Bool(true)),
        filter("category", FilterOp::Exists, Wire::Bool(false)),
        filter("timeline.estimated_hours", FilterOp::Eq, Wire::Float(120.0)),
        filter("timeline.estimated_hours", FilterOp::Ne, Wire::Int(80)),
        filter("timeline.estimated_hours", FilterOp::Gt, Wire::String("a".into())),
        filter("tags", FilterOp::Contains, Wire::String("security".into())),
        filter("tags", FilterOp::Eq, Wire::String("backend".into())),
        filter("progress.percentage", FilterOp::Lt, Wire::Int(10)),
        filter("dependencies.requires", FilterOp::Exists, Wire::Bool(true)),
    ]
}

/// A document without the times the daemon stamps with its clock.
fn without_clock(mut doc: Value) -> Value {
    let doc_map = doc.as_object_mut().unwrap();
    doc_map.remove("updated_at");
    doc_map.get_mut("progress").and_then(Value::as_object_mut).map(|p| p.remove("last_update"));
    for task in doc_map.get_mut("tasks").and_then(Value::as_array_mut).into_iter().flatten() {
        task.as_object_mut().map(|t| t.remove("completed_at"));
    }
    doc
}

/// Runs the suite; returns every observable answer, labelled.
fn run_suite(p: &Project, d: &Daemon) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for doc in DOCS {
        p.msctl_with_input(&["create", "--from-file", "-"], Some(doc)).ok();
    }
    let observe = |seen: &mut Vec<(String, Value)>, stage: &str| {
        for args in LISTS {
            let mut full = vec!["list", "--json"];
            full.extend_from_slice(args);
            seen.push((format!("{stage} list {args:?}"), json!(ids(&p.msctl(&full).json()))));
        }
        for words in SEARCHES {
            seen.push((format!("{stage} search {words}"), json!(ids(&p.msctl(&["search", words, "--json"]).json()))));
        }
        let mut client = d.client();
        for query in wire_queries() {
            let Response::Page(page) = client.request(Request::List { query: query.clone() }).unwrap() else {
                panic!()
            };
            let found: Vec<String> = page
                .items
                .iter()
                .map(|m| m.as_map().and_then(|m| m.get("id")).and_then(Wire::as_str).unwrap().to_owned())
                .collect();
            seen.push((format!("{stage} wire {:?}", query.filters), json!({ "ids": found, "total": page.total })));
        }
        seen.push((format!("{stage} stats"), p.msctl(&["stats", "--json"]).json()));
        seen.push((format!("{stage} deps"), p.msctl(&["deps", "--json"]).json()));
        seen.push((format!("{stage} get"), without_clock(p.msctl(&["get", "auth-core", "--json"]).json())));
    };
    observe(&mut seen, "fresh");

    // Changes of every kind, then everything again.
    p.msctl(&["update", "auth-ui", "--set", "status=in_progress", "--set", "timeline.estimated_hours=45"]).ok();
    p.msctl(&["task", "add", "auth-ui", "--title", "Login form", "--id", "f1"]).ok();
    p.msctl(&["task", "done", "auth-core", "t2"]).ok();
    p.msctl(&["update", "search-v2", "--set", "status=completed", "--set", "completed_at=2026-10-15T00:00:00Z"]).ok();
    p.msctl(&["delete", "docs-site"]).ok();
    p.msctl(&["delete", "ops-alerts", "--purge"]).ok();
    let generated = p.msctl(&["create", "--title", "Generated one", "--category", "qa"]).ok().trim().to_owned();
    assert!(generated.starts_with("ms-"), "{generated}");
    assert_eq!(p.msctl(&["get", &generated, "--json"]).json()["title"], "Generated one");
    // A random id would order differently on each backend: compared under
    // a name of its own.
    p.msctl(&["delete", &generated, "--purge"]).ok();
    p.msctl(&["create", "--title", "Generated one", "--category", "qa", "--id", "generated-one"]).ok();
    let cycle = p.msctl(&["update", "auth-core", "--set", "dependencies.requires=[auth-ui]"]);
    assert_ne!(cycle.code, 0);
    assert!(cycle.stderr.contains("auth-core -> auth-ui -> auth-core"), "{cycle:?}");
    // A loop closed through `enables` on another milestone is seen too.
    let cycle = p.msctl(&["update", "billing", "--set", "dependencies.requires=[search-v2]"]);
    assert!(cycle.stderr.contains("billing -> search-v2 -> billing"), "{cycle:?}");
    p.msctl(&["get", "ops-alerts"]).fails(3, "does not exist");
    observe(&mut seen, "changed");
    seen
}

#[test]
fn every_backend_answers_the_suite_the_same_way() {
    let mut results = Vec::new();
    for backend in ALL_BACKENDS {
        let p = Project::on_any_backend(backend);
        let d = p.start(&[]);
        let info = p.msctl(&["backend", "--json"]).json();
        let (kind, engine) = if backend == SERVER_BACKEND { ("database", "postgresql") } else { (backend, "sqlite") };
        assert_eq!(info["backend"], kind);
        if kind == "database" {
            assert_eq!(info["database"], engine);
        }
        results.push((backend, run_suite(&p, &d)));
    }
    let (_, reference) = &results[0];
    let answer = |label: &str| reference.iter().find(|(l, _)| l == label).map(|(_, v)| v.clone()).unwrap();

    // The reference itself is right, so agreeing with it means something.
    assert_eq!(
        answer("fresh list []"),
        json!([
            "unicode",
            "quote-test",
            "perf",
            "mobile-app",
            "same-time-a",
            "same-time-b",
            "search-v2",
            "auth-ui",
            "auth-core",
            "docs-site",
            "billing",
            "ops-alerts",
            "odd-types"
        ])
    );
    assert_eq!(
        answer("fresh list [\"--sort\", \"-priority\"]").as_array().unwrap()[..2],
        [json!("auth-core"), json!("perf")]
    );
    assert_eq!(
        answer("fresh list [\"--sort\", \"-timeline.estimated_hours\"]"),
        json!([
            "mobile-app",
            "auth-core",
            "search-v2",
            "billing",
            "auth-ui",
            "perf",
            "docs-site",
            "odd-types",
            "ops-alerts",
            "quote-test",
            "same-time-a",
            "same-time-b",
            "unicode"
        ]),
        "text sorts after numbers, missing values last, ties by id"
    );
    assert_eq!(
        answer("fresh list [\"--where\", \"timeline.estimated_hours>50\"]"),
        json!(["search-v2", "auth-core", "billing"])
    );
    assert_eq!(answer("fresh list [\"--where\", \"category=null\"]"), json!(["perf", "odd-types"]));
    assert_eq!(answer("fresh list [\"--where\", \"nosuch.path=1\"]"), json!([]));
    assert_eq!(answer("fresh list [\"--where\", \"status=archived\"]"), json!(["legacy-cleanup"]));
    assert_eq!(answer("fresh search auth"), json!(["auth-ui", "auth-core"]));
    assert_eq!(answer("fresh search pager"), json!(["ops-alerts"]));
    assert_eq!(answer("fresh search CAFÉ ÜBER"), json!(["unicode"]));
    assert_eq!(answer("fresh search drop table"), json!(["quote-test"]));
    assert_eq!(answer("fresh search nothing-like-this"), json!([]));
    let stats = answer("changed stats");
    assert_eq!(stats["total"], 14);
    assert!(stats["by_category"].as_array().unwrap().contains(&json!({ "key": "(list)", "count": 1 })), "{stats}");
    assert_eq!(stats["completed"], 2, "{stats}");
    assert_eq!(stats["dependencies"]["total"], 3, "{stats}");
    assert_eq!(stats["dependencies"]["longest_chain"], 2, "{stats}");
    assert_eq!(stats["median_completion_days"], 22.5, "{stats}");
    let today = stats["per_day"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(today["created"], 1, "the generated milestone was created today: {stats}");

    for (backend, answers) in &results[1..] {
        assert_eq!(answers.len(), reference.len());
        for ((label, want), (_, got)) in reference.iter().zip(answers) {
            assert_eq!(got, want, "{backend} differs from file on `{label}`");
        }
    }
}

#[test]
fn seed_documents_survive_file_hybrid_sqlite_postgresql_sqlite_file() {
    let p = Project::new();
    let _d = p.start(&[]);
    let example = fixture("seed-000-example.yaml");
    let template = fixture("seed-000-template.yaml").replace("seed-template", "from-template");
    let unknown = "id: odd\ntitle: Odd one\nx-custom: {nested: [1, 2.5, 'three', true, null], empty: {}}\nnumbers: [0, -7, 1.0e-9, 123456789012]\n";
    for doc in [example.as_str(), template.as_str(), unknown] {
        p.msctl_with_input(&["create", "--from-file", "-"], Some(doc)).ok();
    }
    let snapshot = || -> Vec<Value> {
        let ids = ids(&p.msctl(&["list", "--all", "--sort", "id", "--json"]).json());
        assert_eq!(ids.len(), 3);
        ids.iter().map(|id| p.msctl(&["get", id, "--json"]).json()).collect()
    };
    let before = snapshot();
    assert_eq!(before[2]["x-custom"]["nested"], json!([1, 2.5, "three", true, null]));
    let db = milestones_e2e::postgres::shared().database();
    let url = db.url();
    let steps: [(&[&str], &str); 5] = [
        (&["hybrid"], "hybrid"),
        (&["database"], "database"),
        (&["database", "--database", "postgresql", "--url", &url], "database"),
        (&["database", "--database", "sqlite"], "database"),
        (&["file"], "file"),
    ];
    for (target, backend) in steps {
        let args: Vec<&str> = ["migrate"].iter().chain(target).chain(&["--json"]).copied().collect();
        let report = p.msctl(&args).json();
        assert_eq!(report["milestones"], 3);
        assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], backend);
        assert_eq!(std::fs::read_to_string(p.milestones().join("config/storage-backend.txt")).unwrap().trim(), backend);
        let backup = p.root.join(report["backup"].as_str().unwrap());
        assert!(backup.join("config/storage-backend.txt").is_file());
        if report["from"] == "database" && target.contains(&"sqlite") {
            // Leaving PostgreSQL: its documents are in the backup.
            let dump = std::fs::read_to_string(backup.join("postgresql-milestones.jsonl")).unwrap();
            assert_eq!(dump.lines().count(), 3, "{dump}");
        }
        assert_eq!(snapshot(), before, "values changed on the way to {target:?}");
        if target.contains(&"postgresql") {
            // Plain SQL sees them too: seed 004's own count, and the
            // generated columns.
            let live = db.psql("SELECT COUNT(*) FROM milestones WHERE data->>'status' != 'archived'");
            assert_eq!(live, "3");
            let expected: Vec<String> = before
                .iter()
                .map(|d| format!("{}|{}", d["id"].as_str().unwrap(), d["status"].as_str().unwrap_or_default()))
                .collect();
            assert_eq!(db.psql("SELECT id, status FROM milestones ORDER BY id"), expected.join("\n"));
        }
    }
    // Back on files, with the databases gone and the files parseable as written.
    assert!(!p.milestones().join("enterprise.db").exists());
    assert!(!p.milestones().join("index.db").exists());
    let on_disk: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(p.milestones().join("active/odd.yaml")).unwrap()).unwrap();
    assert_eq!(on_disk["numbers"][3].as_i64(), Some(123456789012));
}

#[test]
fn seed_shell_queries_answer_through_sqlite3() {
    let p = Project::on_backend("hybrid");
    let _d = p.start(&[]);
    for doc in &DOCS[..6] {
        p.msctl_with_input(&["create", "--from-file", "-"], Some(doc)).ok();
    }
    // Seed 003's list_milestones and seed 004's count, on index.db.
    let planning = p.sqlite3("index.db", "SELECT id FROM milestones WHERE status='planning' ORDER BY created_at");
    assert_eq!(planning, "docs-site\nauth-ui\nmobile-app\n");
    let active = p.sqlite3("index.db", "SELECT COUNT(*) FROM milestones WHERE file_path LIKE '%active%'");
    assert_eq!(active, "5\n");
    let columns = p.sqlite3("index.db", "SELECT name FROM pragma_table_info('milestones') LIMIT 7");
    assert_eq!(columns, "id\ntitle\nstatus\npriority\ncreated_at\nupdated_at\nfile_path\n");
    // Seed 003's get_analytics_hybrid.
    let analytics = p.sqlite3(
        "index.db",
        "SELECT status, COUNT(*) as count, MIN(created_at) as oldest, MAX(created_at) as newest FROM milestones GROUP BY status",
    );
    assert_eq!(
        analytics,
        "blocked|1|2026-10-01T12:00:00Z|2026-10-01T12:00:00Z\n\
         completed|1|2026-07-01T00:00:00Z|2026-07-01T00:00:00Z\n\
         in_progress|1|2026-09-01T10:00:00Z|2026-09-01T10:00:00Z\n\
         planning|3|2026-08-15T00:00:00Z|2026-10-10T09:00:00Z\n"
    );
    assert_eq!(
        p.sqlite3("index.db", "SELECT file_path FROM milestones WHERE id='billing'"),
        ".milestones/completed/billing.yaml\n"
    );
    // Audit events land in index.db too (events_in_database is on by default).
    assert_eq!(
        p.sqlite3("index.db", "SELECT COUNT(*) FROM milestone_events WHERE event_type='milestone_created'"),
        "6\n"
    );

    p.msctl(&["delete", "mobile-app"]).ok();
    p.msctl(&["migrate", "database"]).ok();
    // The YAML files go after the answer, on the migration's own thread.
    p.wait_until_no_migration();
    let count = p
        .sqlite3("enterprise.db", "SELECT COUNT(*) FROM milestones WHERE json_extract(data, '$.status') != 'archived'");
    assert_eq!(count, "5\n");
    assert_eq!(p.sqlite3("enterprise.db", "PRAGMA journal_mode"), "wal\n");
    assert_eq!(p.sqlite3("enterprise.db", "SELECT status FROM milestones WHERE id='mobile-app'"), "archived\n");
    let deps = p.sqlite3("enterprise.db", "SELECT milestone_id, depends_on FROM milestone_dependencies ORDER BY 1, 2");
    assert_eq!(deps, "auth-ui|auth-core\nsearch-v2|auth-core\nsearch-v2|billing\n");
    assert!(!p.milestones().join("active/auth-ui.yaml").exists(), "the database backend keeps no YAML files");
    assert_eq!(
        p.sqlite3(
            "enterprise.db",
            "SELECT value FROM json_each((SELECT data FROM milestones WHERE id='auth-core'), '$.tags')"
        ),
        "backend\nsecurity\n"
    );
}

#[test]
fn hybrid_index_is_reconciled_and_rebuilt() {
    let p = Project::on_backend("hybrid");
    let d = p.start(&[]);
    for doc in &DOCS[..4] {
        p.msctl_with_input(&["create", "--from-file", "-"], Some(doc)).ok();
    }
    d.stop();

    // While the daemon is down: one file edited, one added, one removed.
    let path = p.milestones().join("active/auth-ui.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace("title: Auth screens", "title: Sign-in screens");
    std::fs::write(&path, text).unwrap();
    p.write(".milestones/active/hand-made.yaml", "title: Written by hand\nstatus: planning\n");
    std::fs::remove_file(p.milestones().join("active/docs-site.yaml")).unwrap();
    let d = p.start(&[]);
    let all = ids(&p.msctl(&["list", "--sort", "id", "--json"]).json());
    assert_eq!(all, ["auth-core", "auth-ui", "hand-made", "search-v2"]);
    assert_eq!(ids(&p.msctl(&["search", "sign-in", "--json"]).json()), ["auth-ui"]);
    assert_eq!(p.sqlite3("index.db", "SELECT title FROM milestones WHERE id='auth-ui'"), "Sign-in screens\n");
    d.stop();

    // Deleted index: rebuilt from the files.
    milestones_e2e::remove_sqlite(&p.milestones().join("index.db"));
    let d = p.start(&[]);
    assert_eq!(ids(&p.msctl(&["list", "--sort", "id", "--json"]).json()), all);
    d.stop();

    // Corrupt index: rebuilt too, never fatal.
    milestones_e2e::remove_sqlite(&p.milestones().join("index.db"));
    std::fs::write(p.milestones().join("index.db"), b"this is not an SQLite database, just garbage bytes".repeat(100))
        .unwrap();
    let _d = p.start(&[]);
    assert_eq!(ids(&p.msctl(&["list", "--sort", "id", "--json"]).json()), all);
    assert_eq!(p.sqlite3("index.db", "SELECT COUNT(*) FROM milestones"), "4\n");
}

#[test]
fn hostile_queries_are_refused_or_answered_never_executed() {
    for backend in ALL_BACKENDS {
        let p = Project::on_any_backend(backend);
        let _d = p.start(&[]);
        for doc in DOCS {
            p.msctl_with_input(&["create", "--from-file", "-"], Some(doc)).ok();
        }
        let found = p.msctl(&["list", "--json", "--where", &format!("title={QUOTE_TITLE}")]).json();
        assert_eq!(ids(&found), ["quote-test"], "{backend}");
        for text in [
            "' OR '1'='1",
            "x'; DELETE FROM milestones; --",
            "\") OR 1=1 --",
            "title:auth*",
            "NEAR(auth core)",
            "auth OR docs",
        ] {
            let run = p.msctl(&["search", text, "--json"]);
            assert_eq!(run.code, 0, "{backend}: search {text:?}: {run:?}");
        }
        assert_eq!(
            ids(&p.msctl(&["search", "auth OR docs", "--json"]).json()),
            Vec::<String>::new(),
            "{backend}: OR is a word, not an operator"
        );
        p.msctl(&["search", ";--"]).fails(4, "no letters or digits");
        p.msctl(&["list", "--where", "a..b=1"]).fails(4, "is not a field path");
        p.msctl(&["list", "--where", "title'; DROP TABLE milestones; --=1"]).fails(4, "is not a field path");
        p.msctl(&["list", "--where", "==1"]).fails(4, "is not a field path");
        p.msctl(&["list", "--where", "tags>[1, 2]"]).fails(4, "cannot take a list");
        p.msctl(&["list", "--sort", "-"]).fails(4, "is not a field path");
        p.msctl(&["list", "--sort", "a;b"]).fails(4, "is not a field path");
        p.msctl(&["list", "--where", "justtext"]).fails(2, "is not a filter");
        // Nothing was dropped or deleted by any of it.
        assert_eq!(ids(&p.msctl(&["list", "--all", "--json"]).json()).len(), DOCS.len(), "{backend}");
        assert_eq!(p.msctl(&["ping"]).code, 0);
    }
}

#[test]
fn a_failed_migration_leaves_the_backend_untouched() {
    let p = Project::new();
    let _d = p.start(&[]);
    p.msctl_with_input(&["create", "--from-file", "-"], Some(DOCS[0])).ok();
    p.write(".milestones/active/not-a-number.yaml", "id: not-a-number\ntitle: NaN inside\nmetrics: {ratio: .nan}\n");
    // The daemon read the tree at start; restart it to pick up the new file.
    drop(_d);
    let _d = p.start(&[]);
    p.msctl(&["migrate", "file"]).fails(4, "already on the file backend");
    p.msctl(&["migrate", "hybrid"]).fails(4, "metrics.ratio");
    assert!(!p.milestones().join("index.db").exists());
    let failed = p.msctl(&["migrate", "database"]);
    failed.fails(4, "metrics.ratio");
    assert!(failed.stderr.contains("unchanged"), "{failed:?}");
    assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], "file");
    assert_eq!(std::fs::read_to_string(p.milestones().join("config/storage-backend.txt")).unwrap().trim(), "file");
    assert!(!p.milestones().join("enterprise.db").exists());
    assert!(!p.milestones().join("enterprise.db.migrating").exists());
    assert!(p.milestones().join("active/not-a-number.yaml").is_file());
    assert_eq!(ids(&p.msctl(&["list", "--sort", "id", "--json"]).json()), ["auth-core", "not-a-number"]);
    // The failure is in the audit log.
    let log = std::fs::read_to_string(p.milestones().join("logs/storage-events.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"migration_failed\""), "{log}");
}

#[test]
fn a_document_sqlite_cannot_hold_is_reported_not_fatal_on_hybrid() {
    let p = Project::on_backend("hybrid");
    p.write(".milestones/active/fine.yaml", "title: Fine\nstatus: planning\n");
    p.write(".milestones/active/not-a-number.yaml", "title: NaN inside\nmetrics: {ratio: .inf}\n");
    let _d = p.start(&[]);
    assert_eq!(ids(&p.msctl(&["list", "--json"]).json()), ["fine"]);
    let report = p.msctl(&["validate", "--all", "--json"]);
    assert_eq!(report.code, 5, "{report:?}");
    assert!(report.stdout.contains("not-a-number.yaml") && report.stdout.contains("metrics.ratio"), "{report:?}");
    assert!(p.milestones().join("active/not-a-number.yaml").is_file(), "the file is left as written");
}

/// A stored row that cannot be read back (edited by hand in `sqlite3`,
/// here nesting deeper than any reader takes) costs that milestone only:
/// lists, searches, stats and health go on for the others, `get`,
/// `validate` and `health` name it, and a purge removes it.
#[test]
fn one_unreadable_record_breaks_nothing_about_the_others() {
    for (backend, db) in [("database", "enterprise.db"), ("hybrid", "index.db")] {
        let p = Project::on_backend(backend);
        let _d = p.start(&[]);
        for id in ["alpha", "bravo", "charlie"] {
            p.msctl(&["create", "--title", &format!("Plan {id}"), "--id", id]).ok();
        }
        let deep = format!("{{\"id\":\"bravo\",\"x\":{}{}}}", "[".repeat(127), "]".repeat(127));
        p.sqlite3(db, &format!("UPDATE milestones SET data = '{deep}' WHERE id = 'bravo'"));

        // Sorted here: newest first puts charlie first when its second ticked.
        let sorted = |mut ids: Vec<String>| {
            ids.sort();
            ids
        };
        assert_eq!(sorted(ids(&p.msctl(&["list", "--json"]).json())), ["alpha", "charlie"], "{backend}");
        assert_eq!(sorted(ids(&p.msctl(&["search", "plan", "--json"]).json())), ["alpha", "charlie"], "{backend}");
        p.msctl(&["stats"]).ok();
        p.msctl(&["get", "alpha"]).ok();
        let get = p.msctl(&["get", "bravo"]);
        assert_eq!(get.code, 1, "{backend}: {get:?}");
        assert!(get.stderr.contains("stored data of milestone `bravo`"), "{backend}: {get:?}");
        for command in [&["validate", "--all"][..], &["health"]] {
            let run = p.msctl(command);
            assert_eq!(run.code, 5, "{backend} {command:?}: {run:?}");
            assert!(run.stdout.contains("bravo"), "{backend} {command:?}: {run:?}");
        }
        p.msctl(&["create", "--title", "Usurper", "--id", "bravo"]).fails(4, "already exists");

        p.msctl(&["delete", "bravo", "--purge"]).ok();
        assert_eq!(p.msctl(&["health"]).code, 0, "{backend}: clean once purged");
        assert_eq!(ids(&p.msctl(&["list", "--json"]).json()), ["alpha", "charlie"], "{backend}");
    }
}
