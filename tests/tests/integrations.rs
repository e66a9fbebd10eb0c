//! Where people work (issue: integrations): the dependency graph as a
//! picture Graphviz draws and Mermaid reads, a terminal board, shell
//! completions that load in bash, and a manual page that `man` renders.

use std::io::Write;
use std::process::{Command, Stdio};

use milestones_e2e::{binary, Project};

/// A chain (alpha ← beta ← gamma) and a side branch (side ← gamma), one
/// requirement that does not exist, statuses across the board.
fn project() -> (Project, milestones_e2e::Daemon) {
    let p = Project::new();
    let d = p.start(&[]);
    p.msctl(&["create", "--title", "Alpha \"quoted\" <b>", "--id", "alpha", "--status", "completed"]).ok();
    p.msctl(&["create", "--title", "Beta", "--id", "beta", "--requires", "alpha", "--status", "in_progress"]).ok();
    p.msctl(&["create", "--title", "Side", "--id", "side", "--priority", "critical"]).ok();
    p.msctl(&["create", "--title", "Gamma", "--id", "gamma", "--requires", "beta", "--requires", "side"]).ok();
    p.msctl(&["create", "--title", "Blocked one", "--id", "stuck", "--status", "blocked"]).ok();
    p.write(
        ".milestones/active/dangling.yaml",
        "title: Dangling\nstatus: planning\ndependencies:\n  requires: [nowhere]\n",
    );
    milestones_e2e::eventually("the hand-written file is taken in", std::time::Duration::from_secs(10), || {
        p.msctl(&["get", "dangling"]).code == 0
    });
    (p, d)
}

