//! A disk that fills up: every write is either refused, leaving the
//! milestone as it was, or acknowledged and kept; nothing is called
//! "changed outside milestoned" afterwards; and once space is freed the
//! project carries on. Runs on a small tmpfs, which needs root.

use milestones_e2e::protocol::{Assignment, Change, Request, Value};
use milestones_e2e::{ClientError, Project, BACKENDS};

const DISK: u64 = 8 * 1024 * 1024;

fn set(note: &str) -> Change {
    Change::Set(vec![Assignment { path: "note".into(), value: Value::String(note.to_owned()) }])
}

#[test]
fn a_full_disk_refuses_writes_cleanly_and_nothing_acknowledged_is_lost() {
    for backend in BACKENDS {
        let Some(p) = Project::on_small_disk(backend, DISK) else {
            println!("skipped: mounting a small disk (tmpfs) needs root");
            return;
        };
        let d = p.start(&[]);
        for i in 0..13 {
            p.msctl(&["create", "--title", &format!("Plan {i}"), "--id", &format!("m-{i}")]).ok();
        }
        let mut client = d.client();
        // A small project's index log stays small, however many writes.
        for round in 0..40 {
            for i in 0..13 {
                let note = format!("round {round}: {}", "n".repeat(200));
                client.request(Request::Update { id: format!("m-{i}"), change: set(&note) }).expect("an update");
            }
        }
        if backend == "hybrid" {
            let wal = std::fs::metadata(p.milestones().join("index.db-wal")).map_or(0, |m| m.len());
            assert!(wal <= 1_300_000, "hybrid: the index's write-ahead log is {wal} bytes");
        }

        let filler = p.fill_disk();
        let full = std::fs::metadata(&filler).unwrap().len();
        let mut acknowledged = std::collections::HashMap::new();
        let mut refused = 0;
        for attempt in 0..60 {
            // A little more room each time: at some point the file fits
            // and what the index needs does not.
            let room = 1024 * attempt as u64;
            std::fs::OpenOptions::new().write(true).open(&filler).unwrap().set_len(full - room).unwrap();
            let id = format!("m-{}", attempt % 13);
            let note = format!("attempt {attempt}: {}", "x".repeat(6_000 + 500 * attempt));
            match client.request(Request::Update { id: id.clone(), change: set(&note) }) {
                Ok(_) => {
                    acknowledged.insert(id.clone(), note);
                }
                Err(ClientError::Daemon(e)) => {
                    refused += 1;
                    assert!(e.message.to_lowercase().contains("no space left"), "{backend}: a refusal says why: {e:?}");
                }
                Err(e) => panic!("{backend}: the daemon did not answer: {e}"),
            }
            // Whatever the answer, the milestone is what was last acknowledged.
            let got = p.msctl(&["get", &id, "--json"]).json();
            let expected = acknowledged.get(&id).map(String::as_str);
            if let Some(note) = expected {
                assert_eq!(got["note"].as_str(), Some(note), "{backend}: attempt {attempt}");
            } else {
                assert!(got["note"].as_str().is_some_and(|n| n.starts_with("round 39")), "{backend}: {got}");
            }
        }
        assert!(refused > 0, "{backend}: the disk never filled up");
        p.msctl(&["ping"]).ok();

        std::fs::remove_file(&filler).unwrap();
        for i in 0..13 {
            // No "changed outside milestoned": the files are what the daemon wrote.
            p.msctl(&["update", &format!("m-{i}"), "--set", "after=freed"]).ok();
        }
        assert_eq!(p.msctl(&["validate", "--all"]).code, 0, "{backend}");
        drop(client);
        drop(d);
        let _d = p.start(&[]);
        for (id, note) in &acknowledged {
            let got = p.msctl(&["get", id, "--json"]).json();
            assert_eq!(got["note"].as_str(), Some(note.as_str()), "{backend}: {id} after a restart");
        }
        assert_eq!(p.msctl(&["health"]).code, 0, "{backend}");

        // A daemon started on a full disk serves what it has.
        drop(_d);
        let filler = p.fill_disk();
        let _d = p.start(&[]);
        let listed = p.msctl(&["list", "--json"]).json();
        assert_eq!(listed.as_array().map(Vec::len), Some(13), "{backend}: served from a full disk");
        std::fs::remove_file(&filler).unwrap();
    }
}
