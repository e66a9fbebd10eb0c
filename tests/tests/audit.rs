//! The audit trail (seed 000's `compliance.audit`): who did what, and with
//! `storage.audit.immutable_logs`, a hash chain in which `msctl audit
//! verify` finds any entry edited, removed, reordered or added, and names it.

use milestones_e2e::Project;
use serde_json::Value;

fn sealed_project() -> Project {
    let p = Project::new();
    p.write(".milestones/config/storage-config.yaml", "storage:\n  audit:\n    immutable_logs: true\n");
    p
}

fn log_lines(p: &Project) -> Vec<String> {
    let log = std::fs::read_to_string(p.milestones().join("logs/storage-events.jsonl")).unwrap();
    log.lines().map(str::to_owned).collect()
}

fn write_log(p: &Project, lines: &[String]) {
    std::fs::write(p.milestones().join("logs/storage-events.jsonl"), lines.join("\n") + "\n").unwrap();
}

/// `msctl audit verify` with its exit code and the problems it names.
fn verify(p: &Project) -> (i32, Vec<String>) {
    let run = p.msctl(&["audit", "verify", "--json"]);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    let problems = report["problems"].as_array().unwrap().iter().map(|p| p["message"].as_str().unwrap().to_owned());
    (run.code, problems.collect())
}

#[test]
fn a_sealed_log_names_every_entry_edited_removed_reordered_or_cut_off() {
    let p = sealed_project();
    let d = p.start(&[]);
    p.msctl(&["create", "--title", "Alpha", "--id", "alpha"]).ok();
    p.msctl(&["create", "--title", "Bravo", "--id", "bravo"]).ok();
    p.msctl(&["update", "alpha", "--set", "owner=ann"]).ok();
    p.msctl(&["task", "add", "bravo", "--title", "first"]).ok();
    p.msctl(&["complete", "alpha"]).ok();
    let intact = log_lines(&p);
    assert!(intact.len() >= 5, "{intact:?}");
    // Who did what: every entry names its user.
    for line in &intact {
        let entry: Value = serde_json::from_str(line).unwrap();
        assert!(entry["user"].as_str().is_some_and(|u| !u.is_empty()), "{line}");
        assert!(entry["seq"].is_u64() && entry["chain"].is_string(), "{line}");
    }
    assert_eq!(verify(&p), (0, vec![]));
    let human = p.msctl(&["audit", "verify"]);
    assert!(human.stdout.contains("intact"), "{human:?}");

    // Edited: one entry's user changed.
    let mut edited = intact.clone();
    edited[2] = edited[2].replace("\"user\":\"", "\"user\":\"mallory-");
    write_log(&p, &edited);
    let (code, problems) = verify(&p);
    assert_eq!(code, 5);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("line 3 (entry 3") && problems[0].contains("was edited"), "{problems:?}");

    // Removed from the middle.
    let mut removed = intact.clone();
    removed.remove(1);
    write_log(&p, &removed);
    let (code, problems) = verify(&p);
    assert_eq!(code, 5);
    assert!(problems.iter().any(|m| m.contains("entry 2 is missing")), "{problems:?}");

    // Reordered.
    let mut reordered = intact.clone();
    reordered.swap(1, 3);
    write_log(&p, &reordered);
    let (code, problems) = verify(&p);
    assert_eq!(code, 5);
    assert!(problems.iter().any(|m| m.contains("out of order")), "{problems:?}");

    // Added by another program.
    let mut added = intact.clone();
    added
        .insert(2, r#"{"timestamp":"2026-01-01T00:00:00Z","event":"milestone_deleted","milestone_id":"alpha"}"#.into());
    write_log(&p, &added);
    let (code, problems) = verify(&p);
    assert_eq!(code, 5);
    assert!(problems.iter().any(|m| m.contains("line 3 is not sealed")), "{problems:?}");

    // The last entries cut off, found even after a restart.
    write_log(&p, &intact[..intact.len() - 2]);
    drop(d);
    let _d = p.start(&[]);
    let (code, problems) = verify(&p);
    assert_eq!(code, 5);
    assert!(problems.iter().any(|m| m.contains("at the end of the log are missing")), "{problems:?}");

    // Put back, the chain goes on across the restart.
    write_log(&p, &intact);
    p.msctl(&["update", "bravo", "--set", "owner=bob"]).ok();
    assert_eq!(verify(&p), (0, vec![]));
    let last: Value = serde_json::from_str(log_lines(&p).last().unwrap()).unwrap();
    assert_eq!(last["seq"].as_u64(), Some(intact.len() as u64 + 1));
}

#[test]
fn without_immutable_logs_nothing_is_sealed_and_verify_says_so() {
    let p = Project::new();
    let _d = p.start(&[]);
    p.msctl(&["create", "--title", "Plain"]).ok();
    let run = p.msctl(&["audit", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("not sealed"), "{run:?}");
    assert!(log_lines(&p).iter().all(|l| !l.contains("\"chain\"")));
}
