//! Every msctl command against a real daemon: what people see, what scripts
//! get, and the exit codes of DESIGN §8.

use milestones_e2e::{fixture, Project};
use serde_json::{json, Value};

fn project() -> (Project, milestones_e2e::Daemon) {
    let p = Project::new();
    let d = p.start(&[]);
    (p, d)
}

#[test]
fn init_starts_a_daemon_and_is_idempotent() {
    let p = Project::new();
    let first = p.msctl(&["init", "--json"]).json();
    assert_eq!(first["started"], true);
    assert_eq!(first["backend"], "file");
    assert!(p.milestones().join("active").is_dir());
    let again = p.msctl(&["init", "--json"]).json();
    assert_eq!(again["started"], false);
    assert_eq!(again["pid"], first["pid"]);
    let pid = first["pid"].as_i64().unwrap() as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

#[test]
fn create_get_list_update_delete_complete() {
    let (p, _d) = project();
    let alpha =
        p.msctl(&["create", "--title", "Alpha", "--priority", "high", "--category", "feature"]).ok().trim().to_owned();
    // A generated id: the project's prefix and a short random suffix.
    assert!(alpha.starts_with("ms-") && alpha.len() == 8, "{alpha}");
    assert!(alpha[3..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{alpha}");
    let beta = p.msctl(&["create", "--title", "Beta", "--id", "beta", "--description", "second", "--json"]).json();
    assert_eq!(beta["id"], "beta");
    assert_eq!(beta["status"], "planning");
    assert_eq!(beta["priority"], "medium");
    assert!(p.milestones().join("active/beta.yaml").is_file());

    let yaml = p.msctl(&["get", &alpha]).ok().to_owned();
    assert!(yaml.starts_with(&format!("id: {alpha}\ntitle: Alpha\n")), "{yaml}");

    // list: newest first, filters, sort, limit/offset.
    let gamma = p.msctl(&["create", "--title", "Gamma", "--priority", "critical"]).ok().trim().to_owned();
    assert_ne!(gamma, alpha);
    let all = p.msctl(&["list", "--json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let high = p.msctl(&["list", "--priority", "high", "--json"]).json();
    assert_eq!(ids(&high), [alpha.as_str()]);
    let by_rank = p.msctl(&["list", "--sort", "-priority", "--json"]).json();
    assert_eq!(ids(&by_rank), [gamma.as_str(), alpha.as_str(), "beta"]);
    let page = p.msctl(&["list", "--sort", "title", "--limit", "1", "--offset", "1", "--json"]).json();
    assert_eq!(ids(&page), ["beta"]);
    let table = p.msctl(&["list"]).ok().to_owned();
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(table.contains("Gamma"));

    // update: dotted paths, values read as YAML scalars.
    let updated = p
        .msctl(&[
            "update",
            "beta",
            "--set",
            "progress.percentage=40",
            "--set",
            "flags.ready=true",
            "--set",
            "note=hello world",
            "--json",
        ])
        .json();
    assert_eq!(updated["progress"]["percentage"], 40);
    assert_eq!(updated["flags"]["ready"], true);
    assert_eq!(updated["note"], "hello world");
    p.msctl(&["update", "beta", "--set", "id=other"]).fails(4, "id cannot be changed");
    p.msctl(&["update", "beta", "--set", "status=sleeping"]).fails(4, "status must be one of");

    // A status move moves the file.
    p.msctl(&["update", "beta", "--set", "status=cancelled"]).ok();
    assert!(p.milestones().join("completed/beta.yaml").is_file());
    assert!(!p.milestones().join("active/beta.yaml").exists());

    let done = p.msctl(&["complete", &alpha, "--json"]).json();
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].is_string());
    assert!(p.milestones().join(format!("completed/{alpha}.yaml")).is_file());

    // delete archives; list hides archived unless asked.
    p.msctl(&["delete", &gamma]).ok();
    let archived = p.milestones().join(format!("completed/{gamma}.yaml"));
    assert!(archived.is_file());
    assert!(!ids(&p.msctl(&["list", "--json"]).json()).contains(&gamma));
    assert!(ids(&p.msctl(&["list", "--all", "--json"]).json()).contains(&gamma));
    assert_eq!(ids(&p.msctl(&["list", "--status", "archived", "--json"]).json()), [gamma.as_str()]);
    p.msctl(&["delete", &gamma, "--purge"]).ok();
    assert!(!archived.exists());
    p.msctl(&["get", &gamma]).fails(3, "does not exist");
    p.msctl(&["delete", "nope"]).fails(3, "does not exist");
    p.msctl(&["complete", "nope"]).fails(3, "does not exist");
    p.msctl(&["update", "nope", "--set", "a=1"]).fails(3, "does not exist");
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn hostile_ids_are_refused_before_touching_the_disk() {
    let (p, _d) = project();
    let long = "x".repeat(300);
    for bad in ["../x", "a/b", "", long.as_str(), ".hidden"] {
        p.msctl(&["create", "--title", "t", "--id", bad]).fails(4, "invalid id");
        p.msctl(&["get", bad]).fails(4, "invalid id");
    }
    let entries: Vec<_> = std::fs::read_dir(p.milestones().join("active")).unwrap().collect();
    assert!(entries.is_empty());
    assert!(!p.milestones().join("x.yaml").exists() && !p.root.join("x.yaml").exists());
    p.msctl(&["ping"]).ok();
}

#[test]
fn malformed_input_gets_clear_errors() {
    let (p, _d) = project();
    let bad = p.write("bad.yaml", "title: [unclosed\nstatus: planning\n");
    let run = p.msctl(&["create", "--from-file", bad.to_str().unwrap()]);
    run.fails(4, "invalid YAML");
    assert!(run.stderr.contains("line"), "{run:?}");
    let list = p.write("list.yaml", "- just\n- a list\n");
    p.msctl(&["create", "--from-file", list.to_str().unwrap()]).fails(4, "must be a YAML mapping");
    let bomb = p.write(
        "bomb.yaml",
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\ntitle: boom\n",
    );
    p.msctl(&["create", "--from-file", bomb.to_str().unwrap()]).fails(4, "invalid YAML");
    let deep = p.write("deep.yaml", &format!("title: deep\nx: {}1{}\n", "[".repeat(10_000), "]".repeat(10_000)));
    p.msctl(&["create", "--from-file", deep.to_str().unwrap()]).fails(4, "invalid YAML");
    p.msctl(&["create", "--title", "t", "--priority", "urgent"]).fails(4, "priority must be one of");
    p.msctl(&["create", "--title", "  "]).fails(4, "needs a title");
    p.msctl(&["update", "x", "--set", "novalue"]).fails(2, "is not PATH=VALUE");
    p.msctl(&["list", "--where", "bad path=1"]).fails(4, "is not a field path");
    p.msctl(&["create", "--title", "dup", "--id", "dup"]).ok();
    p.msctl(&["create", "--title", "dup", "--id", "dup"]).fails(4, "already exists");
    assert_eq!(p.msctl(&["list", "--json"]).json().as_array().unwrap().len(), 1);
}

#[test]
fn the_seed_documents_round_trip_value_for_value() {
    let (p, _d) = project();
    for name in ["seed-000-example.yaml", "seed-000-template.yaml"] {
        let text = fixture(name);
        let text = format!("{text}\nunknown_top: {{nested: [1, 2.5, true, null, \"x\"]}}\nx-vendor-field: kept\n");
        let written: Value = serde_norway::from_str(&text).unwrap();
        let file = p.write(name, &text);
        let created = p.msctl(&["create", "--from-file", file.to_str().unwrap(), "--json"]).json();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_subset(&written, &created, "");

        // get, list and an unrelated update keep every value.
        assert_subset(&written, &p.msctl(&["get", &id, "--json"]).json(), "");
        let listed = p.msctl(&["list", "--all", "--json"]).json();
        let listed = listed.as_array().unwrap().iter().find(|m| m["id"] == id.as_str()).unwrap().clone();
        assert_subset(&written, &listed, "");
        let updated = p.msctl(&["update", &id, "--set", "category=research", "--json"]).json();
        let mut expected = written.clone();
        expected["category"] = json!("research");
        assert_subset(&expected, &updated, "");
        // And the file on disk, read back by a YAML parser, holds them too.
        let on_disk: Value =
            serde_norway::from_str(&std::fs::read_to_string(p.milestones().join(format!("active/{id}.yaml"))).unwrap())
                .unwrap();
        assert_subset(&expected, &on_disk, "");
        // A whole-document replace round-trips as well.
        let replaced = p.msctl(&["update", &id, "--from-file", file.to_str().unwrap(), "--json"]).json();
        assert_subset(&written, &replaced, "");
    }
}

/// Every value in `expected` is in `actual`, equal, at the same path.
fn assert_subset(expected: &Value, actual: &Value, path: &str) {
    match expected {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                assert!(actual.get(k).is_some(), "{here} was lost");
                assert_subset(v, &actual[k], &here);
            }
        }
        other => assert_eq!(other, actual, "{path} changed"),
    }
}

#[test]
fn tasks_drive_progress_and_respect_their_order() {
    let (p, _d) = project();
    p.msctl(&["create", "--title", "With tasks", "--id", "m"]).ok();
    p.msctl(&["task", "add", "m", "--title", "design"]).ok();
    p.msctl(&["task", "add", "m", "--title", "build", "--depends-on", "task-1"]).ok();
    p.msctl(&["task", "add", "m", "--title", "x", "--depends-on", "task-9"]).fails(4, "task `task-9` does not exist");
    p.msctl(&["task", "done", "m", "task-2"]).fails(4, "waits for `task-1`");
    let started = p.msctl(&["task", "start", "m", "task-1", "--json"]).json();
    assert_eq!(started["status"], "in_progress", "starting a task starts the milestone");
    let half = p.msctl(&["task", "done", "m", "task-1", "--json"]).json();
    assert_eq!(
        half["progress"],
        json!({"percentage": 50, "tasks_completed": 1, "total_tasks": 2, "last_update": half["progress"]["last_update"]})
    );
    assert!(half["tasks"][0]["completed_at"].is_string());
    let full = p.msctl(&["task", "done", "m", "task-2", "--json"]).json();
    assert_eq!(full["progress"]["percentage"], 100);
    p.msctl(&["task", "done", "m", "task-7"]).fails(3, "has no task `task-7`");
    p.msctl(&["task", "start", "nope", "task-1"]).fails(3, "does not exist");
}

/// What a request stores always passes `validate`: tasks brought inside a
/// create or a replacement get ids and a status, and a replacement gets
/// the defaults a new milestone gets.
#[test]
fn tasks_inside_a_document_get_ids_and_a_replacement_gets_the_defaults() {
    let (p, _d) = project();
    let new = p.write(
        "new.yaml",
        "id: listed\ntitle: With listed tasks\ntasks:\n  - title: first\n  - id: task-2\n    title: second\n    status: completed\n  - title: third\n",
    );
    let created = p.msctl(&["create", "--from-file", new.to_str().unwrap(), "--json"]).json();
    let tasks: Vec<(&str, &str)> = created["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap_or("-"), t["status"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(tasks, [("task-1", "pending"), ("task-2", "completed"), ("task-3", "pending")]);
    assert_eq!(created["progress"]["total_tasks"], 3);

    let replacement = p.write("replacement.yaml", "title: Replaced\ntasks:\n  - title: only\n");
    let replaced = p.msctl(&["update", "listed", "--from-file", replacement.to_str().unwrap(), "--json"]).json();
    assert_eq!((replaced["status"].as_str(), replaced["priority"].as_str()), (Some("planning"), Some("medium")));
    assert_eq!(replaced["created_at"], created["created_at"], "the creation time is kept");
    assert_eq!(replaced["tasks"][0]["id"], "task-1");
    p.msctl(&["update", "listed", "--set", "tasks=[{title: via set}]"]).ok();
    assert_eq!(p.msctl(&["get", "listed", "--json"]).json()["tasks"][0]["id"], "task-1");
    let report = p.msctl(&["validate", "--all"]);
    assert_eq!(report.code, 0, "{report:?}");
}

#[test]
fn dependency_cycles_are_refused_and_the_graph_is_reported() {
    let (p, _d) = project();
    p.msctl(&["create", "--title", "a", "--id", "a"]).ok();
    p.msctl(&["create", "--title", "b", "--id", "b", "--requires", "a"]).ok();
    p.msctl(&["create", "--title", "c", "--id", "c", "--requires", "b"]).ok();
    p.msctl(&["update", "a", "--set", "dependencies.requires=[c]"]).fails(4, "cycle: a -> c -> b -> a");
    p.msctl(&["create", "--title", "d", "--id", "d", "--requires", "d"]).fails(4, "cycle");
    let report = p.msctl(&["deps", "--json"]).json();
    assert_eq!(report["critical_path"], json!(["a", "b", "c"]));
    assert_eq!(report["cycles"], json!([]));
    // One milestone's part: the edges among it and its neighbours only.
    p.msctl(&["create", "--title", "f", "--id", "f"]).ok();
    p.msctl(&["create", "--title", "g", "--id", "g", "--requires", "f"]).ok();
    assert_eq!(p.msctl(&["deps", "--json"]).json()["edges"].as_array().map(Vec::len), Some(3));
    let focus = p.msctl(&["deps", "b", "--json"]).json();
    assert_eq!(focus["focus"]["requires"], json!(["a"]));
    assert_eq!(focus["focus"]["required_by"], json!(["c"]));
    assert_eq!(focus["edges"], json!([{"from": "b", "to": "a"}, {"from": "c", "to": "b"}]));
    assert_eq!(focus["critical_path"], json!(["a", "b", "c"]), "the whole graph's");
    assert!(p.msctl(&["deps"]).ok().contains("critical path: a -> b -> c"));
    p.msctl(&["deps", "--check"]).ok();

    // A dependency on a missing milestone (hand-written) is found.
    p.msctl(&["create", "--title", "e", "--id", "e", "--requires", "ghost"]).ok();
    assert_eq!(p.msctl(&["deps", "--check"]).code, 5);
    assert_eq!(p.msctl(&["deps", "e", "--json"]).json()["missing"], json!([{"from": "e", "to": "ghost"}]));
    assert_eq!(p.msctl(&["deps", "b", "--json"]).json()["missing"], json!([]));
    let v = p.msctl(&["validate", "e", "--json"]);
    assert_eq!(v.code, 5);
    assert!(v.stdout.contains("requires milestone `ghost`, which does not exist"), "{v:?}");
}

#[test]
fn validate_and_upgrade_follow_seed_000() {
    let p = Project::new();
    p.write(".milestones/active/old.yaml", "id: old\ntitle: Old milestone\nstatus: planning\n# a comment\nlegacy: 1\n");
    p.write(".milestones/active/broken.yaml", "id: broken\ntitle: [oops\n");
    p.write(
        ".milestones/active/odd.yaml",
        "id: odd\ntitle: Odd\nstatus: planning\nstorage:\n  backend: {current: tape}\n  scale_monitoring: {thresholds: {file_size_mb: 0}}\n",
    );
    let _d = p.start(&[]);
    let report = p.msctl(&["validate", "--all"]);
    assert_eq!(report.code, 5, "{report:?}");
    assert!(report.stdout.contains(".milestones/active/broken.yaml"), "{report:?}");
    assert!(report.stdout.contains("line 2"), "{report:?}");
    assert!(report.stdout.contains("unknown storage backend"), "{report:?}");
    assert!(report.stdout.contains("file size threshold too low: 0 MB"), "{report:?}");
    // The broken file is left exactly as written.
    assert_eq!(
        std::fs::read_to_string(p.milestones().join("active/broken.yaml")).unwrap(),
        "id: broken\ntitle: [oops\n"
    );
    p.msctl(&["validate", "old"]).ok();

    let before = p.msctl(&["get", "old", "--json"]).json();
    let up = p.msctl(&["upgrade", "old", "--json"]).json();
    assert_eq!(up[0]["added"].as_array().unwrap().len(), 8);
    let after = p.msctl(&["get", "old", "--json"]).json();
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(&after[k], v, "upgrade changed {k}");
    }
    assert_eq!(after["storage"]["backend"]["preferred"], "auto");
    assert_eq!(after["migration"]["constraints"]["migration_window_hours"], json!([2, 6]));
    assert!(p.msctl(&["upgrade", "old"]).ok().contains("already has every enhanced section"));
    p.msctl(&["upgrade"]).fails(2, "exactly one of ID or --all");
}

#[test]
fn search_stats_backend_ping_version() {
    let (p, _d) = project();
    p.msctl(&["create", "--title", "Parser rewrite", "--id", "p1", "--description", "Faster YAML loading"]).ok();
    p.msctl(&["create", "--title", "Docs", "--id", "d1", "--requires", "p1"]).ok();
    p.msctl(&["task", "add", "d1", "--title", "write the parser guide"]).ok();
    assert_eq!(ids(&p.msctl(&["search", "yaml", "--json"]).json()), ["p1"]);
    assert_eq!(ids(&p.msctl(&["search", "PARSER", "--json"]).json()), ["d1", "p1"]);
    assert_eq!(ids(&p.msctl(&["search", "--json", "it's", "--", "\"; DROP"]).json()), Vec::<String>::new());
    p.msctl(&["complete", "p1"]).ok();

    let stats = p.msctl(&["stats", "--json"]).json();
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["completed"], 1);
    assert_eq!(stats["dependencies"]["total"], 1);
    assert_eq!(stats["dependencies"]["longest_chain"], 2);
    assert_eq!(stats["tasks_total"], 1);
    assert_eq!(stats["per_day"].as_array().unwrap().len(), 30);
    assert_eq!(stats["per_day"][29]["created"], 2);
    assert!(p.msctl(&["stats"]).ok().contains("milestones:    2 (1 completed)"));

    let backend = p.msctl(&["backend", "--json"]).json();
    assert_eq!(backend["backend"], "file");
    assert_eq!(backend["milestones"], 2);
    assert!(p.msctl(&["ping"]).ok().starts_with("pong from milestoned"));
    let version = p.msctl(&["version", "--json"]).json();
    assert_eq!(version["msctl"], version["daemon"]["version"]);
}

#[test]
fn the_event_log_names_the_operation_and_the_user() {
    let (p, _d) = project();
    p.msctl(&["create", "--title", "logged", "--id", "logged"]).ok();
    p.msctl(&["update", "logged", "--set", "priority=low"]).ok();
    let log = std::fs::read_to_string(p.milestones().join("logs/storage-events.jsonl")).unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event"], "milestone_created");
    assert_eq!(lines[1]["event"], "milestone_updated");
    assert_eq!(lines[1]["milestone_id"], "logged");
    assert_eq!(lines[1]["backend"], "file");
    let me = std::env::var("USER").unwrap_or_else(|_| "root".into());
    assert_eq!(lines[1]["user"], me.as_str());
}

#[test]
fn concurrent_creates_and_updates_lose_nothing() {
    let (p, d) = project();
    let socket = d.socket.clone();
    let threads: Vec<_> = (0..24)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                use milestones_e2e::protocol::*;
                let mut c = milestones_client::Client::connect(&socket, "e2e").unwrap();
                let mut doc = Map::new();
                doc.insert("title", Value::from(format!("concurrent {i}")));
                let created =
                    match c.request(Request::Create { input: DocumentInput::Fields(Value::Map(doc)) }).unwrap() {
                        Response::Document(d) => d,
                        other => panic!("{other:?}"),
                    };
                let id = created.pointer("id").and_then(Value::as_str).unwrap().to_owned();
                let change = Change::Set(vec![Assignment { path: "worker".into(), value: Value::Int(i) }]);
                c.request(Request::Update { id: id.clone(), change }).unwrap();
                id
            })
        })
        .collect();
    let mut ids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 24, "generated ids collided");
    let list = p.msctl(&["list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 24);
    let mut workers: Vec<i64> = list.as_array().unwrap().iter().map(|m| m["worker"].as_i64().unwrap()).collect();
    workers.sort();
    assert_eq!(workers, (0..24).collect::<Vec<_>>());
    assert_eq!(std::fs::read_dir(p.milestones().join("active")).unwrap().count(), 24);
}

#[test]
fn output_cut_short_by_a_closed_pipe_ends_msctl_quietly() {
    let p = Project::new();
    milestones_e2e::corpus::generate(&p, 600);
    let _d = p.start(&[]);
    // `msctl list --json | head -c 1`: the reader goes away long before
    // the listing (well over a pipe's 64 KiB) is written.
    let mut child = std::process::Command::new(milestones_e2e::binary("msctl"))
        .env("MSCTL_NO_AUTOSTART", "1")
        .args(["--root", p.root.to_str().unwrap(), "--json", "list", "--limit", "600"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "msctl panicked on the broken pipe: {stderr}");
    assert!(stderr.is_empty(), "nothing to say about a reader that left: {stderr}");
}
