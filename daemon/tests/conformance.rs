//! The storage conformance suite: one set of tests, run in-process through
//! the backend factory against every backend. Adding a backend means adding
//! one line to the `conformance!` list at the bottom.

use std::sync::Arc;

use milestoned::analytics::AnalyticsBuilder;
use milestoned::config::StorageConfig;
use milestoned::database_url::DatabaseUrl;
use milestoned::document::Folder;
use milestoned::graph::DependencyGraph;
use milestoned::layout::ProjectLayout;
use milestoned::storage::tree::MilestoneTree;
use milestoned::storage::{BackendKind, BackendSpec, IdAllocator, Storage, StorageError};
use milestoned::work::{WorkIndex, WorkNode};
use milestones_protocol::{DatabaseKind, DepEdge, Filter, FilterOp, Map, Query, SortKey, Value};

/// A backend opened through the factory on a fresh project (and, for
/// PostgreSQL, a fresh database on the tests' own server).
struct Fixture {
    _dir: tempfile::TempDir,
    layout: ProjectLayout,
    kind: BackendKind,
    config: StorageConfig,
    store: Arc<dyn Storage>,
}

impl Fixture {
    fn new(kind: BackendKind) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layout = ProjectLayout::new(dir.path());
        layout.ensure().unwrap();
        let mut config = StorageConfig::default();
        if kind == BackendKind::Database(DatabaseKind::Postgresql) {
            let db = milestones_e2e::postgres::shared().database();
            config.database_url = Some(DatabaseUrl::parse(&db.url()).unwrap());
        }
        let store = BackendSpec::new(kind, &config).open(&layout).unwrap();
        assert_eq!(store.kind(), kind, "the factory opened the backend it was asked for");
        Fixture { _dir: dir, layout, kind, config, store }
    }

    /// The same project opened again, as after a restart.
    fn reopen(&mut self) {
        self.store = BackendSpec::new(self.kind, &self.config).open(&self.layout).unwrap();
    }
}

fn doc(yaml: &str) -> Map {
    milestoned::yaml::parse_document(yaml, "test").unwrap()
}

fn milestone(id: &str, extra: &str) -> Map {
    doc(&format!("id: {id}\ntitle: Milestone {id}\nstatus: planning\npriority: medium\ncreated_at: '2026-01-01T00:00:00Z'\n{extra}"))
}

fn set(mut d: Map, key: &str, value: Value) -> Map {
    d.insert(key, value);
    d
}

fn crud(kind: BackendKind) {
    let f = Fixture::new(kind);
    let s = &*f.store;
    assert!(s.get("alpha").unwrap().is_none());
    let first = s.insert(milestone("alpha", "owner: {team: core}\nweird: [1, 2.5, true, null]\n")).unwrap();
    let got = s.get("alpha").unwrap().expect("stored");
    assert_eq!(*got.doc, *first.doc, "read back value for value");
    assert_eq!(got.revision, first.revision);
    assert!(matches!(s.insert(milestone("alpha", "")), Err(StorageError::AlreadyExists(id)) if id == "alpha"));
    assert_eq!(s.count().unwrap(), 1);

    let done = set(Map::clone(&got.doc), "status", Value::from("completed"));
    let second = s.replace(done.clone(), &got.revision).unwrap();
    assert_ne!(second.revision, first.revision, "a write makes a new revision");
    assert_eq!(*s.get("alpha").unwrap().unwrap().doc, done);
    // Totals by status follow the change (SQL backends may keep them apart
    // from the rows).
    let total = |status: &str| {
        let filter = Filter { path: "status".into(), op: FilterOp::Eq, value: Value::from(status) };
        s.query(&Query { filters: vec![filter], limit: Some(0), ..Query::default() }).unwrap().total
    };
    assert_eq!((total("completed"), total("planning")), (1, 0));
    if kind.keeps_files() {
        let tree = MilestoneTree::new(f.layout.clone());
        assert!(tree.path_of("alpha", Folder::Completed).is_file(), "a completed milestone lives in completed/");
        assert!(!tree.path_of("alpha", Folder::Active).exists());
    }
    assert!(matches!(s.replace(milestone("ghost", ""), &second.revision), Err(StorageError::Missing(_))));
    assert_eq!(s.ids().unwrap(), vec!["alpha".to_owned()]);
    assert!(s.remove("alpha").unwrap());
    assert!(!s.remove("alpha").unwrap());
    assert!(s.get("alpha").unwrap().is_none());
    assert_eq!(s.count().unwrap(), 0);
    assert_eq!(total("completed"), 0);
}

