//! Milestones in a git repository (issue: working in a team with git): the
//! work tree stays clean but for the milestone files a command changed.

use milestones_e2e::Project;

fn status(p: &Project) -> Vec<String> {
    p.git(&["status", "--porcelain", "--untracked-files=all"]).lines().map(str::to_owned).collect()
}

#[test]
fn the_work_tree_shows_only_the_milestone_files_a_command_changed() {
    let p = Project::new();
    p.git(&["init", "-q"]);
    p.msctl_autostart(&["init"]).ok();
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
