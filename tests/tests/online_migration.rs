//! Migrations are online: while one copies, eight clients keep reading and
//! writing, every request succeeds, writes complete before the migration
//! does, and every acknowledged write is in the new backend afterwards:
//! into a database and out of one (an export to YAML files) alike.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use milestones_e2e::protocol::{
    Assignment, BackendTarget, Change, DatabaseKind, DocumentInput, Map, Request, Response, Value,
};
use milestones_e2e::{corpus, migration_target, postgres, Project, SERVER_BACKEND};

const MILESTONES: usize = 1500;
/// The figure: eight clients during a migration of ten thousand.
const MANY: usize = 10_000;
const CLIENTS: usize = 8;

fn create(client: &mut milestones_e2e::Client, id: &str) {
    let mut doc = Map::new();
    doc.insert("id", Value::from(id));
    doc.insert("title", Value::from(format!("Milestone {id}")));
    match client.request(Request::Create { input: DocumentInput::Fields(Value::Map(doc)) }) {
        Ok(Response::Document(_)) => {}
        other => panic!("create {id}: {other:?}"),
    }
}

/// What the clients had acknowledged: each client's last value of its own
/// field on each milestone it wrote, and the milestones it created.
#[derive(Default)]
struct Acknowledged {
    fields: BTreeMap<(usize, String), i64>,
    created: Vec<String>,
    during_migration: usize,
    longest: Duration,
}

/// A project of `n` generated milestones on `from`: generated as files,
/// then moved there.
fn populated(from: &str, n: usize) -> (Project, milestones_e2e::Daemon) {
    let p = Project::new();
    corpus::generate(&p, n);
    let d = p.start(&[]);
    if from != "file" {
        match d.client().request(migrate_to(from)) {
            Ok(Response::Migrated(report)) => assert_eq!(report.milestones as usize, n),
            other => panic!("moving the project to {from}: {other:?}"),
        }
    }
    (p, d)
}

fn migrate_to(to: &str) -> Request {
    if to == SERVER_BACKEND {
        let target = BackendTarget::Database(DatabaseKind::Postgresql);
        Request::MigrateTo { target, url: Some(postgres::shared().database().url()) }
    } else {
        Request::Migrate { target: migration_target(to) }
    }
}

fn migrate_under_load(from: &str, to: &str, n: usize) {
    let (_p, d) = populated(from, n);
    let mut setup = d.client();
    let stop = Arc::new(AtomicBool::new(false));
    let migrating = Arc::new(Mutex::new(None::<(Instant, Option<Instant>)>));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, migrating, socket) = (stop.clone(), migrating.clone(), d.socket.clone());
            std::thread::spawn(move || {
                let mut client = milestones_e2e::Client::connect(&socket, "load").expect("connect");
                let mut acked = Acknowledged::default();
                let mut k = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    // A busy team, not a flood: two cores serve the daemon,
                    // the clients and PostgreSQL alike.
                    std::thread::sleep(Duration::from_millis(5));
                    k += 1;
                    let id = corpus::milestone_id(1 + (c * 97 + k as usize * 13) % n);
                    let path = format!("load.client_{c}");
                    let change = Change::Set(vec![Assignment { path, value: Value::Int(k) }]);
                    let started = Instant::now();
                    match client.request(Request::Update { id: id.clone(), change }) {
                        Ok(Response::Document(_)) => {}
                        other => panic!("client {c}: update {id} failed during the migration: {other:?}"),
                    }
                    let done = Instant::now();
                    acked.longest = acked.longest.max(done - started);
                    if let Some((begun, ended)) = *migrating.lock().unwrap() {
                        if started >= begun && ended.is_none() {
                            acked.during_migration += 1;
                        }
                    }
                    acked.fields.insert((c, id.clone()), k);
                    if k % 10 == 0 {
                        let new = format!("new-{c}-{k}");
                        create(&mut client, &new);
                        acked.created.push(new);
                    }
                    match client.request(Request::Get { id: id.clone() }) {
                        Ok(Response::Document(_)) => {}
                        other => panic!("client {c}: get {id} failed during the migration: {other:?}"),
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    *migrating.lock().unwrap() = Some((Instant::now(), None));
    let report = match setup.request(migrate_to(to)) {
        Ok(Response::Migrated(report)) => report,
        other => panic!("{from} → {to}: {other:?}"),
    };
    if let Some((_, ended)) = migrating.lock().unwrap().as_mut() {
        *ended = Some(Instant::now());
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acknowledged> = clients.into_iter().map(|c| c.join().expect("a client panicked")).collect();

    let during: usize = acked.iter().map(|a| a.during_migration).sum();
    let longest = acked.iter().map(|a| a.longest).max().unwrap_or_default();
    let stall_ms = match setup.request(Request::MigrationHistory) {
        Ok(Response::MigrationHistory(records)) => records.last().and_then(|r| r.write_stall_ms),
        other => panic!("{other:?}"),
    };
    let stall_ms = stall_ms.expect("the migration records how long it held writes");
    eprintln!(
        "{n} milestones, {from} → {to}: {during} writes done while the migration ran; longest write {longest:?}; \
         writes held {stall_ms} ms for the switch"
    );
    assert!(during > 0, "{from} → {to}: no write completed while the migration ran: writes were held throughout");
    let created: usize = acked.iter().map(|a| a.created.len()).sum();
    assert!(report.milestones as usize >= n, "{report:?}");

    // Every acknowledged write is in the new backend, which serves.
    match setup.request(Request::Backend) {
        Ok(Response::Backend(info)) => {
            let served = if info.database.as_deref() == Some(SERVER_BACKEND) { SERVER_BACKEND } else { &info.backend };
            assert_eq!(served, to)
        }
        other => panic!("{other:?}"),
    }
    for a in &acked {
        for ((c, id), k) in &a.fields {
            let doc = match setup.request(Request::Get { id: id.clone() }) {
                Ok(Response::Document(doc)) => doc,
                other => panic!("{id}: {other:?}"),
            };
            assert_eq!(doc.pointer(&format!("load.client_{c}")), Some(&Value::Int(*k)), "{from} → {to}: {id}");
        }
        for id in &a.created {
            assert!(matches!(setup.request(Request::Get { id: id.clone() }), Ok(Response::Document(_))), "{id} lost");
        }
    }
    match setup.request(Request::Backend) {
        Ok(Response::Backend(info)) => assert_eq!(info.milestones as usize, n + created, "{from} → {to}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ten_thousand_milestones_file_to_database_while_eight_clients_write() {
    migrate_under_load("file", "database", MANY);
}

#[test]
fn hybrid_to_database_while_clients_write() {
    migrate_under_load("hybrid", "database", MILESTONES);
}

#[test]
fn file_to_hybrid_while_clients_write() {
    migrate_under_load("file", "hybrid", MILESTONES);
}

#[test]
fn file_to_postgresql_while_clients_write() {
    migrate_under_load("file", SERVER_BACKEND, MILESTONES);
}

#[test]
fn database_to_hybrid_while_clients_write() {
    migrate_under_load("database", "hybrid", MILESTONES);
}

#[test]
fn database_to_file_while_clients_write() {
    migrate_under_load("database", "file", MILESTONES);
}

#[test]
fn postgresql_to_hybrid_while_clients_write() {
    migrate_under_load(SERVER_BACKEND, "hybrid", MILESTONES);
}
