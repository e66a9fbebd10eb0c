//! Working in a team with git: `msctl merge-driver`, which git runs during
//! `merge`, `pull`, `rebase` and `cherry-pick` (no daemon involved: the
//! files are git's until it is done), and `msctl git setup`, which
//! registers it in a clone. The daemon itself never runs git.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use milestones_document::{document, merge};

use crate::render::Output;
use crate::{exit, Failure};

/// The merge driver's name in `.gitattributes` and `git config`.
const DRIVER: &str = "milestones";

/// What `.milestones/.gitattributes` must say.
const ATTRIBUTES: [&str; 2] = ["active/*.yaml merge=milestones", "completed/*.yaml merge=milestones"];

/// Merges `theirs` into `ours` (git's `%A`, overwritten with the result),
/// both descended from `base`. Exit 0: merged; 1: conflicts are marked in
/// the file.
pub fn merge_driver(base: &Path, ours: &Path, theirs: &Path, path: Option<&str>) -> Result<u8, Failure> {
    let name = path.map_or_else(|| ours.display().to_string(), str::to_owned);
    let read = |p: &Path| {
        fs::read_to_string(p)
            .map_err(|e| Failure::new(exit::FAILURE, format!("{name}: cannot read {}: {e}", p.display())))
    };
    let (base_text, ours_text, theirs_text) = (read(base)?, read(ours)?, read(theirs)?);
    let merged = match merge::merge(&base_text, &ours_text, &theirs_text, &document::now_timestamp()) {
        Ok(merged) => merged,
        Err(why) => {
            eprintln!("msctl: {name}: {why}; merging it line by line instead");
            return line_by_line(base, ours, theirs);
        }
    };
    fs::write(ours, &merged.text)
        .map_err(|e| Failure::new(exit::FAILURE, format!("{name}: cannot write {}: {e}", ours.display())))?;
    if merged.conflicts.is_empty() {
        return Ok(0);
    }
    eprintln!(
        "msctl: {name}: both sides changed {} differently; the conflict markers are around {}",
        merged.conflicts.join(", "),
        if merged.conflicts.len() == 1 { "that field" } else { "those fields" }
    );
    Ok(exit::FAILURE)
}

/// Git's own text merge, for a version that is not a milestone document.
fn line_by_line(base: &Path, ours: &Path, theirs: &Path) -> Result<u8, Failure> {
    let status = Command::new("git")
        .args(["merge-file", "-L", "ours", "-L", "base", "-L", "theirs"])
        .args([ours, base, theirs])
        .status()
        .map_err(|e| Failure::new(exit::FAILURE, format!("cannot run git merge-file: {e}")))?;
    Ok(if status.success() { 0 } else { exit::FAILURE })
}

/// Registers the merge driver for the project at `root`: the attributes,
/// tracked so the team shares them, and this clone's `git config`.
pub fn setup(root: &Path, out: &Output) -> Result<u8, Failure> {
    git(root, &["rev-parse", "--show-toplevel"])
        .map_err(|e| Failure::new(exit::FAILURE, format!("{} is not in a git work tree: {e}", root.display())))?;
    let dir = root.join(".milestones");
    let attributes = dir.join(".gitattributes");
    add_lines(
        &attributes,
        "# Milestone files merge field by field: `msctl git setup` registers the\n\
         # driver in each clone (a clone without it merges them as text).\n",
        &ATTRIBUTES,
    )?;
    // A .gitignore written before .gitattributes was part of the team's
    // data would hide it from `git add`.
    let gitignore = dir.join(".gitignore");
    if gitignore.exists() {
        add_lines(&gitignore, "", &["!/.gitattributes"])?;
    }
    let driver = format!("{} merge-driver %O %A %B %P", shell_word(&msctl_command()));
    let configure = |key: &str, value: &str| {
        git(root, &["config", &format!("merge.{DRIVER}.{key}"), value])
            .map_err(|e| Failure::new(exit::FAILURE, format!("cannot register the merge driver: {e}")))
    };
    configure("name", "milestone files, field by field (msctl)")?;
    configure("driver", &driver)?;
    out.print_json_or(&serde_json::json!({ "gitattributes": attributes, "driver": driver }), || {
        format!(
            "merge driver registered: {} (commit it) and `git config merge.{DRIVER}.driver` = {driver}",
            attributes.display()
        )
    });
    Ok(0)
}

/// Whether the project at `root` is in a git work tree whose config has
/// no merge driver for milestone files yet (what `msctl init` offers).
pub fn could_set_up(root: &Path) -> bool {
    git(root, &["rev-parse", "--show-toplevel"]).is_ok()
        && git(root, &["config", "--get", &format!("merge.{DRIVER}.driver")]).is_err()
}

/// Appends each of `lines` that `path` lacks (after `header` when the file
/// is new); what is there already stays as written.
fn add_lines(path: &Path, header: &str, lines: &[&str]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(exit::FAILURE, format!("cannot update {}: {e}", path.display()));
    let existing = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => header.to_owned(),
        Err(e) => return Err(fail(e)),
    };
    let missing: Vec<&str> = lines.iter().copied().filter(|l| !existing.lines().any(|e| e.trim() == *l)).collect();
    if missing.is_empty() && path.exists() {
        return Ok(());
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    fs::write(path, text).map_err(fail)
}

/// Runs git in `root`; its trimmed output, or why it failed.
fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git").arg("-C").arg(root).args(args).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "git is not installed".to_owned(),
        _ => format!("cannot run git: {e}"),
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let why = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(if why.is_empty() { format!("git {} failed", args.join(" ")) } else { why })
    }
}

/// How git should call this msctl: `msctl` when that is what `PATH` finds,
/// else its full path (a build not installed, say).
fn msctl_command() -> String {
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("msctl")).collect::<Vec<PathBuf>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok());
    match me {
        Some(me) if on_path.as_ref() != Some(&me) => me.display().to_string(),
        _ => "msctl".to_owned(),
    }
}

/// `word` quoted for the shell git runs the driver with, when it needs it.
fn shell_word(word: &str) -> String {
    if word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