fn compare_and_swap(kind: BackendKind) {
    let f = Fixture::new(kind);
    let s = &*f.store;
    s.insert(milestone("shared", "")).unwrap();
    let read_by_a = s.get("shared").unwrap().unwrap();
    let read_by_b = s.get("shared").unwrap().unwrap();
    s.replace(set(Map::clone(&read_by_a.doc), "a", Value::Int(1)), &read_by_a.revision).unwrap();
    // B read before A wrote: its write must fail, not overwrite A's.
    let stale = s.replace(set(Map::clone(&read_by_b.doc), "b", Value::Int(2)), &read_by_b.revision);
    assert!(matches!(stale, Err(StorageError::Stale { .. })), "{stale:?}");
    // Read again, apply again: both changes survive.
    let again = s.get("shared").unwrap().unwrap();
    s.replace(set(Map::clone(&again.doc), "b", Value::Int(2)), &again.revision).unwrap();
    let now = s.get("shared").unwrap().unwrap();
    assert_eq!(now.doc.get("a"), Some(&Value::Int(1)));
    assert_eq!(now.doc.get("b"), Some(&Value::Int(2)));
}

fn concurrent_writers_lose_nothing(kind: BackendKind) {
    let f = Fixture::new(kind);
    f.store.insert(milestone("busy", "")).unwrap();
    let writers = 8;
    let rounds = 5;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let store = f.store.clone();
            scope.spawn(move || {
                for round in 0..rounds {
                    loop {
                        let current = store.get("busy").unwrap().unwrap();
                        let mut d = Map::clone(&current.doc);
                        d.insert(format!("writer_{w}"), Value::Int(round));
                        match store.replace(d, &current.revision) {
                            Ok(_) => break,
                            Err(StorageError::Stale { .. }) => continue,
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                }
            });
        }
    });
    let end = f.store.get("busy").unwrap().unwrap();
    for w in 0..writers {
        assert_eq!(end.doc.get(&format!("writer_{w}")), Some(&Value::Int(rounds - 1)), "writer {w}'s last change");
    }
}

/// Deterministic documents of mixed shapes and types.
fn corpus() -> Vec<Map> {
    let statuses = ["planning", "in_progress", "blocked", "completed", "cancelled", "archived"];
    let priorities = ["low", "medium", "high", "critical"];
    let words = ["parser", "docs", "release", "storage", "alpha", "beta"];
    (0..48)
        .map(|i| {
            let mut d = milestone(&format!("m-{i:02}"), "");
            d.insert("status", Value::from(statuses[i % statuses.len()]));
            d.insert("priority", Value::from(priorities[(i * 7) % priorities.len()]));
            d.insert("title", Value::from(format!("{} {} number {i}", words[i % 6], words[(i / 6) % 6])));
            d.insert("created_at", Value::from(format!("2026-0{}-{:02}T10:00:00Z", 1 + i % 9, 1 + i % 28)));
            if i % 3 != 0 {
                d.insert("category", Value::from(["core", "ops", "docs"][i % 3]));
            }
            let score = match i % 4 {
                0 => Value::Int(i as i64),
                1 => Value::Float(i as f64 / 2.0),
                2 => Value::from(format!("s{i}")),
                _ => Value::Null,
            };
            d.insert("score", score);
            d.insert("tags", Value::List(vec![Value::from(words[i % 6]), Value::from("all")]));
            d
        })
        .collect()
}

