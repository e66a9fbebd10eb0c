//! Crash safety of migrations: the daemon is made to abort (as a `kill -9`
//! would stop it) at every step of a migration, in every direction between
//! file, hybrid and SQLite, and between each of them and PostgreSQL, while two
//! clients keep writing; the next start
//! finishes or undoes it. Every time the project ends on exactly one
//! backend with every milestone once and every acknowledged write kept,
//! nothing of the other backend left behind, and migrations work again.

use std::collections::BTreeSet;

use milestones_e2e::protocol::{Assignment, Change, DocumentInput, Map, Query, Request, Response, Target, Value};
use milestones_e2e::{migration_target, postgres, Project, SERVER_BACKEND};

/// Every point a migration can be stopped at, in order, and whether the
/// next start finds it finished (the switch had been recorded) or undone.
const POINTS: [(&str, bool); 13] = [
    ("prepared", false),
    ("copying", false),
    ("backed_up", false),
    ("copied", false),
    ("caught_up", false),
    ("verified", false),
    ("switching", false),
    ("switch-live-removed", false),
    ("switch-moved", false),
    ("switch-recorded", true),
    ("switched", true),
    // Writes go to the new backend again while the old one's files go.
    ("cleaning_up", true),
    ("cleaned_up", true),
];

/// Crash points in the clean-up, which runs after the client's answer.
const CLEAN_UP: [&str; 2] = ["cleaning_up", "cleaned_up"];

/// Crash points inside moving a staged database into place.
const DATABASE_ONLY: [&str; 2] = ["switch-live-removed", "switch-moved"];

const MILESTONES: usize = 8;

/// The request that migrates to `to` (as [`milestones_e2e::ALL_BACKENDS`]
/// names it), into the database at `url` for PostgreSQL.
fn migrate_to(to: &str, url: &str) -> Request {
    if to == SERVER_BACKEND {
        let target =
            milestones_e2e::protocol::BackendTarget::Database(milestones_e2e::protocol::DatabaseKind::Postgresql);
        Request::MigrateTo { target, url: Some(url.to_owned()) }
    } else {
        Request::Migrate { target: migration_target(to) }
    }
}

/// The backend name `Backend` reports for `label`.
fn backend_name(label: &str) -> &str {
    if label == SERVER_BACKEND {
        "database"
    } else {
        label
    }
}

/// Fills a project on `from` with milestones (some completed, some with
/// dependencies); returns their ids.
fn fill(p: &Project) -> BTreeSet<String> {
    let d = p.start(&[]);
    let mut client = d.client();
    let mut ids = BTreeSet::new();
    for i in 0..MILESTONES {
        let mut doc = Map::new();
        doc.insert("id", Value::from(format!("crash-{i}")));
        doc.insert("title", Value::from(format!("Milestone {i}")));
        if i % 3 == 0 {
            doc.insert("status", Value::from("completed"));
        }
        if i > 0 {
            let mut deps = Map::new();
            deps.insert("requires", Value::List(vec![Value::from(format!("crash-{}", i - 1))]));
            doc.insert("dependencies", Value::Map(deps));
        }
        match client.request(Request::Create { input: DocumentInput::Fields(Value::Map(doc)) }) {
            Ok(Response::Document(_)) => {}
            other => panic!("create failed: {other:?}"),
        }
        ids.insert(format!("crash-{i}"));
    }
    drop(client);
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    ids
}

/// A client that updates the milestones until the daemon is gone; returns
/// each write the daemon acknowledged: (id, field, value).
fn write_until_gone(socket: std::path::PathBuf, w: usize) -> std::thread::JoinHandle<Vec<(String, String, i64)>> {
    std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        let Ok(mut client) = milestones_e2e::Client::connect(&socket, "writer") else { return acknowledged };
        // Paced: every write is synced, and six of these tests run at once.
        for k in 1..=400i64 {
            std::thread::sleep(std::time::Duration::from_millis(3));
            let id = format!("crash-{}", (k as usize + w) % MILESTONES);
            let field = format!("load.writer_{w}");
            let change = Change::Set(vec![Assignment { path: field.clone(), value: Value::Int(k) }]);
            match client.request(Request::Update { id: id.clone(), change }) {
                Ok(Response::Document(_)) => acknowledged.push((id, field, k)),
                _ => break,
            }
        }
        acknowledged
    })
}

/// The ids a daemon serves, archived ones included.
fn served(client: &mut milestones_e2e::Client) -> Vec<String> {
    let query = Query { include_archived: true, ..Query::default() };
    match client.request(Request::List { query }) {
        Ok(Response::Page(page)) => {
            page.items.iter().filter_map(|v| v.as_map()?.get("id")?.as_str().map(str::to_owned)).collect()
        }
        other => panic!("list failed: {other:?}"),
    }
}

fn yaml_files(p: &Project) -> usize {
    ["active", "completed"]
        .iter()
        .map(|f| {
            std::fs::read_dir(p.milestones().join(f))
                .map(|d| {
                    d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().ends_with(".yaml")).count()
                })
                .unwrap_or(0)
        })
        .sum()
}

