//! Milestones in a git repository (issue: working in a team with git): the
//! work tree stays clean but for the milestone files a command changed,
//! ids made in two clones never meet, the merge driver merges milestone
//! files field by field through real `git merge` and `git rebase`, and
//! the daemon serves what git leaves on disk after its own moves.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use milestones_e2e::{eventually, Daemon, Project};
use serde_json::Value;

fn status(p: &Project) -> Vec<String> {
    p.git(&["status", "--porcelain", "--untracked-files=all"]).lines().map(str::to_owned).collect()
}

#[test]
fn the_work_tree_shows_only_the_milestone_files_a_command_changed() {
    let p = Project::new();
    p.git(&["init", "-q"]);
    let init = p.msctl_autostart(&["init"]);
    assert!(init.stderr.contains("`msctl git setup` registers the merge driver"), "{init:?}");
    p.git(&["add", "-A"]);
    p.git(&["commit", "-qm", "milestones"]);
    let tracked = p.git(&["ls-files"]);
    assert_eq!(
        tracked.lines().collect::<Vec<_>>(),
        [".milestones/.gitignore", ".milestones/config/storage-config.yaml"],
        "only the team's data is tracked"
    );
    assert_eq!(status(&p), Vec::<String>::new(), "the daemon's socket, lock, pid and log are ignored");

    p.msctl(&["create", "--title", "Tracked", "--id", "tracked"]).ok();
    assert_eq!(status(&p), ["?? .milestones/active/tracked.yaml"]);
    p.git(&["add", "-A"]);
    p.git(&["commit", "-qm", "create"]);

    p.msctl(&["update", "tracked", "--set", "owner=ann"]).ok();
    assert_eq!(status(&p), [" M .milestones/active/tracked.yaml"]);
    p.git(&["commit", "-qam", "update"]);

    for read in [&["get", "tracked"][..], &["list"], &["health"], &["stats"], &["scale"], &["audit", "verify"]] {
        p.msctl(read).ok();
    }
    assert_eq!(status(&p), Vec::<String>::new(), "reads change nothing git tracks");

    // The index, the backup and the backend this clone is on are its own.
    p.msctl(&["migrate", "hybrid"]).ok();
    p.wait_until_no_migration();
    assert!(p.milestones().join("index.db").exists());
    assert_eq!(status(&p), Vec::<String>::new());

    // A .gitignore the user edited is never rewritten.
    let gitignore = p.milestones().join(".gitignore");
    let edited = std::fs::read_to_string(&gitignore).unwrap() + "!/logs/\n";
    std::fs::write(&gitignore, &edited).unwrap();
    p.stop_background_daemon();
    p.msctl_autostart(&["ping"]).ok();
    assert_eq!(std::fs::read_to_string(&gitignore).unwrap(), edited);
    p.stop_background_daemon();
}

