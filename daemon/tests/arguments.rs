//! The daemon refuses bad start-up arguments with a clear message.
//! (End-to-end behaviour is tested in the workspace's `tests/` crate.)

use std::process::Command;

#[test]
fn a_root_that_is_not_a_folder_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_milestoned"))
        .args(["--root", "/nonexistent/milestone/project", "--foreground"])
        .output()
        .expect("run milestoned");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/milestone/project is not a folder"), "{stderr}");
}

#[test]
fn an_unsupported_backend_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".milestones/config")).unwrap();
    std::fs::write(dir.path().join(".milestones/config/storage-backend.txt"), "tape\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_milestoned"))
        .arg("--root")
        .arg(dir.path())
        .arg("--foreground")
        .output()
        .expect("run milestoned");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("names the `tape` backend"));
}