fn queries() -> Vec<Query> {
    let f = |path: &str, op, value| Filter { path: path.to_owned(), op, value };
    let by = |path: &str, descending| SortKey { path: path.to_owned(), descending };
    let mut all = vec![
        Query::default(),
        Query { include_archived: true, ..Query::default() },
        Query { filters: vec![f("status", FilterOp::Eq, Value::from("planning"))], ..Query::default() },
        Query { filters: vec![f("status", FilterOp::Eq, Value::from("archived"))], ..Query::default() },
        Query {
            filters: vec![f("priority", FilterOp::Ne, Value::from("low"))],
            sort: vec![by("priority", true)],
            ..Query::default()
        },
        Query {
            filters: vec![f("score", FilterOp::Gt, Value::Int(10))],
            sort: vec![by("score", false)],
            ..Query::default()
        },
        Query { filters: vec![f("score", FilterOp::Le, Value::Float(7.5))], ..Query::default() },
        Query { filters: vec![f("category", FilterOp::Exists, Value::Bool(false))], ..Query::default() },
        Query { filters: vec![f("tags", FilterOp::Contains, Value::from("docs"))], ..Query::default() },
        Query { filters: vec![f("title", FilterOp::Contains, Value::from("number 1"))], ..Query::default() },
        Query { text: Some("parser".into()), ..Query::default() },
        Query { text: Some("rele stor".into()), include_archived: true, ..Query::default() },
        // A page of a broad search (SQLite walks the order's index), of
        // one narrow enough to sort, and past the last match.
        Query { text: Some("number".into()), limit: Some(5), offset: 2, ..Query::default() },
        Query { text: Some("num".into()), include_archived: true, limit: Some(4), ..Query::default() },
        Query {
            text: Some("number".into()),
            filters: vec![f("status", FilterOp::Eq, Value::from("blocked"))],
            sort: vec![by("title", true)],
            limit: Some(3),
            ..Query::default()
        },
        Query { text: Some("alpha docs".into()), limit: Some(1), ..Query::default() },
        Query { text: Some("number".into()), limit: Some(5), offset: 48, ..Query::default() },
        Query {
            filters: vec![
                f("status", FilterOp::Eq, Value::from("blocked")),
                f("priority", FilterOp::Eq, Value::from("high")),
            ],
            limit: Some(2),
            ..Query::default()
        },
        Query {
            sort: vec![by("category", false), by("created_at", true)],
            limit: Some(7),
            offset: 3,
            ..Query::default()
        },
        Query { sort: vec![by("title", false)], limit: Some(0), ..Query::default() },
    ];
    all.push(Query {
        filters: vec![f("score", FilterOp::Exists, Value::Bool(true))],
        limit: Some(5),
        offset: 40,
        ..Query::default()
    });
    all
}

fn queries_match_the_reference_engine(kind: BackendKind) {
    let f = Fixture::new(kind);
    let docs = corpus();
    for d in &docs {
        f.store.insert(d.clone()).unwrap();
    }
    let reference: Vec<Arc<Map>> = docs.into_iter().map(Arc::new).collect();
    for query in queries() {
        let expected = milestoned::query::run(&query, reference.iter()).unwrap();
        let got = f.store.query(&query).unwrap();
        assert_eq!(got, expected, "{kind:?} answers {query:?} as the reference engine does");
    }
    let bad = Query { text: Some("?!".into()), ..Query::default() };
    assert!(matches!(f.store.query(&bad), Err(StorageError::Query(_))), "search text with no words is refused");
}

fn analytics_match_the_reference(kind: BackendKind) {
    let f = Fixture::new(kind);
    let mut docs = corpus();
    docs[1].insert("dependencies", Value::Map(doc("requires: [m-00]")));
    docs[2].insert(
        "tasks",
        Value::List(vec![
            Value::Map(doc("{id: t1, title: a, status: completed}")),
            Value::Map(doc("{id: t2, title: b, status: pending}")),
        ]),
    );
    for d in &docs {
        f.store.insert(d.clone()).unwrap();
    }
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let reference = |docs: &[Map]| {
        let mut builder = AnalyticsBuilder::new(today);
        let mut graph = DependencyGraph::default();
        for d in docs {
            builder.add_document(d);
            graph.add_document(d);
        }
        builder.finish(&graph)
    };
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs));
    // A store may keep its answer between requests; every kind of write
    // shows in the next one, as does another day.
    let removed = docs.remove(0);
    assert!(f.store.remove(doc_id(&removed)).unwrap());
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs), "after a removal");
    let stored = f.store.get(doc_id(&docs[3])).unwrap().unwrap();
    docs[3] = set(Map::clone(&stored.doc), "status", Value::from("completed"));
    docs[3].insert("dependencies", Value::Map(doc("requires: [m-02]")));
    f.store.replace(docs[3].clone(), &stored.revision).unwrap();
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs), "after a replacement");
    // Completed within the trend, with tasks: the completion times and the
    // task sums a store keeps follow.
    let stored = f.store.get(doc_id(&docs[4])).unwrap().unwrap();
    docs[4] = set(Map::clone(&stored.doc), "completed_at", Value::from("2026-05-30T12:00:00Z"));
    docs[4].insert("tasks", Value::List(vec![Value::Map(doc("{id: t3, title: c, status: completed}"))]));
    f.store.replace(docs[4].clone(), &stored.revision).unwrap();
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs), "after a completion and a task");
    let stored = f.store.get(doc_id(&docs[4])).unwrap().unwrap();
    docs[4] = set(Map::clone(&stored.doc), "created_at", Value::from("2026-05-29T12:00:00Z"));
    docs[4].remove("tasks");
    f.store.replace(docs[4].clone(), &stored.revision).unwrap();
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs), "after a new creation time, the task gone");
    docs.push(milestone("late", "dependencies: {requires: [m-03]}\n"));
    f.store.insert(docs[docs.len() - 1].clone()).unwrap();
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs), "after an insert");
    // The only milestone of a category, gone: the category is not counted.
    let late = docs.len() - 1;
    docs[late].insert("category", Value::from("one-off"));
    f.store.replace(docs[late].clone(), &f.store.get("late").unwrap().unwrap().revision).unwrap();
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs), "with a category of one");
    docs.pop();
    assert!(f.store.remove("late").unwrap());
    assert_eq!(f.store.analytics(today).unwrap(), reference(&docs), "after the category's last is removed");
    let tomorrow = today.succ_opt().unwrap();
    let mut builder = AnalyticsBuilder::new(tomorrow);
    let mut graph = DependencyGraph::default();
    for d in &docs {
        builder.add_document(d);
        graph.add_document(d);
    }
    assert_eq!(f.store.analytics(tomorrow).unwrap(), builder.finish(&graph), "another day");
}