fn crash_and_recover(from: &str, to: &str) {
    for (point, finished) in POINTS {
        if DATABASE_ONLY.contains(&point) && to != "database" {
            continue;
        }
        let case = format!("{from} → {to}, crash at `{point}`");
        let p = Project::on_any_backend(from);
        let target_db = postgres::shared().database();
        let ids = fill(&p);

        let d = p.start_with_env(&[("MILESTONED_CRASH_AT", point)]);
        let writers: Vec<_> = (0..2).map(|w| write_until_gone(d.socket.clone(), w)).collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let answer = d.client().request(migrate_to(to, &target_db.url()));
        // The daemon is gone: no answer at all, not an error reply. The
        // clean-up runs after the answer, so a crash there may follow it.
        let answered_first = CLEAN_UP.contains(&point);
        let crashed = match &answer {
            Ok(Response::Migrated(_)) => answered_first,
            Ok(_) | Err(milestones_e2e::ClientError::Daemon(_)) => false,
            Err(_) => true,
        };
        assert!(crashed, "{case}: the migration answered instead of crashing: {answer:?}");
        let (code, _) = d.wait();
        assert_eq!(code, None, "{case}: the daemon was to abort");
        let acknowledged: Vec<(String, String, i64)> =
            writers.into_iter().flat_map(|w| w.join().expect("a writer panicked")).collect();

        let d = p.start(&[]);
        let mut client = d.client();
        let backend = match client.request(Request::Backend) {
            Ok(Response::Backend(info)) => info.backend,
            other => panic!("{case}: {other:?}"),
        };
        let expected = if finished { to } else { from };
        assert_eq!(backend, backend_name(expected), "{case}: the backend after recovery");
        let mut listed = served(&mut client);
        listed.sort();
        assert_eq!(listed, ids.iter().cloned().collect::<Vec<_>>(), "{case}: every milestone exactly once");
        // The last acknowledged value of each writer's field is kept.
        let mut last = std::collections::BTreeMap::new();
        for (id, field, k) in &acknowledged {
            last.insert((id.clone(), field.clone()), *k);
        }
        // Each writer may have had one more write in flight when the daemon
        // died: stored, but never acknowledged. That one may be there too.
        let mut in_flight = std::collections::BTreeMap::new();
        for (_, field, k) in &acknowledged {
            let next = in_flight.entry(field.clone()).or_insert(0);
            *next = (*next).max(k + 1);
        }
        for ((id, field), k) in &last {
            let doc = match client.request(Request::Get { id: id.clone() }) {
                Ok(Response::Document(doc)) => doc,
                other => panic!("{case}: {other:?}"),
            };
            let stored = doc.pointer(field).and_then(Value::as_i64);
            let next = in_flight[field];
            let w: usize = field.trim_start_matches("load.writer_").parse().unwrap();
            let next_id = format!("crash-{}", (next as usize + w) % MILESTONES);
            let kept = stored == Some(*k) || (stored == Some(next) && *id == next_id);
            assert!(kept, "{case}: acknowledged write {id} {field}={k} lost (found {stored:?})");
        }
        match client.request(Request::Validate { target: Target::All }) {
            Ok(Response::Validation(report)) => {
                assert!(report.problems.is_empty(), "{case}: {:?}", report.problems);
                assert_eq!(report.checked as usize, MILESTONES, "{case}");
            }
            other => panic!("{case}: {other:?}"),
        }
        let dir = p.milestones();
        assert!(!dir.join("migration-journal.json").exists(), "{case}: the journal is closed");
        assert!(!dir.join("enterprise.db.migrating").exists(), "{case}: no staged database is left");
        let files = yaml_files(&p);
        if to == SERVER_BACKEND && !finished {
            let made = target_db.psql("SELECT to_regclass('milestones') IS NOT NULL") == "t";
            let left = if made { target_db.psql("SELECT COUNT(*) FROM milestones") } else { "0".to_owned() };
            assert_eq!(left, "0", "{case}: the copy into PostgreSQL is undone");
        }
        if backend_name(expected) == "database" {
            assert_eq!(files, 0, "{case}: the database backend keeps no YAML files");
            assert!(!dir.join("index.db").exists(), "{case}: no hybrid index is left");
        } else {
            assert_eq!(files, MILESTONES, "{case}: one YAML file per milestone");
            assert!(!dir.join("enterprise.db").exists(), "{case}: no database is left beside the files");
            assert_eq!(dir.join("index.db").exists(), expected == "hybrid", "{case}: the hybrid index");
        }
        // And migrating works again, to where the crashed one was going.
        let next = if finished { from } else { to };
        // Into an empty database: one that was left holds the milestones
        // for the other project roots that may share it.
        let url = if next == to { target_db.url() } else { postgres::shared().database().url() };
        match client.request(migrate_to(next, &url)) {
            Ok(Response::Migrated(report)) => assert_eq!(report.milestones as usize, MILESTONES, "{case}"),
            other => panic!("{case}: migrating again failed: {other:?}"),
        }
    }
}

#[test]
fn file_to_database() {
    crash_and_recover("file", "database");
}

#[test]
fn hybrid_to_database() {
    crash_and_recover("hybrid", "database");
}

#[test]
fn database_to_file() {
    crash_and_recover("database", "file");
}

#[test]
fn database_to_hybrid() {
    crash_and_recover("database", "hybrid");
}

#[test]
fn file_to_hybrid() {
    crash_and_recover("file", "hybrid");
}

#[test]
fn hybrid_to_file() {
    crash_and_recover("hybrid", "file");
}

#[test]
fn file_to_postgresql() {
    crash_and_recover("file", SERVER_BACKEND);
}

#[test]
fn postgresql_to_file() {
    crash_and_recover(SERVER_BACKEND, "file");
}

#[test]
fn hybrid_to_postgresql() {
    crash_and_recover("hybrid", SERVER_BACKEND);
}

#[test]
fn postgresql_to_hybrid() {
    crash_and_recover(SERVER_BACKEND, "hybrid");
}

#[test]
fn sqlite_to_postgresql() {
    crash_and_recover("database", SERVER_BACKEND);
}

#[test]
fn postgresql_to_sqlite() {
    crash_and_recover(SERVER_BACKEND, "database");
}
