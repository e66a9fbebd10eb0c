//! Several writers through the service, on shared milestones: two service
//! instances over one SQLite database, each with its own connections, and
//! two on two project roots sharing one PostgreSQL database, as two daemons
//! do (20 concurrent writers on each), and one service on the file-keeping
//! backends. Nothing may depend on a lock inside one process for
//! correctness.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use milestoned::config::StorageConfig;
use milestoned::database_url::DatabaseUrl;
use milestoned::event_log::StorageEventLog;
use milestoned::layout::ProjectLayout;
use milestoned::peer::Peer;
use milestoned::service::{Endpoint, MilestoneService, ServiceError};
use milestoned::storage::{BackendKind, BackendSpec, Stored};
use milestones_protocol::{Assignment, Change, DatabaseKind, DocumentInput, Map, Value};
use tracing::level_filters::LevelFilter;

const WRITERS: usize = 20;
const ROUNDS: usize = 6;
const SHARED: usize = 3;

fn service(root: &Path, kind: BackendKind, config: &StorageConfig) -> MilestoneService {
    let layout = ProjectLayout::new(root);
    layout.ensure().unwrap();
    let config = config.clone();
    let store = BackendSpec::new(kind, &config).open(&layout).unwrap();
    let events = StorageEventLog::open(&layout.storage_events(), false).unwrap();
    MilestoneService::new(store, layout, config, events, Endpoint::default(), LevelFilter::INFO)
}

fn set(path: &str, value: Value) -> Change {
    Change::Set(vec![Assignment { path: path.to_owned(), value }])
}

fn fields(pairs: &[(&str, Value)]) -> DocumentInput {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(*k, v.clone());
    }
    DocumentInput::Fields(Value::Map(map))
}

/// What one writer saw succeed.
#[derive(Default)]
struct Outcome {
    /// (milestone, round) of each successful write of the writer's own field.
    own: Vec<(usize, usize)>,
    /// (milestone, revision, value) of each successful write of the shared field.
    race: Vec<(usize, String, String)>,
    conflicts: usize,
    created: Vec<String>,
}

/// Creates the shared milestones through the first service; returns what
/// each was stored as.
fn create_shared(services: &[Arc<MilestoneService>], peer: &Peer) -> Vec<Stored> {
    (0..SHARED)
        .map(|m| {
            let input = fields(&[("id", Value::from(format!("shared-{m}"))), ("title", Value::from("Shared"))]);
            services[0].create(input, peer).unwrap()
        })
        .collect()
}

