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
        let said: Vec<&str> =
            health["problems"].as_array().unwrap().iter().filter_map(|p| p["message"].as_str()).collect();
        assert!(
            said.iter().any(|m| m.contains("was in both active/ and completed/") && m.contains("backups/duplicates/")),
            "{backend}: {health}"
        );
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
