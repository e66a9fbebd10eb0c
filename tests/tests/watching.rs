//! Outside edits (DESIGN §11): the seed's shell functions, hand edits,
//! broken files and a git checkout are seen by a running daemon; change
//! events reach `msctl watch`, the Python example client and the client
//! library; a stalled subscriber lags without holding anyone up.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use milestones_e2e::protocol::{EventFilter, EventKind, EventSource, Request, ServerMessage};
use milestones_e2e::{Project, BACKENDS};
use serde_json::Value;

/// Waits until `check` holds.
#[track_caller]
fn eventually(what: &str, check: impl FnMut() -> bool) {
    milestones_e2e::eventually(what, Duration::from_secs(15), check);
}

fn title(p: &Project, id: &str) -> Option<String> {
    let run = p.msctl(&["get", id, "--json"]);
    (run.code == 0).then(|| run.json()["title"].as_str().unwrap_or_default().to_owned())
}

/// Runs seed 003's file functions (`tests/peers/seed-003.sh`) in the
/// project root.
fn shell(p: &Project, script: &str) {
    let functions = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/seed-003.sh");
    let out =
        Command::new("bash").arg("-c").arg(format!(". '{functions}'\n{script}")).current_dir(&p.root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_seed_shell_functions_are_seen_on_every_backend() {
    for backend in BACKENDS {
        let p = Project::on_backend(backend);
        let _d = p.start(&[]);
        shell(&p, "create_milestone_file shell-made 'id: shell-made\ntitle: From the shell\nstatus: planning'");
        eventually("the created file is served", || title(&p, "shell-made").as_deref() == Some("From the shell"));
        shell(
            &p,
            "update_milestone_file shell-made 'id: shell-made\ntitle: Updated in the shell\nstatus: in_progress'",
        );
        eventually("the update is served", || title(&p, "shell-made").as_deref() == Some("Updated in the shell"));
        assert_eq!(p.msctl(&["list", "--status", "in_progress", "--json"]).json()[0]["id"], "shell-made", "{backend}");
        if backend == "database" {
            // The database is the truth: dropped-in files are imported, then removed.
            assert!(!p.milestones().join("active/shell-made.yaml").exists());
            continue;
        }
        shell(&p, "delete_milestone_file shell-made");
        eventually(&format!("the move is seen on {backend}"), || {
            let log = std::fs::read_to_string(p.milestones().join("logs/storage-events.jsonl")).unwrap_or_default();
            log.lines()
                .any(|l| l.contains("\"event\":\"outside_moved\"") && l.contains("\"milestone_id\":\"shell-made\""))
        });
        if backend == "hybrid" {
            eventually("index.db follows the move", || {
                p.sqlite3("index.db", "SELECT file_path FROM milestones WHERE id='shell-made'")
                    == ".milestones/completed/shell-made.yaml\n"
            });
        }
        std::fs::remove_file(p.milestones().join("completed/shell-made.yaml")).unwrap();
        eventually(&format!("the deletion is seen on {backend}"), || title(&p, "shell-made").is_none());
    }
}

#[test]
fn a_broken_file_is_reported_and_left_alone_while_its_last_good_version_is_served() {
    let p = Project::new();
    let _d = p.start(&[]);
    p.msctl(&["create", "--title", "Good", "--id", "fragile"]).ok();
    let path = p.milestones().join("active/fragile.yaml");
    let good = std::fs::read_to_string(&path).unwrap();
    let broken = "id: fragile\ntitle: Good\n  status: [not, closed\n";
    std::fs::write(&path, broken).unwrap();
    eventually("validate reports the file", || p.msctl(&["validate", "--all"]).code == 5);
    let report = p.msctl(&["validate", "--all", "--json"]).stdout;
    assert!(report.contains(".milestones/active/fragile.yaml") && report.contains("line 3"), "{report}");
    assert_eq!(title(&p, "fragile").as_deref(), Some("Good"), "the last good version is served");
    let human = p.msctl(&["validate", "--all"]).stdout;
    assert!(human.contains("checked 1 milestone(s)"), "one milestone, not two: {human}");
    assert_eq!(human.matches("fragile.yaml").count(), 1, "the file is named once: {human}");
    // The user's file is left exactly as written, even by a request.
    p.msctl(&["update", "fragile", "--set", "owner=me"]).fails(7, "not overwriting it");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    // Put back as it was (a `git checkout --`): the problem goes away.
    std::fs::write(&path, &good).unwrap();
    eventually("the restored file is clean again", || p.msctl(&["validate", "--all"]).code == 0);
    std::fs::write(&path, "id: fragile\ntitle: Fixed\nstatus: planning\n").unwrap();
    eventually("the fix is served", || title(&p, "fragile").as_deref() == Some("Fixed"));
    assert_eq!(p.msctl(&["validate", "--all"]).code, 0);
}

/// A milestone file its daemon cannot read (`chmod 000`, daemon running as
/// an ordinary user): named by `validate` and `health`, never deleted,
/// archived or rewritten, its last good version served while one is known,
/// its id kept from new milestones, and all clear once the mode is back.
#[test]
fn an_unreadable_file_is_named_kept_and_never_taken_for_a_deletion() {
    use std::os::unix::fs::PermissionsExt;
    for backend in ["file", "hybrid"] {
        let p = Project::on_backend(backend);
        let d = p.start_as_ordinary_user();
        p.msctl(&["create", "--title", "Locked away", "--id", "locked"]).ok();
        p.msctl(&["create", "--title", "Neighbour", "--id", "neighbour"]).ok();
        let path = p.milestones().join("active/locked.yaml");
        let bytes = std::fs::read(&path).unwrap();
        let mode = |m: u32| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        mode(0o000);
        eventually(&format!("validate names the unreadable file on {backend}"), || {
            let run = p.msctl(&["validate", "--all"]);
            run.code == 5
                && run.stdout.contains("active/locked.yaml")
                && run.stdout.to_lowercase().contains("permission denied")
        });
        let health = p.msctl(&["health"]);
        assert_eq!(health.code, 5, "{health:?}");
        assert!(health.stdout.contains("active/locked.yaml"), "{health:?}");
        assert_eq!(title(&p, "locked").as_deref(), Some("Locked away"), "the last good version is served");
        // A request cannot rewrite it, and nothing moves or removes it.
        assert_ne!(p.msctl(&["update", "locked", "--set", "owner=me"]).code, 0);
        p.msctl(&["create", "--title", "Another", "--id", "another"]).ok();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0,
            "{backend}: the mode is left as set"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{backend}: the file is untouched");
        assert!(!p.milestones().join("completed/locked.yaml").exists());

        // After a restart it is still named, and still not missing.
        drop(d);
        let d = p.start_as_ordinary_user();
        let report = p.msctl(&["validate", "--all"]);
        assert_eq!(report.code, 5, "{backend}: {report:?}");
        assert!(report.stdout.contains("active/locked.yaml"), "{backend}: {report:?}");
        let get = p.msctl(&["get", "locked"]);
        if backend == "file" {
            // Nothing of it is known but its name: it cannot be served, and
            // it is not "not found".
            assert_eq!(get.code, 1, "{get:?}");
            assert!(
                get.stderr.contains("locked") && get.stderr.to_lowercase().contains("permission denied"),
                "{get:?}"
            );
        } else {
            // The index holds its last good version.
            assert_eq!(title(&p, "locked").as_deref(), Some("Locked away"), "{get:?}");
        }
        p.msctl(&["create", "--title", "Usurper", "--id", "locked"]).fails(4, "already exists");
        assert_eq!(title(&p, "neighbour").as_deref(), Some("Neighbour"), "other milestones are unaffected");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);

        // The mode put back: the problem is gone and the milestone served.
        mode(0o644);
        eventually(&format!("the file is readable again on {backend}"), || p.msctl(&["validate", "--all"]).code == 0);
        assert_eq!(title(&p, "locked").as_deref(), Some("Locked away"));
        assert_eq!(p.msctl(&["health"]).code, 0);
        drop(d);
    }
}

/// A symbolic link in `active/` is never followed nor taken for nothing:
/// named by `validate` and `health`, its id kept from new milestones, the
/// link left as it is, before and after a restart, and all clear once a
/// real file takes its place.
#[test]
fn a_symlinked_milestone_file_is_named_and_never_followed() {
    for backend in ["file", "hybrid"] {
        let p = Project::on_backend(backend);
        let d = p.start(&[]);
        p.msctl(&["create", "--title", "Neighbour", "--id", "neighbour"]).ok();
        let outside = p.write("elsewhere/linked.yaml", "id: linked\ntitle: Kept elsewhere\nstatus: planning\n");
        let link = p.milestones().join("active/linked.yaml");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let named = |run: &milestones_e2e::Run| {
            run.code == 5 && run.stdout.contains("active/linked.yaml") && run.stdout.contains("symbolic link")
        };
        eventually(&format!("validate names the link on {backend}"), || named(&p.msctl(&["validate", "--all"])));
        let health = p.msctl(&["health"]);
        assert!(named(&health), "{backend}: {health:?}");

        // After a restart it is still named, not silently dropped.
        drop(d);
        let d = p.start(&[]);
        let report = p.msctl(&["validate", "--all"]);
        assert!(named(&report), "{backend}: {report:?}");
        let health = p.msctl(&["health"]);
        assert!(named(&health), "{backend} after a restart: {health:?}");
        p.msctl(&["create", "--title", "Usurper", "--id", "linked"]).fails(4, "already exists");
        assert_ne!(p.msctl(&["update", "linked", "--set", "owner=me"]).code, 0);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{backend}: the link is left");
        assert_eq!(title(&p, "neighbour").as_deref(), Some("Neighbour"), "other milestones are unaffected");

        // The file itself in its place: served, and the problem gone.
        std::fs::remove_file(&link).unwrap();
        std::fs::copy(&outside, &link).unwrap();
        eventually(&format!("the real file is served on {backend}"), || {
            title(&p, "linked").as_deref() == Some("Kept elsewhere")
        });
        assert_eq!(p.msctl(&["validate", "--all"]).code, 0);
        assert_eq!(p.msctl(&["health"]).code, 0);
        drop(d);
    }
}

/// A status edited by hand across the line between `active/` and
/// `completed/` moves the file, bytes untouched, and is announced as
/// `Moved`, the same rule as a request's `complete`.
#[test]
fn an_outside_edit_that_completes_a_milestone_moves_its_file_as_a_request_would() {
    for backend in ["file", "hybrid"] {
        let p = Project::on_backend(backend);
        let d = p.start(&[]);
        p.msctl(&["create", "--title", "By hand", "--id", "by-hand"]).ok();
        let mut watcher = d.client();
        watcher.subscribe(EventFilter::default()).unwrap();
        let active = p.milestones().join("active/by-hand.yaml");
        let edited = std::fs::read_to_string(&active).unwrap().replace("status: planning", "status: completed");
        assert!(edited.contains("status: completed"), "{edited}");
        std::fs::write(&active, &edited).unwrap();
        let completed = p.milestones().join("completed/by-hand.yaml");
        eventually(&format!("the file is moved on {backend}"), || completed.exists() && !active.exists());
        assert_eq!(std::fs::read_to_string(&completed).unwrap(), edited, "{backend}: moved byte for byte");
        match watcher.next_event().unwrap() {
            ServerMessage::Event(e) => {
                assert_eq!((e.kind, e.source), (EventKind::Moved, EventSource::OutsideEdit), "{backend}: {e:?}");
                assert_eq!(e.file.as_deref(), Some(".milestones/completed/by-hand.yaml"), "{backend}: {e:?}");
            }
            other => panic!("{backend}: {other:?}"),
        }
        assert_eq!(p.msctl(&["get", "by-hand", "--json"]).json()["status"], "completed");
        assert_eq!(p.msctl(&["validate", "--all"]).code, 0, "{backend}");
        // Served from its new place after a restart, once.
        drop(watcher);
        drop(d);
        let _d = p.start(&[]);
        assert_eq!(p.msctl(&["list", "--all", "--json"]).json().as_array().map(Vec::len), Some(1), "{backend}");
        assert_eq!(p.msctl(&["health"]).code, 0, "{backend}");
    }
}

#[test]
fn a_git_checkout_of_a_thousand_changed_files_is_absorbed() {
    let p = Project::new();
    std::fs::create_dir_all(p.milestones().join("active")).unwrap();
    std::fs::create_dir_all(p.milestones().join("completed")).unwrap();
    let git = |args: &[&str]| {
        p.git(args);
    };
    let write_all = |title: &str| {
        for i in 0..1000 {
            let id = format!("m-{i:04}");
            std::fs::write(
                p.milestones().join(format!("active/{id}.yaml")),
                format!("id: {id}\ntitle: {title} {i}\nstatus: planning\n"),
            )
            .unwrap();
        }
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(p.root.join(".gitignore"), ".milestones/*\n!.milestones/active/\n!.milestones/completed/\n")
        .unwrap();
    write_all("Old");
    git(&["add", "-A"]);
    git(&["commit", "-qm", "old"]);
    git(&["checkout", "-qb", "new"]);
    write_all("New");
    git(&["commit", "-qam", "new"]);
    git(&["checkout", "-q", "main"]);

    let d = p.start(&[]);
    let mut watcher = d.client();
    watcher.subscribe(EventFilter { kinds: vec![EventKind::Updated], ..EventFilter::default() }).unwrap();
    git(&["checkout", "-q", "new"]);
    let news = || p.msctl(&["search", "new", "--limit", "2000", "--json"]).json().as_array().map_or(0, Vec::len);
    eventually("all 1,000 files are taken in", || news() == 1000);
    assert_eq!(title(&p, "m-0999").as_deref(), Some("New 999"));
    // One event per changed milestone, each marked as an outside edit.
    for _ in 0..1000 {
        match watcher.next_event().unwrap() {
            ServerMessage::Event(e) => assert_eq!(e.source, EventSource::OutsideEdit),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn msctl_watch_and_the_python_client_see_requests_and_outside_edits() {
    let p = Project::new();
    let _d = p.start(&[]);
    let mut watch = Command::new(milestones_e2e::binary("msctl"))
        .args(["--json", "--root"])
        .arg(&p.root)
        .arg("watch")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/examples/milestones.py");
    let py_watch = Command::new("python3")
        .arg(&python)
        .arg("--root")
        .arg(&p.root)
        .args(["watch", "--count", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Both are subscribed once a change made now reaches them: give them
    // time to connect (a loaded machine starts Python slowly).
    std::thread::sleep(Duration::from_millis(1000));
    let id = p.msctl(&["create", "--title", "By request"]).ok().trim().to_owned();
    p.write(".milestones/active/by-hand.yaml", "title: By hand\nstatus: planning\n");

    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    watch.kill().unwrap();
    let _ = watch.wait();
    assert_eq!(
        (first["kind"].as_str(), first["id"].as_str(), first["source"].as_str()),
        (Some("Created"), Some(id.as_str()), Some("Request"))
    );
    assert_eq!(
        (second["kind"].as_str(), second["id"].as_str(), second["source"].as_str()),
        (Some("Created"), Some("by-hand"), Some("OutsideEdit"))
    );
    assert_eq!(second["file"], ".milestones/active/by-hand.yaml");

    // Never hang the suite: a client that missed the events is a failure.
    let pid = py_watch.id() as i32;
    let (finished, watch_over) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watch_over.recv_timeout(Duration::from_secs(30)).is_err() {
            // Still running (this thread's owner is blocked reaping it).
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let out = py_watch.wait_with_output().unwrap();
    let _ = finished.send(());
    let _ = watchdog.join();
    assert!(out.status.success());
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["Event"]["id"], id.as_str());
    assert_eq!(events[1]["Event"]["source"], "OutsideEdit");
}

#[test]
fn the_python_client_speaks_json_to_the_real_daemon() {
    let p = Project::new();
    let _d = p.start(&[]);
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/examples/milestones.py");
    let run =
        |args: &[&str]| Command::new("python3").arg(&python).arg("--root").arg(&p.root).args(args).output().unwrap();
    let pong = run(&["ping"]);
    assert!(pong.status.success(), "{pong:?}");
    assert!(String::from_utf8_lossy(&pong.stdout).contains("\"Pong\""));
    let created: Value = serde_json::from_slice(&run(&["create", "Made in Python"]).stdout).unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("ms-"), "{created}");
    assert_eq!(created["status"], "planning");
    let listed: Value = serde_json::from_slice(&run(&["list", "--status", "planning"]).stdout).unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(p.msctl(&["get", id, "--json"]).json()["title"], "Made in Python");
    let missing = run(&["get", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("milestone `nope` does not exist"));
}

#[test]
fn a_stalled_subscriber_lags_without_holding_up_the_daemon() {
    let p = Project::new();
    let d = p.start(&[]);
    let mut stalled = d.client();
    stalled.subscribe(EventFilter::default()).unwrap();
    // Thousands of changes at once (a checkout), far more than the
    // subscriber's queue and socket buffer hold, while it reads nothing.
    for i in 0..6000 {
        std::fs::write(
            p.milestones().join(format!("active/bulk-{i:05}.yaml")),
            format!("title: Bulk {i}\nlong: {}\n", "x".repeat(200)),
        )
        .unwrap();
    }
    let mut other = d.client();
    eventually(
        "all changes are taken in",
        || matches!(other.request(Request::Backend), Ok(milestones_e2e::protocol::Response::Backend(b)) if b.milestones == 6000),
    );
    // Others were served meanwhile (above); the stalled one learns it lagged.
    let mut lagged = None;
    for _ in 0..7000 {
        match stalled.next_event().unwrap() {
            ServerMessage::Lagged { missed } => {
                lagged = Some(missed);
                break;
            }
            ServerMessage::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(lagged.is_some_and(|m| m > 0), "no Lagged notice");
}

#[test]
fn a_hand_written_file_keeps_its_comments_and_key_order_through_daemon_edits() {
    for backend in ["file", "hybrid"] {
        let p = Project::on_backend(backend);
        let original = "\
# Release 2.0 -- owned by the platform team
id: release-2
title: \"Release 2.0\"   # keep the quotes

# dates are set by hand
created_at: '2026-10-01T00:00:00Z'
status: planning
priority: high
tasks:
  # in the order we will do them
  - id: build
    title: Build the artefacts
    status: pending
  - id: ship
    title: Ship it
    status: pending
    depends_on: [build]
progress:
  percentage: 0   # derived by milestoned
custom_notes: |
  Free text the daemon knows nothing about.
owner: platform
";
        p.write(".milestones/active/release-2.yaml", original);
        let _d = p.start(&[]);
        p.msctl(&["update", "release-2", "--set", "owner=infra"]).ok();
        p.msctl(&["task", "done", "release-2", "build"]).ok();
        let text = std::fs::read_to_string(p.milestones().join("active/release-2.yaml")).unwrap();
        for kept in [
            "# Release 2.0 -- owned by the platform team\n",
            "title: \"Release 2.0\"   # keep the quotes\n",
            "\n# dates are set by hand\n",
            "  # in the order we will do them\n",
            "# derived by milestoned",
            "custom_notes: |\n  Free text the daemon knows nothing about.\n",
        ] {
            assert!(text.contains(kept), "{backend}: lost {kept:?}:\n{text}");
        }
        let order: Vec<usize> =
            ["id:", "title:", "created_at:", "status:", "priority:", "tasks:", "progress:", "custom_notes:", "owner:"]
                .iter()
                .map(|k| text.find(&format!("\n{k}")).or_else(|| text.find(k)).unwrap())
                .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{backend}: key order changed:\n{text}");
        let doc = p.msctl(&["get", "release-2", "--json"]).json();
        assert_eq!(doc["owner"], "infra");
        assert_eq!(doc["tasks"][0]["status"], "completed");
        assert_eq!(doc["progress"]["percentage"], 50);
        // A status change moves the file and still keeps its comments.
        p.msctl(&["complete", "release-2"]).ok();
        let moved = std::fs::read_to_string(p.milestones().join("completed/release-2.yaml")).unwrap();
        assert!(
            moved.contains("# keep the quotes") && moved.contains("# derived by milestoned"),
            "{backend}:\n{moved}"
        );
        assert!(!p.milestones().join("active/release-2.yaml").exists());
    }
}

#[test]
fn with_polling_edits_are_still_seen_and_health_says_how() {
    let p = Project::new();
    p.write(".milestones/config/storage-config.yaml", "storage:\n  watcher: \"poll\"\n");
    let _d = p.start(&[]);
    p.write(".milestones/active/polled.yaml", "title: Seen by a scan\nstatus: planning\n");
    eventually("the scan takes the file in", || title(&p, "polled").as_deref() == Some("Seen by a scan"));
    let health = p.msctl(&["health", "--json"]).json();
    assert_eq!(health["healthy"], true);
    assert!(health["watching"].as_str().unwrap().starts_with("scanning every 2 s"), "{health}");
    assert!(health["recommendations"][0].as_str().unwrap().contains("inotify"), "{health}");
    // A broken file makes the project unhealthy, and health names it.
    p.write(".milestones/active/polled.yaml", "title: [unclosed\n");
    eventually("the broken file is reported", || p.msctl(&["health"]).code == 5);
    let report = p.msctl(&["health"]).stdout;
    assert!(
        report.contains(".milestones/active/polled.yaml") && report.contains("fix or remove the 1 file(s)"),
        "{report}"
    );
}

#[test]
fn on_the_database_backend_files_dropped_in_while_no_daemon_ran_are_imported_at_start() {
    let p = Project::on_backend("database");
    p.write(".milestones/active/while-down.yaml", "title: Written while no daemon ran\nstatus: planning\n");
    let _d = p.start(&[]);
    eventually("the file is imported", || title(&p, "while-down").as_deref() == Some("Written while no daemon ran"));
    eventually("and then removed", || !p.milestones().join("active/while-down.yaml").exists());
    assert_eq!(p.sqlite3("enterprise.db", "SELECT id FROM milestones"), "while-down\n");
}

#[test]
fn a_folder_removed_and_created_again_is_still_watched() {
    let p = Project::new();
    let _d = p.start(&[]);
    p.msctl(&["create", "--title", "Done one", "--id", "done"]).ok();
    p.msctl(&["complete", "done"]).ok();
    // A checkout of a branch without completed milestones removes the folder.
    std::fs::remove_dir_all(p.milestones().join("completed")).unwrap();
    eventually("the removal is seen", || title(&p, "done").is_none());
    std::fs::create_dir_all(p.milestones().join("completed")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    p.write(".milestones/completed/back.yaml", "title: Back again\nstatus: completed\n");
    eventually("a file in the new folder is seen", || title(&p, "back").as_deref() == Some("Back again"));
    // And the daemon can write there again.
    p.msctl(&["create", "--title", "Another", "--id", "another"]).ok();
    p.msctl(&["complete", "another"]).ok();
    assert!(p.milestones().join("completed/another.yaml").is_file());
}