/// `WRITERS` threads on each service: each round, every writer sets a field
/// of its own and the one shared field on one of the shared milestones;
/// then each creates two milestones with generated ids.
fn run_writers(services: &[Arc<MilestoneService>], peer: &Peer) -> Vec<Outcome> {
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (s, service) in services.iter().enumerate() {
            for w in 0..WRITERS {
                let (service, peer) = (service.clone(), peer.clone());
                handles.push(scope.spawn(move || {
                    let mut outcome = Outcome::default();
                    let me = format!("s{s}w{w}");
                    for round in 0..ROUNDS {
                        let m = (w + round) % SHARED;
                        let id = format!("shared-{m}");
                        match service.update(&id, set(&format!("writers.{me}"), Value::Int(round as i64)), &peer) {
                            Ok(_) => outcome.own.push((m, round)),
                            Err(ServiceError::Contended { .. }) => outcome.conflicts += 1,
                            Err(e) => panic!("{me}: {e}"),
                        }
                        let value = format!("{me}-r{round}");
                        match service.update(&id, set("race.value", Value::from(value.as_str())), &peer) {
                            Ok(stored) => outcome.race.push((m, stored.revision.as_str().to_owned(), value)),
                            Err(ServiceError::Contended { .. }) => outcome.conflicts += 1,
                            Err(e) => panic!("{me}: {e}"),
                        }
                    }
                    for _ in 0..2 {
                        let created =
                            service.create(fields(&[("title", Value::from(format!("made by {me}")))]), &peer).unwrap();
                        outcome.created.push(milestoned::document::id(&created.doc).unwrap().to_owned());
                    }
                    outcome
                }));
            }
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// What holds on every backend: generated ids never collide, every
/// writer's last successful change to its own field is there, and the
/// shared field holds a value some writer stored. Returns each shared
/// milestone as finally stored.
fn check_nothing_lost(services: &[Arc<MilestoneService>], outcomes: &[Outcome], peer: &Peer) -> Vec<Stored> {
    let created: Vec<&String> = outcomes.iter().flat_map(|o| &o.created).collect();
    let unique: HashSet<&&String> = created.iter().collect();
    assert_eq!(unique.len(), services.len() * WRITERS * 2, "duplicate generated ids among {created:?}");
    let reader = services.last().unwrap();
    assert_eq!(reader.milestone_count().unwrap() as usize, SHARED + services.len() * WRITERS * 2);
    (0..SHARED)
        .map(|m| {
            let id = format!("shared-{m}");
            let stored = reader.update(&id, set("checked", Value::Bool(true)), peer).unwrap();
            let doc = Value::Map(Map::clone(&stored.doc));
            for (s, w) in (0..services.len()).flat_map(|s| (0..WRITERS).map(move |w| (s, w))) {
                let outcome = &outcomes[s * WRITERS + w];
                let last = outcome.own.iter().filter(|(mm, _)| *mm == m).map(|(_, r)| *r).max();
                let field = doc.pointer(&format!("writers.s{s}w{w}"));
                assert_eq!(field, last.map(|r| Value::Int(r as i64)).as_ref(), "{id}: writer s{s}w{w}'s change");
            }
            let value = doc.pointer("race.value").and_then(Value::as_str).unwrap_or_default().to_owned();
            let stored_by_someone = outcomes.iter().flat_map(|o| &o.race).any(|r| r.0 == m && r.2 == value);
            assert!(stored_by_someone, "{id}: the shared field holds {value:?}, which no successful write stored");
            stored
        })
        .collect()
}

/// Retried same-field writes are logged as decisions in the audit logs.
fn check_decisions_logged(layouts: &[ProjectLayout], outcomes: &[Outcome]) {
    let log: String = layouts.iter().map(|l| std::fs::read_to_string(l.storage_events()).unwrap()).collect();
    let overrides = log.lines().filter(|l| l.contains("\"overrode\":[\"race.value\"]")).count();
    let retried = log.lines().filter(|l| l.contains("\"retries\":")).count();
    let conflicts: usize = outcomes.iter().map(|o| o.conflicts).sum();
    eprintln!("retried writes: {retried}, same-field overrides logged: {overrides}, conflict errors: {conflicts}");
    for line in log.lines().filter(|l| l.contains("\"overrode\"")) {
        assert!(line.contains("\"retries\":"), "an override is only found by a retry: {line}");
    }
}

/// Two services on `roots` (the same root twice for SQLite's one file) over
/// one database: nothing lost, the later of two same-field writes wins, and
/// every write is one revision.
fn two_services_lose_nothing(kind: BackendKind, roots: [&Path; 2], config: &StorageConfig) {
    let services: Vec<Arc<MilestoneService>> = roots.iter().map(|r| Arc::new(service(r, kind, config))).collect();
    let layouts: Vec<ProjectLayout> = roots.iter().map(|r| ProjectLayout::new(r)).collect();
    let peer = Peer::daemon("tester");
    let counter = |revision: &str| revision.parse::<usize>().unwrap();
    let first = create_shared(&services, &peer);
    let outcomes = run_writers(&services, &peer);
    let last = check_nothing_lost(&services, &outcomes, &peer);
    for m in 0..SHARED {
        let id = format!("shared-{m}");
        let doc = Value::Map(Map::clone(&last[m].doc));
        // The same field: one value, that of the write stored last.
        let races: Vec<&(usize, String, String)> = outcomes.iter().flat_map(|o| &o.race).filter(|r| r.0 == m).collect();
        let latest = races.iter().max_by_key(|r| counter(&r.1)).expect("some race write succeeded");
        assert_eq!(doc.pointer("race.value"), Some(&Value::from(latest.2.as_str())), "{id}: the last write wins");
        let revisions: HashSet<&String> = races.iter().map(|r| &r.1).collect();
        assert_eq!(revisions.len(), races.len(), "{id}: two writes stored the same revision");
        // Every successful write is exactly one revision: none was folded
        // into another unseen.
        let writes = outcomes
            .iter()
            .map(|o| o.own.iter().filter(|x| x.0 == m).count() + o.race.iter().filter(|x| x.0 == m).count())
            .sum::<usize>()
            + 1;
        let advanced = counter(last[m].revision.as_str()) - counter(first[m].revision.as_str());
        assert_eq!(advanced, writes, "{id}: revisions counted");
    }
    check_decisions_logged(&layouts[..if roots[0] == roots[1] { 1 } else { 2 }], &outcomes);
}

#[test]
fn two_services_on_one_sqlite_database_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kind = BackendKind::Database(DatabaseKind::Sqlite);
    two_services_lose_nothing(kind, [dir.path(), dir.path()], &StorageConfig::default());
}

#[test]
fn two_project_roots_on_one_postgresql_database_lose_nothing() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = milestones_e2e::postgres::shared().database();
    let config =
        StorageConfig { database_url: Some(DatabaseUrl::parse(&db.url()).unwrap()), ..StorageConfig::default() };
    let kind = BackendKind::Database(DatabaseKind::Postgresql);
    two_services_lose_nothing(kind, [a.path(), b.path()], &config);
}