fn doc_id(doc: &Map) -> &str {
    doc.get("id").and_then(Value::as_str).expect("an id")
}

/// What a store reads for `ready` and `blocked` (one query on a database)
/// is what its documents say: a diamond, a chain whose
/// first link is done, an `enables` declared on the other side, a missing
/// requirement, odd task lists, closed milestones left out.
fn work_nodes_agree_with_the_documents(kind: BackendKind) {
    let f = Fixture::new(kind);
    let docs = [
        milestone("base", "").tap_status("in_progress"),
        milestone("left", "dependencies: {requires: [base]}\n"),
        milestone("right", "dependencies: {requires: [base, base]}\n"),
        milestone("top", "dependencies: {requires: [left, right, nowhere]}\n"),
        milestone("c1", "dependencies: {enables: [c2]}\n").tap_status("completed"),
        milestone("c2", "tasks:\n- {id: t1, title: One, status: completed}\n- {id: t2, title: Two, status: pending, depends_on: [t1]}\n- {id: t3, title: Three, depends_on: t2}\n- just text\n"),
        milestone("c3", "tasks: {not: a list}\ndependencies: {requires: [c2]}\n"),
        milestone("gone", "").tap_status("archived"),
        milestone("dropped", "dependencies: {requires: [base]}\n").tap_status("cancelled"),
    ];
    for d in &docs {
        f.store.insert(d.clone()).unwrap();
    }
    // Compared as the rules read them: the edges as a set, and no title
    // for a closed milestone (a database does not read it).
    let comparable = |mut nodes: Vec<WorkNode>| {
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        for n in nodes.iter_mut() {
            n.declares.sort();
            n.declares.dedup();
            if !milestoned::work::is_open(n.status.as_deref()) {
                n.title.clear();
            }
        }
        nodes
    };
    for with_tasks in [false, true] {
        let expected = docs.iter().filter_map(|d| WorkNode::of(d, with_tasks)).collect();
        let got = f.store.work_nodes(with_tasks).unwrap();
        assert_eq!(comparable(got), comparable(expected), "with tasks: {with_tasks}");
    }
    let report = WorkIndex::new(f.store.work_nodes(false).unwrap(), false).report(false);
    let ready: Vec<&str> = report.ready.iter().map(|i| i.milestone.as_str()).collect();
    assert_eq!(ready, ["base", "c2"]);
    let top = report.blocked.iter().find(|i| i.milestone == "top").unwrap();
    assert_eq!(top.waiting_on, ["left", "nowhere", "right"]);
}

trait TapStatus {
    fn tap_status(self, status: &str) -> Self;
}

impl TapStatus for Map {
    fn tap_status(self, status: &str) -> Map {
        set(self, "status", Value::from(status))
    }
}