/// Lists the daemon grows are written one item per line: after five tasks
/// and two changes of dependencies no line is long, and one more task
/// change is a change of a few lines in `git diff`. A short flow list
/// written by hand and changed in place keeps its style.
#[test]
fn lists_the_daemon_grows_are_diff_friendly() {
    let p = Project::new();
    p.git(&["init", "-q"]);
    let _d = p.start(&[]);
    p.msctl(&["create", "--title", "Diffs", "--id", "diffs"]).ok();
    p.msctl(&["create", "--title", "First", "--id", "first"]).ok();
    p.msctl(&["create", "--title", "Second", "--id", "second"]).ok();
    for i in 1..=5 {
        p.msctl(&["task", "add", "diffs", "--title", &format!("task number {i}, with a title of some length")]).ok();
    }
    p.msctl(&["update", "diffs", "--set", "dependencies.requires=[first]"]).ok();
    p.msctl(&["update", "diffs", "--set", "dependencies.requires=[first, second]"]).ok();
    let path = p.milestones().join("active/diffs.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest <= 100, "a line of {longest} characters:\n{text}");
    p.git(&["add", "-A"]);
    p.git(&["commit", "-qm", "diffs"]);

    p.msctl(&["task", "start", "diffs", "task-3"]).ok();
    let numstat = p.git(&["diff", "--numstat", "--", ".milestones/active/diffs.yaml"]);
    // A line changed in place counts once (git shows it removed and added).
    let touched: u64 = numstat.split_whitespace().take(2).map(|n| n.parse::<u64>().unwrap()).max().unwrap_or(0);
    assert!(touched <= 6, "one task change touched {touched} lines:\n{}", p.git(&["diff"]));

    // Hand-written and short: changed in place, it stays as written.
    std::fs::write(
        p.milestones().join("active/by-hand.yaml"),
        "id: by-hand\ntitle: By hand\nstatus: planning\ntags: [alpha, beta]\n",
    )
    .unwrap();
    milestones_e2e::eventually("the file is taken in", std::time::Duration::from_secs(10), || {
        p.msctl(&["get", "by-hand"]).code == 0
    });
    p.msctl(&["update", "by-hand", "--set", "tags.1=gamma"]).ok();
    let text = std::fs::read_to_string(p.milestones().join("active/by-hand.yaml")).unwrap();
    assert!(text.contains("tags: [alpha, gamma]"), "{text}");
}

/// A git repository on `main` holding a started project with the merge
/// driver registered, everything committed.
fn repository() -> (Project, Daemon) {
    let p = Project::new();
    p.git(&["init", "-q", "-b", "main"]);
    let d = p.start(&[]);
    p.msctl(&["git", "setup"]).ok();
    assert_eq!(
        status(&p),
        ["?? .milestones/.gitattributes", "?? .milestones/.gitignore", "?? .milestones/config/storage-config.yaml"],
        "the merge driver's attributes are the team's, to commit"
    );
    commit_all(&p, "milestones");
    (p, d)
}

fn commit_all(p: &Project, message: &str) {
    p.git(&["add", "-A"]);
    p.git(&["commit", "-qm", message]);
}

/// The file of `id`, in whichever folder it is.
fn file_of(p: &Project, id: &str) -> Option<PathBuf> {
    ["active", "completed"].map(|f| p.milestones().join(f).join(format!("{id}.yaml"))).into_iter().find(|f| f.exists())
}

/// Waits until the daemon serves `id` exactly as its file on disk holds
/// it, or serves none when there is no file: after git changed the work
/// tree, the daemon serves what is there.
#[track_caller]
fn wait_until_served_as_on_disk(p: &Project, id: &str) {
    eventually(&format!("{id} served as on disk"), Duration::from_secs(15), || {
        let served = p.msctl(&["get", id, "--json"]);
        match file_of(p, id) {
            None => served.code == 3,
            Some(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let disk: Option<Value> = serde_norway::from_str(&text).ok();
                served.code == 0 && disk.is_some_and(|d| d == served.json())
            }
        }
    });
}

fn task_titles(doc: &Value) -> Vec<String> {
    doc["tasks"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn two_clones_creating_at_once_merge_without_a_conflict() {
    let (a, _da) = repository();
    let b = Project::new();
    a.git(&["clone", "-q", ".", b.root.to_str().unwrap()]);
    let _db = b.start(&[]);
    b.msctl(&["git", "setup"]).ok();
    assert_eq!(status(&b), Vec::<String>::new(), "a clone set up is clean");

    let create = |p: &Project, who: &str| -> Vec<String> {
        (0..200).map(|i| p.msctl(&["create", "--title", &format!("{who} {i}")]).ok().trim().to_owned()).collect()
    };
    let (mine, theirs) = std::thread::scope(|s| {
        let mine = s.spawn(|| create(&a, "made in a"));
        let theirs = s.spawn(|| create(&b, "made in b"));
        (mine.join().unwrap(), theirs.join().unwrap())
    });
    commit_all(&b, "b's milestones");
    commit_all(&a, "a's milestones");
    let pulled = a.git_run(&["pull", "-q", "--no-rebase", "--no-edit", b.root.to_str().unwrap(), "main"]);
    assert_eq!(pulled.code, 0, "the pull merged cleanly: {pulled:?}");

    let ids: HashSet<&String> = mine.iter().chain(&theirs).collect();
    assert_eq!(ids.len(), 400, "no id was made twice");
    assert!(ids.iter().all(|id| id.starts_with("ms-")));
    let files = std::fs::read_dir(a.milestones().join("active")).unwrap().count();
    assert_eq!(files, 400);
    eventually("a's daemon serves all 400", Duration::from_secs(15), || {
        a.msctl(&["stats", "--json"]).json()["total"] == 400
    });
}

/// Milestone files are merged field by field, `git merge` or `git rebase`
/// alike: a status changed here and a priority there, tasks added on both
/// sides (under the same next id), dependencies added on both sides, in a
/// file written by hand with comments.
fn merges_fields_tasks_and_dependencies(rebase: bool) {
    let (p, _d) = repository();
    for dep in ["alpha", "gamma", "delta"] {
        p.msctl(&["create", "--title", dep, "--id", dep]).ok();
    }
    p.write(
        ".milestones/active/beta.yaml",
        "# The beta release, planned with the team.\nid: beta\ntitle: Beta release\n\
         status: planning   # until the parser lands\npriority: medium\ntasks:\n  - id: task-1\n    \
         title: Parser\n    status: pending\ndependencies:\n  requires:\n    - alpha\n",
    );
    wait_until_served_as_on_disk(&p, "beta");
    commit_all(&p, "beta");

    p.git(&["checkout", "-q", "-b", "feature"]);
    p.msctl(&["task", "add", "beta", "--title", "Docs"]).ok();
    p.msctl(&["update", "beta", "--set", "priority=high", "--set", "dependencies.requires=[alpha, gamma]"]).ok();
    commit_all(&p, "feature: docs, priority, gamma");

    p.git(&["checkout", "-q", "main"]);
    wait_until_served_as_on_disk(&p, "beta");
    p.msctl(&["update", "beta", "--set", "status=in_progress", "--set", "dependencies.requires=[alpha, delta]"]).ok();
    p.msctl(&["task", "add", "beta", "--title", "Tests"]).ok();
    p.msctl(&["task", "done", "beta", "task-1"]).ok();
    commit_all(&p, "main: started, tests, delta");

    let run = if rebase {
        p.git(&["checkout", "-q", "feature"]);
        wait_until_served_as_on_disk(&p, "beta");
        p.git_run(&["rebase", "main"])
    } else {
        p.git_run(&["merge", "--no-edit", "feature"])
    };
    assert_eq!(run.code, 0, "{run:?}");
    let path = p.milestones().join("active/beta.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# The beta release, planned with the team.\n"), "{text}");
    assert!(text.contains("status: in_progress   # until the parser lands\n"), "{text}");
    assert!(text.lines().all(|l| l.len() <= 100), "{text}");

    wait_until_served_as_on_disk(&p, "beta");
    let beta = p.msctl(&["get", "beta", "--json"]).json();
    assert_eq!((beta["status"].as_str(), beta["priority"].as_str()), (Some("in_progress"), Some("high")));
    assert_eq!(task_titles(&beta), ["Parser", "Tests", "Docs"]);
    let ids: HashSet<&str> = beta["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "both sides' task-2 are kept apart: {beta}");
    assert_eq!(beta["dependencies"]["requires"], serde_json::json!(["alpha", "delta", "gamma"]));
    assert_eq!(beta["progress"]["percentage"], 33, "derived again from the merged tasks");
    p.msctl(&["validate", "beta"]).ok();
}

#[test]
fn git_merge_merges_milestone_files_field_by_field() {
    merges_fields_tasks_and_dependencies(false);
}

#[test]
fn git_rebase_merges_milestone_files_field_by_field() {
    merges_fields_tasks_and_dependencies(true);
}

/// One field changed two ways stops a rebase with markers around just that
/// field; meanwhile the daemon serves the last good version and names the
/// file; once it is fixed, `git rebase --continue` is taken in.
#[test]
fn a_conflict_stops_the_rebase_and_the_daemon_serves_the_last_good_version() {
    let (p, _d) = repository();
    p.msctl(&["create", "--title", "Beta", "--id", "beta"]).ok();
    commit_all(&p, "beta");
    p.git(&["checkout", "-q", "-b", "feature"]);
    p.msctl(&["update", "beta", "--set", "title=Beta two", "--set", "priority=high"]).ok();
    commit_all(&p, "feature");
    p.git(&["checkout", "-q", "main"]);
    wait_until_served_as_on_disk(&p, "beta");
    p.msctl(&["update", "beta", "--set", "title=Beta one"]).ok();
    commit_all(&p, "main");
    p.git(&["checkout", "-q", "feature"]);
    wait_until_served_as_on_disk(&p, "beta");

    let rebase = p.git_run(&["rebase", "main"]);
    assert_ne!(rebase.code, 0, "{rebase:?}");
    assert!(rebase.stdout.contains("CONFLICT") || rebase.stderr.contains("CONFLICT"), "{rebase:?}");
    let path = p.milestones().join("active/beta.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("<<<<<<< ours\ntitle: Beta one\n=======\ntitle: Beta two\n>>>>>>> theirs\n"), "{text}");
    assert_eq!(text.matches("<<<<<<<").count(), 1, "only the title conflicts: {text}");
    assert!(text.contains("\npriority: high\n"), "the other change merged: {text}");

    eventually("health names the conflicted file", Duration::from_secs(15), || {
        let health = p.msctl(&["health"]);
        health.code == 5 && health.stdout.contains("active/beta.yaml") && health.stdout.contains("merge conflict")
    });
    let served = p.msctl(&["get", "beta", "--json"]).json();
    assert!(["Beta one", "Beta two"].contains(&served["title"].as_str().unwrap()), "{served}");
    let validate = p.msctl(&["validate", "--all"]);
    assert_eq!(validate.code, 5, "{validate:?}");
    assert!(validate.stdout.contains("active/beta.yaml: an unresolved git merge conflict"), "{validate:?}");

    let start = text.find("<<<<<<<").unwrap();
    let end = text.find(">>>>>>> theirs\n").unwrap() + ">>>>>>> theirs\n".len();
    let resolved = format!("{}title: Beta, agreed\n{}", &text[..start], &text[end..]);
    std::fs::write(&path, resolved).unwrap();
    p.git(&["add", "-A"]);
    p.git(&["rebase", "--continue"]);
    wait_until_served_as_on_disk(&p, "beta");
    let beta = p.msctl(&["get", "beta", "--json"]).json();
    assert_eq!((beta["title"].as_str(), beta["priority"].as_str()), (Some("Beta, agreed"), Some("high")));
    eventually("health is clear again", Duration::from_secs(15), || p.msctl(&["health"]).code == 0);
}

/// Deleted on one branch, edited on the other: git stops (it never asks a
/// driver about a file one side removed); the daemon serves the edited
/// file git leaves, and drops it once the user removes it.
#[test]
fn a_milestone_deleted_on_one_side_and_edited_on_the_other() {
    let (p, _d) = repository();
    p.msctl(&["create", "--title", "Doomed", "--id", "doomed"]).ok();
    commit_all(&p, "doomed");
    p.git(&["checkout", "-q", "-b", "feature"]);
    p.msctl(&["update", "doomed", "--set", "owner=ann"]).ok();
    commit_all(&p, "feature: edited");
    p.git(&["checkout", "-q", "main"]);
    wait_until_served_as_on_disk(&p, "doomed");
    p.msctl(&["delete", "doomed", "--purge"]).ok();
    commit_all(&p, "main: removed");

    let merge = p.git_run(&["merge", "--no-edit", "feature"]);
    assert_ne!(merge.code, 0, "{merge:?}");
    assert!(merge.stdout.contains("CONFLICT (modify/delete)"), "{merge:?}");
    wait_until_served_as_on_disk(&p, "doomed");
    assert_eq!(p.msctl(&["get", "doomed", "--json"]).json()["owner"], "ann");

    p.git(&["rm", "-q", ".milestones/active/doomed.yaml"]);
    p.git(&["commit", "-q", "--no-edit"]);
    wait_until_served_as_on_disk(&p, "doomed");
    p.msctl(&["get", "doomed"]).fails(3, "does not exist");
}

/// Branch switches, stash, reset and a second worktree: the daemon serves
/// what is on disk after each, and changes nothing git tracks on its own.
#[test]
fn the_daemon_follows_gits_own_moves() {
    let (p, _d) = repository();
    p.msctl(&["create", "--title", "Kept", "--id", "kept"]).ok();
    commit_all(&p, "kept");
    p.git(&["checkout", "-q", "-b", "feature"]);
    p.msctl(&["create", "--title", "Only here", "--id", "only-here"]).ok();
    commit_all(&p, "only here");

    p.git(&["checkout", "-q", "main"]);
    wait_until_served_as_on_disk(&p, "only-here");
    p.msctl(&["get", "only-here"]).fails(3, "does not exist");
    p.git(&["checkout", "-q", "feature"]);
    wait_until_served_as_on_disk(&p, "only-here");

    p.msctl(&["update", "kept", "--set", "owner=ann"]).ok();
    p.git(&["stash", "-q"]);
    wait_until_served_as_on_disk(&p, "kept");
    assert_eq!(p.msctl(&["get", "kept", "--json"]).json()["owner"], Value::Null);
    p.git(&["stash", "pop", "-q"]);
    wait_until_served_as_on_disk(&p, "kept");
    assert_eq!(p.msctl(&["get", "kept", "--json"]).json()["owner"], "ann");
    p.git(&["reset", "-q", "--hard"]);
    wait_until_served_as_on_disk(&p, "kept");
    assert_eq!(p.msctl(&["get", "kept", "--json"]).json()["owner"], Value::Null);
    assert_eq!(status(&p), Vec::<String>::new(), "the daemon wrote nothing back");

    // Another worktree is a project root of its own, with its own daemon.
    let w = Project::new();
    p.git(&["worktree", "add", "-q", w.root.to_str().unwrap(), "main"]);
    let _dw = w.start(&[]);
    w.msctl(&["get", "kept"]).ok();
    w.msctl(&["get", "only-here"]).fails(3, "does not exist");
    w.msctl(&["create", "--title", "In the worktree", "--id", "in-worktree"]).ok();
    assert_eq!(status(&w), ["?? .milestones/active/in-worktree.yaml"]);
    p.msctl(&["get", "in-worktree"]).fails(3, "does not exist");
    p.msctl(&["get", "only-here"]).ok();
}

/// Files with a long flow list, as milestoned once wrote `tasks`, are
/// tidied by `msctl upgrade`: one item per line, the same document.
#[test]
fn upgrade_tidies_long_flow_lists() {
    let p = Project::new();
    let _d = p.start(&[]);
    let tasks: Vec<String> = (1..=3)
        .map(|i| format!("{{id: task-{i}, title: A task with a title of some length, status: pending}}"))
        .collect();
    let long = format!("id: old\ntitle: Old\nstatus: planning\ntags: [a, b]\ntasks: [{}]\n", tasks.join(", "));
    let path = p.write(".milestones/active/old.yaml", &long);
    wait_until_served_as_on_disk(&p, "old");
    let before = p.msctl(&["get", "old", "--json"]).json();
    let tidied = || {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().all(|l| l.len() <= 100), "{text}");
        assert!(text.contains("tags: [a, b]\n"), "a short flow list stays: {text}");
        assert_eq!(p.msctl(&["get", "old", "--json"]).json()["tasks"], before["tasks"]);
        text
    };
    // With the enhanced sections to add...
    p.msctl(&["upgrade", "old"]).ok();
    let text = tidied();
    // ...and with nothing else to do: the same file, its tasks long again
    // (and a new title, to see when the daemon has taken it in).
    let mut lines = text.lines().peekable();
    let mut again = String::new();
    while let Some(line) = lines.next() {
        if line == "tasks:" {
            while lines.peek().is_some_and(|l| l.starts_with(' ') || l.starts_with('-')) {
                lines.next();
            }
            continue;
        }
        again.push_str(if line == "title: Old" { "title: Old, again" } else { line });
        again.push('\n');
    }
    std::fs::write(&path, format!("{again}tasks: [{}]\n", tasks.join(", "))).unwrap();
    wait_until_served_as_on_disk(&p, "old");
    p.msctl(&["upgrade", "old"]).ok();
    tidied();
}
