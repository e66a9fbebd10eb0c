//! A migration that fails anywhere is rolled back with nothing lost: the
//! PostgreSQL server stopped in the middle of the copy, a copy that does
//! not verify, a new backend that fails its health check after the switch.
//! Each time the old backend serves every milestone as it was, with every
//! write acknowledged meanwhile, and the reason is in `msctl migrate
//! history` and in `logs/scale-events.jsonl`.

use std::path::PathBuf;

use milestones_e2e::protocol::{Assignment, BackendTarget, Change, DatabaseKind, Query, Request, Response, Value};
use milestones_e2e::{corpus, postgres, Daemon, Project};

/// A file project of `n` generated milestones, its daemon started with
/// `env`.
fn generated(n: usize, env: &[(&str, &str)]) -> (Project, Daemon) {
    let p = Project::new();
    corpus::generate(&p, n);
    let d = p.start_with_env(env);
    (p, d)
}

/// Every document the daemon serves, by id.
fn everything(d: &Daemon) -> Vec<(String, Value)> {
    let query = Query { include_archived: true, limit: Some(100_000), ..Query::default() };
    match d.client().request(Request::List { query }) {
        Ok(Response::Page(page)) => page
            .items
            .into_iter()
            .map(|v| (v.pointer("id").and_then(Value::as_str).unwrap_or_default().to_owned(), v))
            .collect(),
        other => panic!("list failed: {other:?}"),
    }
}

fn backend(d: &Daemon) -> (String, Option<String>) {
    match d.client().request(Request::Backend) {
        Ok(Response::Backend(info)) => (info.backend, info.database),
        other => panic!("{other:?}"),
    }
}

/// The migration history's last record and the scale events' last
/// rollback, as JSON.
fn recorded_failure(p: &Project) -> (serde_json::Value, serde_json::Value) {
    let history = p.msctl(&["migrate", "history", "--json"]).json();
    let last = history.as_array().and_then(|r| r.last()).cloned().expect("a migration is recorded");
    let events = std::fs::read_to_string(p.milestones().join("logs/scale-events.jsonl")).unwrap_or_default();
    let rollback = events
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "migration_rolled_back")
        .expect("a scale event records the rollback");
    (last, rollback)
}

/// Waits until the migration has reached `phase` (a prefix of what
/// `migrate status` shows).
fn wait_for_phase(p: &Project, phase: &str) {
    milestones_e2e::eventually(&format!("the migration at `{phase}`"), std::time::Duration::from_secs(60), || {
        let status = p.msctl(&["migrate", "status", "--json"]).json();
        status["phase"].as_str().is_some_and(|s| s.starts_with(phase))
    });
}

fn pause_file(p: &Project) -> PathBuf {
    let file = p.root.join("paused");
    std::fs::write(&file, "").unwrap();
    file
}

fn update(d: &Daemon, id: &str, value: i64) {
    let change = Change::Set(vec![Assignment { path: "during".into(), value: Value::Int(value) }]);
    match d.client().request(Request::Update { id: id.to_owned(), change }) {
        Ok(Response::Document(_)) => {}
        other => panic!("update {id}: {other:?}"),
    }
}

#[test]
fn postgresql_stopped_in_the_middle_of_the_copy_rolls_back_with_nothing_lost() {
    let server = postgres::PgServer::start(false);
    let db = server.database();
    let p = Project::new();
    let paused = pause_file(&p);
    corpus::generate(&p, 2_500);
    let env = [("MILESTONED_PAUSE_AT", "copying"), ("MILESTONED_PAUSE_FILE", paused.to_str().unwrap())];
    let d = p.start_with_env(&env);
    let before = everything(&d);
    assert_eq!(before.len(), 2_500);

    let answer = std::thread::scope(|scope| {
        let migrating = scope.spawn(|| {
            let target = BackendTarget::Database(DatabaseKind::Postgresql);
            d.client().request(Request::MigrateTo { target, url: Some(db.url()) })
        });
        // One batch is in; the server goes away before the next.
        wait_for_phase(&p, "copying 1000 of 2500");
        update(&d, "milestone-000007", 7);
        server.stop();
        std::fs::remove_file(&paused).unwrap();
        migrating.join().unwrap()
    });
    let message = match answer {
        Err(milestones_e2e::ClientError::Daemon(e)) => e.message,
        other => panic!("the migration did not fail: {other:?}"),
    };
    assert!(message.contains("PostgreSQL") && message.contains("unchanged"), "{message}");

    assert_eq!(backend(&d), ("file".to_owned(), None));
    let after = everything(&d);
    assert_eq!(after.len(), 2_500, "every milestone is still served");
    for ((id, old), (_, new)) in before.iter().zip(&after) {
        if id == "milestone-000007" {
            assert_eq!(new.pointer("during"), Some(&Value::Int(7)), "the write made during the copy");
        } else {
            assert_eq!(old, new, "{id} is as it was");
        }
    }
    assert!(!p.milestones().join("migration-journal.json").exists());
    let (record, rollback) = recorded_failure(&p);
    assert_eq!((record["to"].as_str(), record["outcome"].as_str()), (Some("database"), Some("failed")), "{record}");
    assert!(record["error"].as_str().unwrap().contains("PostgreSQL"), "{record}");
    assert_eq!(
        (rollback["current_backend"].as_str(), rollback["optimal_backend"].as_str()),
        (Some("file"), Some("database"))
    );
    assert!(rollback["details"]["error"].as_str().unwrap().contains("PostgreSQL"), "{rollback}");

    // With the server back, the same migration goes through: what the
    // interrupted copy left is cleared first.
    server.restart();
    let target = BackendTarget::Database(DatabaseKind::Postgresql);
    match d.client().request(Request::MigrateTo { target, url: Some(db.url()) }) {
        Ok(Response::Migrated(report)) => assert_eq!(report.milestones, 2_500),
        other => panic!("migrating again: {other:?}"),
    }
    assert_eq!(db.psql("SELECT COUNT(*) FROM milestones"), "2500");
}