fn dependencies_and_cycles(kind: BackendKind) {
    let f = Fixture::new(kind);
    let s = &*f.store;
    s.insert(milestone("a", "")).unwrap();
    s.insert(milestone("b", "dependencies: {requires: [a]}\n")).unwrap();
    s.insert(milestone("c", "dependencies: {requires: [b]}\n")).unwrap();
    // `a` requiring `c` closes a -> c -> b -> a.
    let a = s.get("a").unwrap().unwrap();
    let closing = set(Map::clone(&a.doc), "dependencies", Value::Map(doc("requires: [c]")));
    match s.replace(closing, &a.revision) {
        Err(StorageError::Cycle(path)) => assert_eq!(path.first(), path.last(), "a cycle: {path:?}"),
        other => panic!("a cycle was not refused: {other:?}"),
    }
    // So does a new milestone that `enables` its own requirement.
    let loop_by_enables = milestone("d", "dependencies: {requires: [c], enables: [a]}\n");
    assert!(matches!(s.insert(loop_by_enables), Err(StorageError::Cycle(_))));
    assert!(s.get("d").unwrap().is_none(), "a refused insert stores nothing");
    assert_eq!(*s.get("a").unwrap().unwrap().doc, *a.doc, "a refused replace changes nothing");
    let graph = s.dependency_graph().unwrap();
    let mut edges = graph.edges();
    edges.sort_by(|x, y| (&x.from, &x.to).cmp(&(&y.from, &y.to)));
    let edge = |from: &str, to: &str| DepEdge { from: from.to_owned(), to: to.to_owned() };
    assert_eq!(edges, vec![edge("b", "a"), edge("c", "b")]);
    assert!(graph.cycles().is_empty());
    assert_eq!(graph.critical_path(), ["a", "b", "c"]);
    // A store may keep its graph between requests; a write shows in the next.
    s.insert(milestone("e", "dependencies: {requires: [c]}\n")).unwrap();
    assert_eq!(s.dependency_graph().unwrap().critical_path(), ["a", "b", "c", "e"]);
    assert!(s.remove("e").unwrap());
    assert_eq!(s.dependency_graph().unwrap().critical_path(), ["a", "b", "c"]);
}

/// A graph a store keeps between requests answers, after each kind of
/// write, as one built afresh from every document does.
fn a_kept_graph_follows_every_write(kind: BackendKind) {
    let f = Fixture::new(kind);
    let s = &*f.store;
    let same = |what: &str| {
        let kept = s.dependency_graph().unwrap();
        let mut fresh = DependencyGraph::default();
        s.for_each(&mut |d| fresh.add_document(d)).unwrap();
        let answers = |g: &DependencyGraph| {
            let focus: Vec<_> = ["a", "b", "c", "d"].map(|id| g.focus(id)).into();
            (g.edges(), g.missing(), g.cycles(), g.critical_path(), g.node_count(), g.figures(), focus)
        };
        assert_eq!(answers(&kept), answers(&fresh), "{kind:?}: {what}");
    };
    s.insert(milestone("b", "")).unwrap();
    s.insert(milestone("c", "dependencies: {requires: [b]}\n")).unwrap();
    same("to begin with");
    s.insert(milestone("a", "dependencies: {enables: [c]}\n")).unwrap();
    same("after an insert that enables another");
    assert!(s.remove("b").unwrap());
    same("after the removal of a required milestone");
    let c = s.get("c").unwrap().unwrap();
    s.replace(milestone("c", "dependencies: {requires: [d]}\n"), &c.revision).unwrap();
    same("after a replace that changes the edges");
    assert!(s.remove("a").unwrap());
    same("after the removal of one that enabled another");
    let c = s.get("c").unwrap().unwrap();
    s.replace(milestone("c", ""), &c.revision).unwrap();
    // No edges left: ids that went must not stand as chains of their own.
    same("with no edges left");
    assert_eq!(s.dependency_graph().unwrap().critical_path(), ["c"]);
}

