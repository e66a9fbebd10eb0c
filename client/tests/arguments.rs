//! msctl's own errors, before any daemon is involved.

use std::process::Command;

fn msctl(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_msctl"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MILESTONES_ROOT")
        .output()
        .expect("run msctl")
}

#[test]
fn outside_a_project_it_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = msctl(&["list"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `msctl init`"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(msctl(&["frobnicate"], dir.path()).status.code(), Some(2));
    assert_eq!(msctl(&["get"], dir.path()).status.code(), Some(2));
}

#[test]
fn the_root_is_found_in_a_parent_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".milestones")).unwrap();
    let sub = dir.path().join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    // No daemon runs there, so msctl names the root it found.
    let out = msctl(&["list", "--no-autostart"], &sub);
    assert_eq!(out.status.code(), Some(6));
    let root = dir.path().canonicalize().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no milestoned is running for {}", root.display())));
}
