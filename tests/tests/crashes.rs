//! Kills at the worst moments, outside migrations (those are in
//! `migration_crash.rs`): whatever was acknowledged is there after a
//! restart, exactly once.

use std::process::Command;

use milestones_e2e::{binary, Project};
use serde_json::Value;

/// A daemon that aborts, as a `kill -9` would stop it, at `point`.
fn crashing_at(p: &Project, point: &str) -> milestones_e2e::Daemon {
    let mut command = Command::new(binary("milestoned"));
    command.env("MILESTONED_CRASH_AT", point);
    p.start_command(command, &[])
}

/// A kill between writing a completed milestone into `completed/` and
/// removing it from `active/` leaves it in both. The next start keeps the
/// newer copy, moves the other into `backups/duplicates/`, and `health`
/// says so; a purge then removes the milestone for good.
#[test]
fn a_kill_in_the_middle_of_complete_leaves_one_milestone_and_says_what_happened() {
    for backend in ["file", "hybrid"] {
        let p = Project::on_backend(backend);
        let d = p.start(&[]);
        p.msctl(&["create", "--title", "Ship it", "--id", "ship"]).ok();
        drop(d);

        let d = crashing_at(&p, "moved-before-removing");
        let run = p.msctl(&["complete", "ship"]);
        assert_ne!(run.code, 0, "{backend}: the daemon died before answering: {run:?}");
        let (code, _) = d.wait();
        assert_ne!(code, Some(0), "{backend}: the daemon crashed");
        let (active, completed) = (p.milestones().join("active/ship.yaml"), p.milestones().join("completed/ship.yaml"));
        assert!(active.exists() && completed.exists(), "{backend}: the kill left both copies");
        let left_behind = std::fs::read_to_string(&active).unwrap();

        let _d = p.start(&[]);
        assert!(!active.exists(), "{backend}: the older copy left active/");
        let got = p.msctl(&["get", "ship", "--json"]).json();
        assert_eq!(got["status"], "completed", "{backend}: the newer copy is served");
        let duplicates: Vec<_> =
            std::fs::read_dir(p.milestones().join("backups/duplicates")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(duplicates.len(), 1, "{backend}: {duplicates:?}");
        assert_eq!(std::fs::read_to_string(&duplicates[0]).unwrap(), left_behind, "{backend}: nothing is lost");

        let health = p.msctl(&["health", "--json"]);
        assert_eq!(health.code, 0, "{backend}: a resolved pair is not a fault: {health:?}");
        let health = health.json();
        let said = health["problems"].as_array().unwrap().iter().any(|p| {
            let (file, message) = (p["file"].as_str().unwrap_or(""), p["message"].as_str().unwrap_or(""));
            file.contains("backups/duplicates/ship.active.")
                && message.contains("was in both active/ and completed/")
                && message.contains("completed/ship.yaml")
        });
        assert!(said, "{backend}: {health}");
        assert_eq!(p.msctl(&["list", "--all", "--json"]).json().as_array().map(Vec::len), Some(1));

        // Purged, it stays gone across a restart.
        p.msctl(&["delete", "ship", "--purge"]).ok();
        drop(_d);
        let _d = p.start(&[]);
        assert_eq!(p.msctl(&["get", "ship"]).code, 3, "{backend}: the purged milestone came back");
    }
}

/// A copy made by hand in the other folder, edited later than the
/// original: the newer wins, whichever folder it is in.
#[test]
fn of_two_copies_by_hand_the_newer_is_kept() {
    let p = Project::new();
    p.write(
        ".milestones/completed/twice.yaml",
        "id: twice\ntitle: Old copy\nstatus: completed\nupdated_at: '2026-01-01T00:00:00Z'\n",
    );
    p.write(
        ".milestones/active/twice.yaml",
        "id: twice\ntitle: Reopened later\nstatus: in_progress\nupdated_at: '2026-02-01T00:00:00Z'\n",
    );
    let _d = p.start(&[]);
    let got: Value = p.msctl(&["get", "twice", "--json"]).json();
    assert_eq!(got["title"], "Reopened later");
    assert!(!p.milestones().join("completed/twice.yaml").exists());
}

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use milestones_e2e::corpus::Rng;
use milestones_e2e::protocol::{Assignment, Change, DocumentInput, Map, Request, Response, Value as Wire};
use milestones_e2e::{Client, ALL_BACKENDS};

/// What one writer knows of its milestones: the value each was last
/// acknowledged with, and the one a request in flight at the kill may or
/// may not have stored.
#[derive(Default)]
struct Ledger {
    acknowledged: HashMap<String, i64>,
    in_flight: Option<(String, i64)>,
}

fn create(client: &mut Client, id: &str, value: i64) -> Result<Response, milestones_e2e::ClientError> {
    let mut doc = Map::new();
    doc.insert("id", Wire::from(id));
    doc.insert("title", Wire::from(format!("Written by a writer, {id}")));
    doc.insert("value", Wire::Int(value));
    client.request(Request::Create { input: DocumentInput::Fields(Wire::Map(doc)) })
}

fn set_value(client: &mut Client, id: &str, value: i64) -> Result<Response, milestones_e2e::ClientError> {
    let change = Change::Set(vec![Assignment { path: "value".into(), value: Wire::Int(value) }]);
    client.request(Request::Update { id: id.to_owned(), change })
}

/// Four writers create and update their own milestones as fast as they
/// can; the daemon is killed (`SIGKILL`) at a random moment; after a
/// restart every acknowledged write is there (a write in flight at the kill
/// may be either way), on every backend, three times each.
#[test]
fn a_kill_under_concurrent_writers_loses_no_acknowledged_write() {
    let mut rng = Rng::new(0x5eed_c0de);
    for backend in ALL_BACKENDS {
        let p = Project::on_any_backend(backend);
        for round in 0..3 {
            let d = p.start(&[]);
            let stop = Arc::new(AtomicBool::new(false));
            let ledgers: Vec<Arc<Mutex<Ledger>>> = (0..4).map(|_| Arc::default()).collect();
            let writers: Vec<_> = ledgers
                .iter()
                .enumerate()
                .map(|(w, ledger)| {
                    let (ledger, stop, mut client) = (ledger.clone(), stop.clone(), d.client());
                    std::thread::spawn(move || {
                        let mut n = 0i64;
                        while !stop.load(Ordering::Relaxed) {
                            n += 1;
                            // Every third write creates; the others update one of ours.
                            let known: Vec<String> = ledger.lock().unwrap().acknowledged.keys().cloned().collect();
                            let (id, fresh) = if n % 3 == 1 || known.is_empty() {
                                (format!("r{round}-w{w}-{n}"), true)
                            } else {
                                (known[n as usize % known.len()].clone(), false)
                            };
                            ledger.lock().unwrap().in_flight = Some((id.clone(), n));
                            let answer =
                                if fresh { create(&mut client, &id, n) } else { set_value(&mut client, &id, n) };
                            let mut ledger = ledger.lock().unwrap();
                            match answer {
                                Ok(_) => {
                                    ledger.acknowledged.insert(id, n);
                                    ledger.in_flight = None;
                                }
                                // The daemon is gone: what was in flight stays unknown.
                                Err(_) => return,
                            }
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
            d.signal(libc::SIGKILL);
            let _ = d.wait();
            stop.store(true, Ordering::Relaxed);
            for writer in writers {
                writer.join().unwrap();
            }

            let _d = p.start(&[]);
            let mut checked = 0;
            for ledger in &ledgers {
                let ledger = ledger.lock().unwrap();
                for (id, value) in &ledger.acknowledged {
                    let got = p.msctl(&["get", id, "--json"]);
                    assert_eq!(got.code, 0, "{backend} round {round}: acknowledged {id} is missing: {got:?}");
                    let stored = got.json()["value"].as_i64();
                    let in_flight = ledger.in_flight.as_ref().filter(|(i, _)| i == id).map(|(_, v)| *v);
                    assert!(
                        stored == Some(*value) || (stored.is_some() && stored == in_flight),
                        "{backend} round {round}: {id} holds {stored:?}, acknowledged {value}"
                    );
                    checked += 1;
                }
            }
            assert!(checked > 0, "{backend} round {round}: nothing was acknowledged before the kill");
            let report = p.msctl(&["validate", "--all"]);
            assert_eq!(report.code, 0, "{backend} round {round}: {report:?}");
        }
    }
}

/// Fifty clients, a hundred mixed operations each, on every backend: no
/// update lost, no id given twice, progress that matches the tasks, and
/// (for the backends that keep files) every file matching what is served.
#[test]
fn fifty_clients_of_a_hundred_mixed_operations_keep_every_invariant() {
    for backend in ["file", "hybrid", "database"] {
        let p = Project::on_backend(backend);
        let d = p.start(&[]);
        p.msctl(&["create", "--title", "Shared", "--id", "shared"]).ok();
        let results: Vec<_> = (0..50)
            .map(|c| {
                let mut client = d.client();
                std::thread::spawn(move || {
                    let mut created = Vec::new();
                    let mut tasks_added = 0;
                    for op in 0..100 {
                        // Of every twenty: two creates, one update and one
                        // task on the shared milestone, sixteen reads.
                        match op % 20 {
                            // A milestone with a generated id.
                            0 | 10 => match client.request(Request::Create {
                                input: DocumentInput::Yaml(format!("title: Client {c} op {op}\n")),
                            }) {
                                Ok(Response::Document(doc)) => {
                                    created.push(doc.pointer("id").and_then(Wire::as_str).unwrap().to_owned())
                                }
                                other => panic!("create: {other:?}"),
                            },
                            // A field of the shared milestone that only this client writes.
                            5 => {
                                let change =
                                    Change::Set(vec![Assignment { path: format!("client_{c}"), value: Wire::Int(op) }]);
                                client.request(Request::Update { id: "shared".into(), change }).expect("update");
                            }
                            // A task on the shared milestone.
                            15 => {
                                let task = milestones_e2e::protocol::NewTask {
                                    id: None,
                                    title: format!("task of {c} at {op}"),
                                    depends_on: vec![],
                                };
                                client.request(Request::TaskAdd { milestone: "shared".into(), task }).expect("task");
                                tasks_added += 1;
                            }
                            n if n % 2 == 0 => {
                                client.request(Request::Get { id: "shared".into() }).expect("get");
                            }
                            _ => {
                                let query = milestones_e2e::protocol::Query { limit: Some(20), ..Default::default() };
                                client.request(Request::List { query }).expect("list");
                            }
                        }
                    }
                    (created, tasks_added)
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut tasks = 0;
        for (c, result) in results.into_iter().enumerate() {
            let (created, added) = result.join().unwrap_or_else(|_| panic!("{backend}: client {c} failed"));
            ids.extend(created);
            tasks += added;
        }
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{backend}: a generated id was given twice");
        assert_eq!(ids.len(), 50 * 10);

        let shared = p.msctl(&["get", "shared", "--json"]).json();
        for c in 0..50 {
            assert_eq!(shared[format!("client_{c}")].as_i64(), Some(85), "{backend}: client {c}'s last update");
        }
        let listed = shared["tasks"].as_array().unwrap();
        assert_eq!(listed.len(), tasks, "{backend}: a task was lost");
        let task_ids: std::collections::HashSet<_> = listed.iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(task_ids.len(), tasks, "{backend}: two tasks share an id");
        assert_eq!(shared["progress"]["total_tasks"].as_u64(), Some(tasks as u64), "{backend}");
        assert_eq!(shared["progress"]["tasks_completed"].as_u64(), Some(0), "{backend}");

        let all = p.msctl(&["list", "--all", "--json"]).json();
        assert_eq!(all.as_array().unwrap().len(), ids.len() + 1, "{backend}");
        assert_eq!(p.msctl(&["validate", "--all"]).code, 0, "{backend}");
        if backend != "database" {
            // Every file holds what is served.
            for milestone in all.as_array().unwrap() {
                let id = milestone["id"].as_str().unwrap();
                let text = std::fs::read_to_string(p.milestones().join(format!("active/{id}.yaml"))).unwrap();
                let on_disk: serde_json::Value = serde_norway::from_str(&text).unwrap();
                assert_eq!(on_disk["title"], milestone["title"], "{backend}: {id}");
            }
        }
        drop(d);
    }
}