fn outside_edits_are_absorbed(kind: BackendKind) {
    let mut f = Fixture::new(kind);
    let tree = MilestoneTree::new(f.layout.clone());
    let Some(files) = f.store.files() else {
        assert!(!kind.keeps_files(), "{kind:?} keeps files but offers no file capability");
        return;
    };
    f.store.insert(milestone("edited", "")).unwrap();
    let before = f.store.get("edited").unwrap().unwrap();
    let path = tree.path_of("edited", Folder::Active);
    std::fs::write(&path, "id: edited\ntitle: Changed by hand  # a comment\nstatus: blocked\n").unwrap();
    let found = tree.inspect(&path).unwrap().expect("the file is there");
    let loaded = tree.load(&found).unwrap();
    let seen = files.known_file("edited").unwrap();
    assert_ne!(seen, Some((loaded.folder, loaded.hash.clone())), "an outside edit is news");
    assert!(files.absorb(&loaded, seen.as_ref()).unwrap());
    let after = f.store.get("edited").unwrap().unwrap();
    assert_eq!(after.doc.get("title"), Some(&Value::from("Changed by hand")));
    // A writer that read before the edit cannot overwrite it.
    let stale = f.store.replace(Map::clone(&before.doc), &before.revision);
    assert!(matches!(stale, Err(StorageError::Stale { .. })), "{stale:?}");

    // A file that does not parse is a problem, and its id stays taken.
    std::fs::write(tree.path_of("broken", Folder::Active), "id: broken\ntitle: [unclosed\n").unwrap();
    f.reopen();
    let files = f.store.files().expect("still keeps files");
    assert!(files.problems().iter().any(|p| p.id.as_deref() == Some("broken")), "{:?}", files.problems());
    assert!(matches!(f.store.get("broken"), Err(StorageError::Unreadable { .. })), "not `does not exist`");
    assert!(matches!(f.store.insert(milestone("broken", "")), Err(StorageError::AlreadyExists(_))));
    assert_eq!(f.store.get("edited").unwrap().unwrap().doc.get("title"), Some(&Value::from("Changed by hand")));

    // A file read before the store's own write is older than what it holds:
    // taking it in would roll the milestone back.
    let seen = files.known_file("edited").unwrap();
    let current = f.store.get("edited").unwrap().unwrap();
    f.store.replace(set(Map::clone(&current.doc), "title", Value::from("Newer")), &current.revision).unwrap();
    assert!(!files.absorb(&loaded, seen.as_ref()).unwrap(), "a superseded read is not taken in");
    assert!(!files.absorb_removal("edited", seen.as_ref()).unwrap(), "nor is a superseded removal");
    assert_eq!(f.store.get("edited").unwrap().unwrap().doc.get("title"), Some(&Value::from("Newer")));

    std::fs::remove_file(&path).unwrap();
    let seen = files.known_file("edited").unwrap();
    assert!(files.absorb_removal("edited", seen.as_ref()).unwrap());
    assert!(f.store.get("edited").unwrap().is_none());
}

fn generated_ids_skip_every_taken_id(kind: BackendKind) {
    let mut f = Fixture::new(kind);
    // Every draw is 0, so the ids tried are ms-000000 (a project of one
    // milestone starts at six characters), ms-0000000, ...: the suffix
    // grows by one character each time the id is taken.
    let zeros = |n: usize| format!("ms-{}", "0".repeat(n));
    f.store.insert(milestone(&zeros(6), "")).unwrap();
    let mut held_by_broken_files = 0;
    if kind.keeps_files() {
        // An id held only by a file that does not load is taken too, though
        // no stored milestone has it.
        let tree = MilestoneTree::new(f.layout.clone());
        std::fs::write(tree.path_of(&zeros(7), Folder::Active), "title: [broken\n").unwrap();
        held_by_broken_files = 1;
        f.reopen();
    }
    let ids = IdAllocator::with_random(|| 0);
    let new: Vec<String> = (0..2)
        .map(|_| {
            let stored = ids.insert_new(&*f.store, doc("title: Generated\nstatus: planning\n"), "ms").unwrap();
            milestoned::document::id(&stored.doc).unwrap().to_owned()
        })
        .collect();
    let first = 7 + held_by_broken_files;
    assert_eq!(new, [zeros(first), zeros(first + 1)]);
    assert!(f.store.get(&new[0]).unwrap().is_some());
}

/// xorshift: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize].clone()
    }
}

fn values(rng: &mut Rng) -> Value {
    let choices = [
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(3),
        Value::Int(-2),
        Value::Float(3.0),
        Value::Float(7.5),
        Value::from("alpha"),
        Value::from("Beta"),
        Value::from("2026-10-01T00:00:00Z"),
        Value::List(vec![Value::from("alpha"), Value::Int(3)]),
        Value::Map([("k".to_owned(), Value::Int(1))].into_iter().collect()),
    ];
    rng.pick(&choices)
}

fn document(rng: &mut Rng, i: usize) -> Map {
    let mut doc = Map::default();
    doc.insert("id", Value::from(format!("m-{i:03}")));
    for field in ["title", "status", "priority", "category", "created_at", "x", "nested"] {
        if !rng.next().is_multiple_of(5) {
            let v = match field {
                "status" => {
                    rng.pick(&[Value::from("planning"), Value::from("archived"), Value::from("blocked"), Value::Int(1)])
                }
                "priority" => {
                    rng.pick(&[Value::from("low"), Value::from("critical"), Value::from("urgent"), Value::Null])
                }
                "nested" => Value::Map([("y".to_owned(), values(rng))].into_iter().collect()),
                _ => values(rng),
            };
            doc.insert(field, v);
        }
    }
    doc
}