/// Pipes `input` into `program args...`; its exit code and output.
fn pipe(program: &str, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is installed (.ci/run installs it): {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_dependency_graph_is_a_picture_graphviz_draws() {
    let (p, _d) = project();
    let dot = p.msctl(&["deps", "--format", "dot"]).ok().to_owned();
    assert!(dot.starts_with("digraph milestones {"), "{dot}");
    // Arrows go from what is needed to what needs it; the critical path
    // (alpha → beta → gamma) is drawn bold, status is colour.
    assert!(dot.contains("\"alpha\" -> \"beta\" [color=\"#d62728\", penwidth=3];"), "{dot}");
    assert!(dot.contains("\"beta\" -> \"gamma\" [color=\"#d62728\", penwidth=3];"), "{dot}");
    assert!(dot.contains("\"side\" -> \"gamma\";"), "{dot}");
    assert!(dot.contains("\"nowhere\" [label=\"nowhere\\n(missing)\", style=dashed];"), "{dot}");
    assert!(dot.contains("fillcolor=\"#c6e5b3\""), "completed is green: {dot}");
    assert!(dot.contains("Alpha \\\"quoted\\\""), "quotes escaped: {dot}");

    let (code, svg, stderr) = pipe("dot", &["-Tsvg"], &dot);
    assert_eq!(code, 0, "Graphviz refused the graph: {stderr}\n{dot}");
    assert!(svg.contains("<svg") && svg.contains("Beta") && svg.contains("nowhere"), "{svg}");

    // One milestone's neighbourhood only.
    let focus = p.msctl(&["deps", "beta", "--format", "dot"]).ok().to_owned();
    assert!(focus.contains("\"alpha\" -> \"beta\"") && !focus.contains("\"stuck\""), "{focus}");
    assert_eq!(pipe("dot", &["-Tsvg"], &focus).0, 0);
}

#[test]
fn the_dependency_graph_is_a_mermaid_flowchart() {
    let (p, _d) = project();
    let mermaid = p.msctl(&["deps", "--format", "mermaid"]).ok().to_owned();
    let lines: Vec<&str> = mermaid.lines().collect();
    assert_eq!(lines[0], "flowchart LR");
    let node = |id: &str| {
        let line = lines.iter().find(|l| l.contains(&format!("[\"{id}"))).unwrap_or_else(|| panic!("{id}: {mermaid}"));
        line.trim().split('[').next().unwrap().to_owned()
    };
    let (alpha, beta, gamma) = (node("alpha"), node("beta"), node("gamma"));
    assert!(mermaid.contains(&format!("  {alpha} --> {beta}\n")), "{mermaid}");
    assert!(mermaid.contains(&format!("  {beta} --> {gamma}\n")), "{mermaid}");
    assert!(mermaid.contains("alpha: Alpha #quot;quoted#quot; #lt;b#gt;\"]:::completed"), "{mermaid}");
    assert!(mermaid.contains("[\"nowhere (missing)\"]:::missing"), "{mermaid}");
    // The two critical edges are styled, by their position among the links.
    let links: Vec<&&str> = lines.iter().filter(|l| l.contains(" --> ")).collect();
    for (from, to) in [(&alpha, &beta), (&beta, &gamma)] {
        let i = links.iter().position(|l| l.trim() == format!("{from} --> {to}")).unwrap();
        assert!(mermaid.contains(&format!("linkStyle {i} stroke:#d62728")), "{mermaid}");
    }
}

#[test]
fn the_board_has_a_column_per_status_and_fits_the_terminal() {
    let (p, _d) = project();
    let board = p.msctl(&["board", "--json"]).json();
    let ids = |status: &str| -> Vec<String> {
        board[status].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids("planning"), ["side", "gamma", "dangling"], "critical, medium, then none given");
    assert_eq!(ids("in_progress"), ["beta"]);
    assert_eq!(ids("blocked"), ["stuck"]);
    assert_eq!(ids("completed"), ["alpha"]);

    let text = Command::new(binary("msctl"))
        .args(["--root", p.root.to_str().unwrap(), "board"])
        .env("COLUMNS", "80")
        .env("MSCTL_NO_AUTOSTART", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    assert!(text.starts_with("planning (3)"), "{text}");
    assert!(text.lines().nth(2).unwrap().starts_with("side Side"), "{text}");
}

#[test]
fn completions_load_in_bash() {
    let script = Command::new(binary("msctl")).args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    let script = String::from_utf8_lossy(&script.stdout);
    let (code, out, err) = pipe("bash", &["-c", "eval \"$(cat)\" && complete -p msctl"], &script);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("complete ") && out.trim_end().ends_with(" msctl"), "{out}");
    // Every subcommand is offered.
    for command in ["create", "merge-driver", "board", "completions"] {
        assert!(script.contains(command), "{command} is not completed");
    }
    for shell in ["zsh", "fish"] {
        let other = Command::new(binary("msctl")).args(["completions", shell]).output().unwrap();
        assert!(other.status.success() && String::from_utf8_lossy(&other.stdout).contains("merge-driver"));
    }
}

#[test]
fn the_manual_page_renders_in_man() {
    let page = Command::new(binary("msctl")).arg("man").output().unwrap();
    assert!(page.status.success());
    let roff = String::from_utf8_lossy(&page.stdout);
    assert!(roff.starts_with(".ie \\n(.g .ds Aq") || roff.contains(".TH msctl"), "{roff}");
    let (code, text, err) = pipe("man", &["-l", "-P", "cat", "-"], &roff);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("NAME") && text.contains("msctl"), "{text}");
    assert!(text.contains("merge-driver") && text.contains("completions"), "{text}");
}

/// `msctl ready` and `blocked` on every backend: a diamond (top needs left
/// and right, both need base) and a chain whose first link is done, then
/// the same for tasks.
#[test]
fn ready_and_blocked_on_every_backend() {
    for backend in milestones_e2e::ALL_BACKENDS {
        let p = Project::on_any_backend(backend);
        let _d = p.start(&[]);
        let create = |args: &[&str]| p.msctl(&[&["create"][..], args].concat()).ok().to_owned();
        create(&["--title", "Base", "--id", "base", "--status", "in_progress"]);
        create(&["--title", "Left", "--id", "left", "--requires", "base", "--priority", "high"]);
        create(&["--title", "Right", "--id", "right", "--requires", "base"]);
        create(&["--title", "Top", "--id", "top", "--requires", "left", "--requires", "right"]);
        create(&["--title", "First", "--id", "first", "--status", "completed"]);
        create(&["--title", "Second", "--id", "second", "--requires", "first", "--priority", "critical"]);
        create(&["--title", "Third", "--id", "third", "--requires", "second"]);
        create(&["--title", "Dropped", "--id", "dropped", "--requires", "base", "--status", "cancelled"]);

        let ids = |args: &[&str]| -> Vec<String> {
            let items = p.msctl(&[args, &["--json"][..]].concat()).json();
            items.as_array().unwrap().iter().map(|i| i["milestone"].as_str().unwrap().to_owned()).collect()
        };
        // Critical first; then base, which three wait on in a row.
        assert_eq!(ids(&["ready"]), ["second", "base"], "{backend}");
        assert_eq!(ids(&["blocked"]), ["left", "right", "third", "top"], "{backend}");
        let blocked = p.msctl(&["blocked", "--json"]).json();
        let top = blocked.as_array().unwrap().iter().find(|i| i["milestone"] == "top").unwrap().clone();
        assert_eq!(top["waiting_on"], serde_json::json!(["left", "right"]), "{backend}");
        let ready = p.msctl(&["ready", "--json"]).json();
        assert_eq!(ready[1]["chain"], 3, "{backend}: base heads base, left, top");

        // Finishing base readies both sides of the diamond, not yet the top.
        p.msctl(&["complete", "base"]).ok();
        assert_eq!(ids(&["ready"]), ["second", "left", "right"], "{backend}");
        assert_eq!(ids(&["blocked"]), ["third", "top"], "{backend}");
        let table = p.msctl(&["blocked"]).ok().to_owned();
        assert!(table.starts_with("ID") && table.contains("left, right"), "{backend}: {table}");

        // Tasks: ready when the tasks they depend on are done.
        p.msctl(&["task", "add", "left", "--title", "Sketch"]).ok();
        p.msctl(&["task", "add", "left", "--title", "Build", "--depends-on", "task-1"]).ok();
        p.msctl(&["task", "add", "left", "--title", "Ship", "--depends-on", "task-2"]).ok();
        let tasks = |args: &[&str]| -> Vec<String> {
            let items = p.msctl(&[args, &["--tasks", "--json"][..]].concat()).json();
            items.as_array().unwrap().iter().map(|i| i["task"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(tasks(&["ready"]), ["task-1"], "{backend}");
        assert_eq!(tasks(&["blocked"]), ["task-2", "task-3"], "{backend}");
        p.msctl(&["task", "done", "left", "task-1"]).ok();
        assert_eq!(tasks(&["ready"]), ["task-2"], "{backend}");
    }
}
