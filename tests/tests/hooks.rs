//! Hooks (issue: integrations): command lines `storage-config.yaml` names
//! for events run with the event as JSON on their input, in the project
//! root, off the request path: one that succeeds, one that hangs past its
//! time, one that fails.

use std::time::{Duration, Instant};

use milestones_e2e::{eventually, Project};
use serde_json::Value;

const CONFIG: &str = r#"storage:
  hooks:
    timeout_seconds: 1
    created: ["cat > created.json"]
    status_changed: ["sleep 30", "cat >> changes.jsonl; echo >> changes.jsonl"]
    completed: ["cat > completed.json"]
    deleted: ["echo 'no one listens' >&2; exit 3"]
"#;

#[test]
fn hooks_run_on_events_and_never_hold_a_request() {
    let p = Project::new();
    p.write(".milestones/config/storage-config.yaml", CONFIG);
    let _d = p.start(&[]);

    p.msctl(&["create", "--title", "Hooked", "--id", "hooked"]).ok();
    let event = written_json(&p.root.join("created.json"), "the created hook ran in the project root");
    assert_eq!((event["event"].as_str(), event["id"].as_str()), (Some("created"), Some("hooked")), "{event}");
    assert_eq!(event["status"], "planning");
    assert_eq!(event["root"], p.root.to_str().unwrap());

    // The first status_changed hook hangs for 30 s; the request does not
    // wait for it, and the hook is killed after its second.
    let asked = Instant::now();
    p.msctl(&["complete", "hooked"]).ok();
    assert!(asked.elapsed() < Duration::from_secs(10), "a request waited on a hook");
    let event = written_json(&p.root.join("completed.json"), "the completed hook ran");
    assert_eq!((event["status"].as_str(), event["previous_status"].as_str()), (Some("completed"), Some("planning")));
    let changes = std::fs::read_to_string(p.root.join("changes.jsonl")).unwrap();
    assert!(changes.contains("\"event\":\"status_changed\""), "the next hook ran after the hung one: {changes}");

    // An update that leaves the status alone is no status change.
    p.msctl(&["update", "hooked", "--set", "owner=ann"]).ok();
    p.msctl(&["delete", "hooked", "--purge"]).ok();
    eventually("health shows the failing and the hung hook", Duration::from_secs(15), || {
        let health = p.msctl(&["health"]);
        health.stdout.contains("the hook `echo 'no one listens' >&2; exit 3` failed")
            && health.stdout.contains("exit status: 3")
            && health.stdout.contains("no one listens")
            && health.stdout.contains("the hook `sleep 30` failed")
            && health.stdout.contains("killed after running past its 1 s")
    });
    let changes = std::fs::read_to_string(p.root.join("changes.jsonl")).unwrap();
    assert_eq!(changes.lines().filter(|l| !l.is_empty()).count(), 1, "{changes}");
    // Warnings, not errors: the daemon itself is healthy.
    assert_eq!(p.msctl(&["health"]).code, 0);
}

/// The JSON a hook wrote to `path`, once it is all there (the shell creates
/// the file before `cat` fills it).
fn written_json(path: &std::path::Path, what: &str) -> Value {
    let read = || std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
    eventually(what, Duration::from_secs(15), || read().is_some());
    read().unwrap()
}