/// Generated documents with mixed types and generated queries: the
/// backend's answers are the in-memory reference engine's, page for page.
fn generated_queries_agree_with_memory(kind: BackendKind) {
    let mut f = Fixture::new(kind);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut docs: Vec<Arc<Map>> = (0..60).map(|i| Arc::new(document(&mut rng, i))).collect();
    f.store.import(&docs).unwrap();
    queries_agree(&f, &docs, &mut rng);
    // Writes that move milestones between statuses, priorities and
    // categories (whose totals a database keeps), and removals.
    for i in 0..30 {
        let id = format!("m-{i:03}");
        if i % 3 == 0 {
            assert!(f.store.remove(&id).unwrap());
            docs.retain(|d| d.get("id").and_then(Value::as_str) != Some(id.as_str()));
        } else {
            let revision = f.store.get(&id).unwrap().unwrap().revision;
            let changed = document(&mut rng, i);
            f.store.replace(changed.clone(), &revision).unwrap();
            let at = docs.iter().position(|d| d.get("id").and_then(Value::as_str) == Some(id.as_str())).unwrap();
            docs[at] = Arc::new(changed);
        }
    }
    queries_agree(&f, &docs, &mut rng);
    // As a restart finds them (the file backend builds its orders at once).
    f.reopen();
    queries_agree(&f, &docs, &mut rng);
}

fn queries_agree(f: &Fixture, docs: &[Arc<Map>], rng: &mut Rng) {
    let paths = ["title", "status", "priority", "category", "created_at", "x", "nested.y", "x.0", "id"];
    let ops = [FilterOp::Eq, FilterOp::Ne, FilterOp::Lt, FilterOp::Ge, FilterOp::Contains, FilterOp::Exists];
    for round in 0..400 {
        let mut query = Query { include_archived: round % 3 == 0, ..Query::default() };
        for _ in 0..(rng.next() % 3) {
            let op = rng.pick(&ops);
            let value = match op {
                FilterOp::Exists => Value::Bool(rng.next().is_multiple_of(2)),
                _ => rng.pick(&[
                    Value::Null,
                    Value::Bool(true),
                    Value::Int(3),
                    Value::Float(7.5),
                    Value::from("alpha"),
                    Value::from("a"),
                    Value::from("planning"),
                ]),
            };
            query.filters.push(Filter { path: rng.pick(&paths).to_owned(), op, value });
        }
        for _ in 0..(rng.next() % 3) {
            query.sort.push(SortKey { path: rng.pick(&paths).to_owned(), descending: rng.next().is_multiple_of(2) });
        }
        if round % 5 == 0 {
            query.text = Some(rng.pick(&["alpha", "BE", "m 00", "milestone", "zz"]).to_owned());
        }
        if round % 4 == 0 {
            query.limit = Some(rng.next() % 10);
            query.offset = rng.next() % 5;
        }
        let memory = milestoned::query::run(&query, docs.iter());
        let sql = f.store.query(&query);
        match (memory, sql) {
            (Ok(m), Ok(s)) => assert_eq!(s, m, "query {query:?}"),
            (Err(_), Err(_)) => {}
            (m, s) => panic!("one engine failed: memory {m:?}, sql {s:?}, query {query:?}"),
        }
    }
}

/// Pages from the middle of a search most milestones match (SQLite reads
/// them along the order's index, asking each row's text as it meets it):
/// the milestones it does not match are passed over, whichever way the
/// order runs.
fn a_page_of_a_search_most_milestones_match(kind: BackendKind) {
    let f = Fixture::new(kind);
    let text = |i: usize| match i % 7 {
        // "common" inside a word, never at its start: no match.
        0 => "uncommon",
        n if n % 2 == 0 => "Common ground",
        _ => "uncommon, and COMMONPLACE",
    };
    let docs: Vec<Arc<Map>> =
        (0..1_200).map(|i| Arc::new(milestone(&format!("c-{i:04}"), &format!("description: {}\n", text(i))))).collect();
    f.store.import(&docs).unwrap();
    let matching: Vec<String> = (0..1_200).filter(|i| i % 7 != 0).map(|i| format!("c-{i:04}")).collect();
    for descending in [false, true] {
        let query = Query {
            text: Some("common".into()),
            sort: vec![SortKey { path: "id".into(), descending }],
            limit: Some(5),
            offset: 10,
            ..Query::default()
        };
        let page = f.store.query(&query).unwrap();
        let mut expected = matching.clone();
        if descending {
            expected.reverse();
        }
        let ids: Vec<&str> =
            page.items.iter().map(|d| d.as_map().unwrap().get("id").unwrap().as_str().unwrap()).collect();
        assert_eq!(ids, expected[10..15], "descending: {descending}");
        assert_eq!(page.total, matching.len() as u64);
    }
}