#[test]
fn a_copy_that_does_not_verify_is_rolled_back_with_nothing_lost() {
    let p = Project::new();
    let paused = pause_file(&p);
    corpus::generate(&p, 40);
    let env = [
        ("MILESTONED_PAUSE_AT", "copying"),
        ("MILESTONED_PAUSE_FILE", paused.to_str().unwrap()),
        ("MILESTONED_FAULT_AT", "verify"),
    ];
    let d = p.start_with_env(&env);
    let answer = std::thread::scope(|scope| {
        let migrating = scope.spawn(|| p.msctl(&["migrate", "database"]));
        wait_for_phase(&p, "copying");
        // Written during the copy: copied again, and that copy comes out wrong.
        update(&d, "milestone-000003", 3);
        std::fs::remove_file(&paused).unwrap();
        migrating.join().unwrap()
    });
    assert_ne!(answer.code, 0, "{answer:?}");
    assert!(answer.stderr.contains("did not verify") && answer.stderr.contains("milestone-000003"), "{answer:?}");
    assert_eq!(backend(&d), ("file".to_owned(), None));
    let served = everything(&d);
    assert_eq!(served.len(), 40);
    let written = served.iter().find(|(id, _)| id == "milestone-000003").map(|(_, v)| v).unwrap();
    assert_eq!(written.pointer("during"), Some(&Value::Int(3)), "the write made during the copy is kept");
    assert!(!written.pointer("title").and_then(Value::as_str).unwrap().contains("corrupted"));
    assert!(!p.milestones().join("enterprise.db").exists(), "nothing of the copy is left");
    assert!(!p.milestones().join("enterprise.db.migrating").exists(), "nothing of the copy is left");
    let (record, rollback) = recorded_failure(&p);
    assert!(record["error"].as_str().unwrap().contains("did not verify"), "{record}");
    assert!(rollback["details"]["error"].as_str().unwrap().contains("did not verify"), "{rollback}");
}

#[test]
fn a_backend_that_fails_its_health_check_after_the_switch_is_switched_back() {
    // From SQLite to PostgreSQL: switching back restores the database
    // engine in storage-config.yaml too.
    let db = postgres::shared().database();
    let (p, d) = generated(30, &[]);
    p.msctl(&["migrate", "database"]).ok();
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let d = p.start_with_env(&[("MILESTONED_FAULT_AT", "health")]);
    let before = everything(&d);
    let run = p.msctl(&["migrate", "database", "--database", "postgresql", "--url", &db.url()]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("failed its health check after the switch"), "{run:?}");
    assert_eq!(backend(&d), ("database".to_owned(), Some("sqlite".to_owned())));
    assert_eq!(everything(&d), before);
    assert_eq!(db.psql("SELECT COUNT(*) FROM milestones"), "0", "the copy into PostgreSQL is removed");
    let (record, rollback) = recorded_failure(&p);
    assert!(record["error"].as_str().unwrap().contains("health check"), "{record}");
    assert!(rollback["details"]["error"].as_str().unwrap().contains("switched back to database"), "{rollback}");

    // A restart finds the project where the rollback left it.
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let d = p.start(&[]);
    assert_eq!(backend(&d), ("database".to_owned(), Some("sqlite".to_owned())));
    assert_eq!(everything(&d), before);
}
