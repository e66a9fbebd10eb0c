//! Two service instances over one SQLite database, each with its own
//! connections, as two daemons will share PostgreSQL: 20 concurrent writers
//! on each, on shared milestones. Nothing may depend on a lock inside one
//! process for correctness.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use milestoned::config::StorageConfig;
use milestoned::event_log::StorageEventLog;
use milestoned::layout::ProjectLayout;
use milestoned::peer::Peer;
use milestoned::service::{Endpoint, MilestoneService, ServiceError};
use milestoned::storage::{BackendKind, BackendSpec, Stored};
use milestones_protocol::{Assignment, Change, DatabaseKind, DocumentInput, Map, Value};
use tracing::level_filters::LevelFilter;

const SERVICES: usize = 2;
const WRITERS: usize = 20;
const ROUNDS: usize = 6;
const SHARED: usize = 3;

fn service(root: &Path) -> MilestoneService {
    let layout = ProjectLayout::new(root);
    let config = StorageConfig::default();
    let store = BackendSpec::new(BackendKind::Database(DatabaseKind::Sqlite), &config).open(&layout).unwrap();
    let events = StorageEventLog::open(&layout.storage_events()).unwrap();
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
    race: Vec<(usize, i64, String)>,
    conflicts: usize,
    created: Vec<String>,
}

#[test]
fn two_services_with_twenty_writers_each_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ProjectLayout::new(dir.path());
    layout.ensure().unwrap();
    let services: Vec<Arc<MilestoneService>> = (0..SERVICES).map(|_| Arc::new(service(dir.path()))).collect();
    let peer = Peer { user: "tester".to_owned() };
    let revision = |stored: &Stored| stored.revision.as_str().parse::<usize>().unwrap();
    let first_revision: Vec<usize> = (0..SHARED)
        .map(|m| {
            let input = fields(&[("id", Value::from(format!("shared-{m}"))), ("title", Value::from("Shared"))]);
            revision(&services[0].create(input, &peer).unwrap())
        })
        .collect();

    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
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
                            Ok(stored) => outcome.race.push((m, stored.revision.as_str().parse().unwrap(), value)),
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
    });

    // Generated ids never collide, across both services.
    let created: Vec<&String> = outcomes.iter().flat_map(|o| &o.created).collect();
    let unique: HashSet<&&String> = created.iter().collect();
    assert_eq!(unique.len(), SERVICES * WRITERS * 2, "duplicate generated ids among {created:?}");
    assert_eq!(services[1].milestone_count().unwrap() as usize, SHARED + SERVICES * WRITERS * 2);

    let reader = &services[1];
    for (m, first_revision) in first_revision.iter().enumerate() {
        let id = format!("shared-{m}");
        let stored = reader.update(&id, set("checked", Value::Bool(true)), &peer).unwrap();
        let doc = Value::Map(Map::clone(&stored.doc));
        // Different fields: every writer's last successful change is there.
        for (s, w) in (0..SERVICES).flat_map(|s| (0..WRITERS).map(move |w| (s, w))) {
            let outcome = &outcomes[s * WRITERS + w];
            let last = outcome.own.iter().filter(|(mm, _)| *mm == m).map(|(_, r)| *r).max();
            let field = doc.pointer(&format!("writers.s{s}w{w}"));
            assert_eq!(field, last.map(|r| Value::Int(r as i64)).as_ref(), "{id}: writer s{s}w{w}'s change");
        }
        // The same field: one value, that of the write stored last.
        let races: Vec<&(usize, i64, String)> = outcomes.iter().flat_map(|o| &o.race).filter(|r| r.0 == m).collect();
        let last = races.iter().max_by_key(|r| r.1).expect("some race write succeeded");
        assert_eq!(doc.pointer("race.value"), Some(&Value::from(last.2.as_str())), "{id}: the last write wins");
        let revisions: HashSet<i64> = races.iter().map(|r| r.1).collect();
        assert_eq!(revisions.len(), races.len(), "{id}: two writes stored the same revision");
        // Every successful write is exactly one revision: none was folded
        // into another unseen.
        let writes = outcomes
            .iter()
            .map(|o| o.own.iter().filter(|x| x.0 == m).count() + o.race.iter().filter(|x| x.0 == m).count())
            .sum::<usize>()
            + 1;
        assert_eq!(revision(&stored) - first_revision, writes, "{id}: revisions counted");
    }

    // Retried same-field writes are logged as decisions in the audit log.
    let log = std::fs::read_to_string(layout.storage_events()).unwrap();
    let overrides = log.lines().filter(|l| l.contains("\"overrode\":[\"race.value\"]")).count();
    let retried = log.lines().filter(|l| l.contains("\"retries\":")).count();
    let conflicts: usize = outcomes.iter().map(|o| o.conflicts).sum();
    eprintln!("retried writes: {retried}, same-field overrides logged: {overrides}, conflict errors: {conflicts}");
    for line in log.lines().filter(|l| l.contains("\"overrode\"")) {
        assert!(line.contains("\"retries\":"), "an override is only found by a retry: {line}");
    }
}