/// The file-keeping backends have one daemon per tree; within it, twenty
/// concurrent writers lose nothing either (their revisions are the files'
/// content hashes).
#[test]
fn twenty_writers_on_the_files_lose_nothing() {
    for kind in [BackendKind::File, BackendKind::Hybrid] {
        let dir = tempfile::tempdir().unwrap();
        let services = vec![Arc::new(service(dir.path(), kind, &StorageConfig::default()))];
        let peer = Peer::daemon("tester");
        create_shared(&services, &peer);
        let outcomes = run_writers(&services, &peer);
        check_nothing_lost(&services, &outcomes, &peer);
        check_decisions_logged(&[ProjectLayout::new(dir.path())], &outcomes);
    }
}

/// `stats` and the dependency graph on SQLite are kept between requests
/// until the database changes: a write through this service, or through
/// another one over the same file (as another daemon's would be), shows in
/// the next answer.
#[test]
fn stats_and_dependencies_follow_every_writer_of_one_sqlite_database() {
    use milestones_protocol::{Request, Response};
    let dir = tempfile::tempdir().unwrap();
    let kind = BackendKind::Database(DatabaseKind::Sqlite);
    let config = StorageConfig::default();
    let (here, there) = (service(dir.path(), kind, &config), service(dir.path(), kind, &config));
    let peer = Peer::daemon("tester");
    let stats = |s: &MilestoneService| match s.handle(Request::Stats, &peer) {
        Ok(Response::Stats(a)) => (a.total, a.dependencies.total, a.completed),
        other => panic!("stats failed: {other:?}"),
    };
    assert_eq!(stats(&here), (0, 0, 0));
    here.create(fields(&[("id", Value::from("a")), ("title", Value::from("A"))]), &peer).unwrap();
    assert_eq!(stats(&here), (1, 0, 0), "a write of this service");
    assert_eq!(stats(&here), (1, 0, 0), "asked again");
    let requires = Value::List(vec![Value::from("a")]);
    let mut dependencies = Map::new();
    dependencies.insert("requires", requires);
    there
        .create(
            fields(&[
                ("id", Value::from("b")),
                ("title", Value::from("B")),
                ("dependencies", Value::Map(dependencies)),
            ]),
            &peer,
        )
        .unwrap();
    assert_eq!(stats(&here), (2, 1, 0), "a write of another service");
    there.handle(Request::Complete { id: "a".into() }, &peer).unwrap();
    assert_eq!(stats(&here), (2, 1, 1), "a change of another service");
    let edges = |s: &MilestoneService| match s.handle(Request::Deps { id: None }, &peer) {
        Ok(Response::Deps(report)) => report.edges.len(),
        other => panic!("deps failed: {other:?}"),
    };
    assert_eq!(edges(&here), 1);
    there
        .handle(Request::Update { id: "b".into(), change: set("dependencies.requires", Value::List(vec![])) }, &peer)
        .unwrap();
    assert_eq!(edges(&here), 0, "an edge removed by another service");
    assert_eq!(stats(&here), (2, 0, 1));
}