/// Search text follows every write, however many a write carries: a copy
/// of more rows than one statement takes, an import over existing rows, a
/// replace, a removal.
fn search_follows_every_write(kind: BackendKind) {
    let f = Fixture::new(kind);
    let s = &*f.store;
    let found = |words: &str| -> Vec<String> {
        let query = Query {
            text: Some(words.into()),
            sort: vec![SortKey { path: "id".into(), descending: false }],
            ..Query::default()
        };
        let page = s.query(&query).unwrap();
        page.items.iter().map(|d| d.as_map().unwrap().get("id").unwrap().as_str().unwrap().to_owned()).collect()
    };
    let docs: Vec<Arc<Map>> = (0..1_200)
        .map(|i| Arc::new(milestone(&format!("s-{i:04}"), &format!("description: zeta{i} common\n"))))
        .collect();
    s.import(&docs).unwrap();
    assert_eq!(
        s.query(&Query { text: Some("common".into()), limit: Some(0), ..Query::default() }).unwrap().total,
        1_200
    );
    assert_eq!(found("zeta1199"), ["s-1199"], "the last rows of a large write are searchable");
    assert_eq!(found("zeta0"), ["s-0000"]);

    // Written again, in one import: the old words go, the new ones come.
    let again: Vec<Arc<Map>> =
        (0..600).map(|i| Arc::new(milestone(&format!("s-{i:04}"), &format!("description: omega{i}\n")))).collect();
    s.import(&again).unwrap();
    assert!(found("zeta5").is_empty(), "{kind:?}: an overwritten row still answers its old words");
    assert_eq!(found("omega599"), ["s-0599"]);
    assert_eq!(found("zeta600"), ["s-0600"], "rows the import did not touch keep theirs");

    let stored = s.get("s-0700").unwrap().unwrap();
    s.replace(milestone("s-0700", "description: renamed kappa\n"), &stored.revision).unwrap();
    assert_eq!((found("kappa"), found("zeta700")), (vec!["s-0700".to_owned()], vec![]));
    assert!(s.remove("s-0701").unwrap());
    assert!(found("zeta701").is_empty(), "a removed milestone is not found");
}

/// Runs the whole suite on each backend named.
macro_rules! conformance {
    ($($backend:ident => $kind:expr),* $(,)?) => {$(
        mod $backend {
            use super::*;
            #[test] fn crud() { super::crud($kind) }
            #[test] fn compare_and_swap() { super::compare_and_swap($kind) }
            #[test] fn concurrent_writers_lose_nothing() { super::concurrent_writers_lose_nothing($kind) }
            #[test] fn queries_match_the_reference_engine() { super::queries_match_the_reference_engine($kind) }
            #[test] fn analytics_match_the_reference() { super::analytics_match_the_reference($kind) }
            #[test] fn dependencies_and_cycles() { super::dependencies_and_cycles($kind) }
            #[test] fn a_kept_graph_follows_every_write() { super::a_kept_graph_follows_every_write($kind) }
            #[test] fn work_nodes_agree_with_the_documents() { super::work_nodes_agree_with_the_documents($kind) }
            #[test] fn outside_edits_are_absorbed() { super::outside_edits_are_absorbed($kind) }
            #[test] fn generated_ids_skip_every_taken_id() { super::generated_ids_skip_every_taken_id($kind) }
            #[test] fn generated_queries_agree_with_memory() { super::generated_queries_agree_with_memory($kind) }
            #[test] fn search_follows_every_write() { super::search_follows_every_write($kind) }
            #[test] fn a_page_of_a_search_most_milestones_match() {
                super::a_page_of_a_search_most_milestones_match($kind)
            }
        }
    )*};
}

conformance! {
    file => BackendKind::File,
    hybrid => BackendKind::Hybrid,
    sqlite => BackendKind::Database(DatabaseKind::Sqlite),
    postgresql => BackendKind::Database(DatabaseKind::Postgresql),
}
