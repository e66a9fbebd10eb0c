//! Milestones in a git repository (issue: working in a team with git): the
//! work tree stays clean but for the milestone files a command changed.

use std::process::Command;

use milestones_e2e::Project;

fn git(p: &Project, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(&p.root)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(p: &Project) -> Vec<String> {
    git(p, &["status", "--porcelain", "--untracked-files=all"]).lines().map(str::to_owned).collect()
}

#[test]
fn the_work_tree_shows_only_the_milestone_files_a_command_changed() {
    let p = Project::new();
    git(&p, &["init", "-q"]);
    p.msctl_autostart(&["init"]).ok();
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-qm", "milestones"]);
    let tracked = git(&p, &["ls-files"]);
    assert_eq!(
        tracked.lines().collect::<Vec<_>>(),
        [".milestones/.gitignore", ".milestones/config/storage-config.yaml"],
        "only the team's data is tracked"
    );
    assert_eq!(status(&p), Vec::<String>::new(), "the daemon's socket, lock, pid and log are ignored");

    p.msctl(&["create", "--title", "Tracked", "--id", "tracked"]).ok();
    assert_eq!(status(&p), ["?? .milestones/active/tracked.yaml"]);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-qm", "create"]);

    p.msctl(&["update", "tracked", "--set", "owner=ann"]).ok();
    assert_eq!(status(&p), [" M .milestones/active/tracked.yaml"]);
    git(&p, &["commit", "-qam", "update"]);

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
