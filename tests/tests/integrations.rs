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

        let ids = |args: &[&str]| p.work_ids(args);
        // Critical first; then base, which three wait on in a row.
        assert_eq!(ids(&["ready"]), ["second", "base"], "{backend}");
        assert_eq!(ids(&["blocked"]), ["left", "right", "third", "top"], "{backend}");
        let blocked = p.msctl(&["blocked", "--json"]).json();
        let top = blocked.as_array().unwrap().iter().find(|i| i["milestone"] == "top").unwrap().clone();
        assert_eq!(top["waiting_on"], serde_json::json!(["left", "right"]), "{backend}");
        let ready = p.msctl(&["ready", "--json"]).json();
        assert_eq!(ready[1]["chain"], 3, "{backend}: base heads base, left, top");
        // A page of that order, and what the table says of the rest.
        assert_eq!(ids(&["blocked", "--limit", "2", "--offset", "1"]), ["right", "third"], "{backend}");
        let table = p.msctl(&["blocked", "--limit", "1"]).ok().to_owned();
        assert!(table.contains("left") && !table.contains("right"), "{backend}: {table}");
        assert!(table.contains("(1 of 4 shown; use --limit and --offset, or --all, for more)"), "{backend}: {table}");
        assert_eq!(ids(&["blocked", "--all"]).len(), 4, "{backend}");

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

/// An outside edit reaches `ready` like a request does: the file of a
/// requirement edited to completed readies what waits on it.
#[test]
fn ready_follows_outside_edits() {
    for backend in ["file", "hybrid"] {
        let p = Project::on_any_backend(backend);
        let _d = p.start(&[]);
        p.msctl(&["create", "--title", "Base", "--id", "base"]).ok();
        p.msctl(&["create", "--title", "Top", "--id", "top", "--requires", "base"]).ok();
        let ready = || p.work_ids(&["ready"]);
        assert_eq!(ready(), ["base"], "{backend}");
        let file = ".milestones/active/base.yaml";
        let read = || std::fs::read_to_string(p.root.join(file)).unwrap();
        p.write(
            file,
            &read().replace("status: planning", "status: in_progress").replace("title: Base", "title: Based"),
        );
        milestones_e2e::eventually("the edit is taken in", std::time::Duration::from_secs(10), || {
            p.msctl(&["ready"]).ok().contains("Based")
        });
        assert_eq!(ready(), ["base"], "{backend}");
        p.write(file, &read().replace("status: in_progress", "status: completed"));
        milestones_e2e::eventually("top is ready once base is completed", std::time::Duration::from_secs(10), || {
            ready() == ["top"]
        });
    }
}

/// A scripted MCP client over `msctl mcp`'s standard input and output:
/// initialize, list the tools, call several, and the two kinds of error.
#[test]
fn the_mcp_server_answers_a_scripted_client() {
    use std::io::BufReader;
    let p = Project::new();
    let _d = p.start(&[]);
    let mut server = Command::new(binary("msctl"))
        .args(["--root", p.root.to_str().unwrap(), "mcp"])
        .env("MSCTL_NO_AUTOSTART", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client =
        McpClient { to: server.stdin.take().unwrap(), from: BufReader::new(server.stdout.take().unwrap()), next_id: 0 };
    let mut ask = |method: &str, params: serde_json::Value| client.ask(method, params);
    let call =
        |ask: &mut dyn FnMut(&str, serde_json::Value) -> serde_json::Value, tool: &str, args: serde_json::Value| {
            let reply = ask("tools/call", serde_json::json!({ "name": tool, "arguments": args }));
            let result = reply["result"].clone();
            let text = result["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{reply}")).to_owned();
            (result["isError"].as_bool().unwrap(), text)
        };

    let init = ask(
        "initialize",
        serde_json::json!({ "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": { "name": "test", "version": "1" } }),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
    assert_eq!(init["result"]["serverInfo"]["name"], "msctl");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    // A notification gets no answer: the next line answers the next request.
    ask("notifications/initialized", serde_json::Value::Null);

    let tools = ask("tools/list", serde_json::json!({}));
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for wanted in ["list", "get", "create", "update", "task_add", "task_start", "task_done", "ready", "search", "stats"]
    {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    let create_schema =
        &tools["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "create").unwrap()["inputSchema"];
    assert_eq!(create_schema["required"], serde_json::json!(["title"]));

    let (failed, text) = call(&mut ask, "create", serde_json::json!({ "title": "Agent's plan", "priority": "high" }));
    assert!(!failed, "{text}");
    let created: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(p.msctl(&["get", &id, "--json"]).json()["title"], "Agent's plan", "stored through the daemon");

    let (failed, text) = call(&mut ask, "task_add", serde_json::json!({ "milestone": id, "title": "First step" }));
    assert!(!failed && text.contains("First step"), "{text}");
    let (failed, _) = call(&mut ask, "task_done", serde_json::json!({ "milestone": id, "task": "task-1" }));
    assert!(!failed);
    let (failed, text) = call(
        &mut ask,
        "update",
        serde_json::json!({ "id": id, "set": { "status": "in_progress", "owner.team": "agents" } }),
    );
    assert!(!failed, "{text}");
    assert_eq!(p.msctl(&["get", &id, "--json"]).json()["owner"]["team"], "agents");
    let (_, text) = call(&mut ask, "list", serde_json::json!({ "status": "in_progress" }));
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((page["total"].as_u64(), page["items"][0]["progress"]["percentage"].as_u64()), (Some(1), Some(100)));
    let (_, text) = call(&mut ask, "ready", serde_json::json!({ "limit": 5 }));
    let ready: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((ready["total"].as_u64(), ready["items"][0]["milestone"].as_str()), (Some(1), Some(id.as_str())));
    let (_, text) = call(&mut ask, "search", serde_json::json!({ "words": "plan" }));
    assert!(text.contains(&id), "{text}");
    let (_, text) = call(&mut ask, "stats", serde_json::json!({}));
    assert!(serde_json::from_str::<serde_json::Value>(&text).unwrap()["total"] == 1, "{text}");

    // The daemon's refusal is the tool's error, with its message.
    let (failed, text) = call(&mut ask, "get", serde_json::json!({ "id": "nope" }));
    assert!(failed && text.contains("milestone `nope` does not exist"), "{text}");
    let (failed, text) = call(&mut ask, "update", serde_json::json!({ "id": id, "set": { "status": "sleeping" } }));
    assert!(failed && text.contains("status must be one of"), "{text}");
    // Arguments of the wrong shape and unknown tools are protocol errors.
    let wrong = ask("tools/call", serde_json::json!({ "name": "get", "arguments": { "id": 7 } }));
    assert_eq!(wrong["error"]["code"], -32602, "{wrong}");
    assert!(wrong["error"]["message"].as_str().unwrap().contains("`id` must be text"), "{wrong}");
    let unknown = ask("tools/call", serde_json::json!({ "name": "launch", "arguments": {} }));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let no_method = ask("resources/list", serde_json::json!({}));
    assert_eq!(no_method["error"]["code"], -32601, "{no_method}");

    drop(client);
    assert!(server.wait().unwrap().success(), "the server ends when its input closes");
}

/// The test's side of an MCP session: one JSON-RPC message per line.
struct McpClient {
    to: std::process::ChildStdin,
    from: std::io::BufReader<std::process::ChildStdout>,
    next_id: u64,
}

impl McpClient {
    /// Sends a request and returns its reply; a notification (no params
    /// given as null) expects none.
    fn ask(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::BufRead;
        if method.starts_with("notifications/") {
            writeln!(self.to, "{}", serde_json::json!({ "jsonrpc": "2.0", "method": method })).unwrap();
            return serde_json::Value::Null;
        }
        self.next_id += 1;
        let message = serde_json::json!({ "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params });
        writeln!(self.to, "{message}").unwrap();
        let mut line = String::new();
        self.from.read_line(&mut line).unwrap();
        let reply: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(reply["id"], self.next_id, "{reply}");
        reply
    }
}

/// Colour on a terminal only, never with `NO_COLOR`; tables cut to the
/// terminal's width, and whole when piped. The terminal is a real pty
/// (`script`).
#[test]
fn colour_and_width_follow_the_terminal() {
    let p = Project::new();
    let _d = p.start(&[]);
    let long = "A title long enough to run past the edge of any narrow terminal window";
    p.msctl(&["create", "--title", long, "--id", "wide"]).ok();
    p.msctl(&["create", "--title", "Stuck", "--id", "stuck", "--status", "blocked"]).ok();
    let on_a_terminal = |env: &[(&str, &str)], args: &str| {
        let command = format!("{} --root '{}' {args}", binary("msctl").display(), p.root.display());
        let mut script = Command::new("script");
        script.args(["-qec", &command, "/dev/null"]).env("MSCTL_NO_AUTOSTART", "1").env_remove("NO_COLOR");
        for (k, v) in env {
            script.env(k, v);
        }
        let out = script.output().expect("`script` (util-linux) is installed");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    };
    let coloured = on_a_terminal(&[], "list");
    assert!(coloured.contains("\x1b[31mblocked"), "blocked is red on a terminal: {coloured:?}");
    assert!(coloured.contains("\x1b[1mID\x1b[0m"), "headings are bold: {coloured:?}");
    let plain = on_a_terminal(&[("NO_COLOR", "1")], "list");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    assert!(!p.msctl(&["list"]).ok().contains('\x1b'), "no colour into a pipe");

    let narrow = on_a_terminal(&[("NO_COLOR", "1"), ("COLUMNS", "50")], "list");
    assert!(narrow.lines().all(|l| l.chars().count() <= 50), "{narrow}");
    assert!(narrow.contains("A title long eno…\n"), "the title is cut, and says so: {narrow}");
    assert!(p.msctl(&["list"]).ok().contains(long), "piped output keeps every character");
}

/// Export, then import into an empty project: the same documents, value
/// for value (CSV: the core fields), in every format and on every backend.
#[test]
fn export_and_import_round_trip_on_every_backend() {
    let source = Project::new();
    let _s = source.start(&[]);
    // Seed 000's full template (every section, nested values of every
    // kind), its example, and a few of our own.
    for fixture in ["seed-000-template.yaml", "seed-000-example.yaml"] {
        source.msctl_with_input(&["create", "--from-file", "-"], Some(&milestones_e2e::fixture(fixture))).ok();
    }
    source.msctl(&["create", "--title", "Plain", "--id", "plain", "--requires", "seed-template"]).ok();
    source.msctl(&["create", "--title", "Comma, \"quote\"\nand a second line", "--id", "odd-text"]).ok();
    source.msctl(&["task", "add", "odd-text", "--title", "A task"]).ok();
    source.msctl(&["delete", "odd-text"]).ok(); // archived: exported with --all only
    let everything =
        |p: &Project| -> serde_json::Value { p.msctl(&["list", "--all", "--sort", "id", "--json"]).json() };
    let before = everything(&source);
    assert!(before.as_array().unwrap().len() >= 3, "{before}");
    let core = |docs: &serde_json::Value| -> Vec<serde_json::Value> {
        docs.as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let fields = [
                    "id",
                    "title",
                    "description",
                    "status",
                    "priority",
                    "category",
                    "created_at",
                    "updated_at",
                    "completed_at",
                ];
                serde_json::Value::Object(
                    fields.iter().filter_map(|f| Some((f.to_string(), d.get(*f)?.clone()))).collect(),
                )
            })
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    for format in ["yaml", "json", "csv"] {
        let file = dir.path().join(format!("all.{format}"));
        let export = source.msctl(&["export", "--all", "--format", format, "--out", file.to_str().unwrap()]);
        export.ok();
        assert_eq!(export.stderr.lines().count(), 1, "one line and no progress bar into a pipe: {export:?}");
        for backend in milestones_e2e::ALL_BACKENDS {
            let target = Project::on_any_backend(backend);
            let _t = target.start(&[]);
            let imported = target.msctl(&["import", file.to_str().unwrap(), "--json"]).json();
            assert_eq!(imported["imported"], before.as_array().unwrap().len(), "{format} into {backend}: {imported}");
            let after = everything(&target);
            if format == "csv" {
                // CSV holds the core fields only, as text.
                let strings = |docs: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
                    docs.into_iter()
                        .map(|d| {
                            let o = d.as_object().unwrap();
                            serde_json::Value::Object(
                                o.iter()
                                    .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_owned).into()))
                                    .collect(),
                            )
                        })
                        .collect()
                };
                assert_eq!(strings(core(&after)), strings(core(&before)), "{format} into {backend}");
            } else {
                assert_eq!(after, before, "{format} into {backend}");
            }
        }
    }

    // A filtered export, to standard output.
    let archived = source.msctl(&["export", "--all", "--status", "archived", "--format", "json"]).json();
    assert_eq!(archived.as_array().unwrap().len(), 1);
    assert_eq!(archived[0]["id"], "odd-text");
}

/// A file with bad records: each is named with its position and nothing is
/// imported; `--partial` keeps the good ones; existing ids need `--replace`.
#[test]
fn import_names_every_bad_record_and_imports_nothing() {
    let p = Project::new();
    let _d = p.start(&[]);
    p.msctl(&["create", "--title", "Already here", "--id", "taken"]).ok();
    let file = p.write(
        "records.yaml",
        "- {id: good-one, title: Good}\n- {id: bad/id, title: Bad id}\n- {title: Wrong status, status: sleeping}\n\
         - {id: taken, title: Clash}\n- {id: good-two, title: Also good, tasks: [{title: a task}]}\n- {id: good-one, title: Twice}\n",
    );
    let path = file.to_str().unwrap();
    let run = p.msctl(&["import", path]);
    assert_eq!(run.code, 4, "{run:?}");
    for named in [
        "record 2 (bad/id): invalid id",
        "record 3: status must be one of",
        "record 4 (taken): milestone `taken` already exists; --replace replaces it",
        "record 6 (good-one): the id `good-one` is also record 1's",
        "nothing imported: 4 of 6 record(s) refused",
    ] {
        assert!(run.stderr.contains(named), "{named}: {run:?}");
    }
    p.msctl(&["get", "good-one"]).fails(3, "does not exist");

    let partial = p.msctl(&["import", path, "--partial", "--json"]);
    assert_eq!(partial.code, 5, "{partial:?}");
    let report: serde_json::Value = serde_json::from_str(&partial.stdout).unwrap();
    assert_eq!(report["imported"], 2);
    assert_eq!(report["refused"].as_array().unwrap().len(), 4);
    assert_eq!(p.msctl(&["get", "good-two", "--json"]).json()["tasks"][0]["id"], "task-1");
    assert_eq!(p.msctl(&["get", "taken", "--json"]).json()["title"], "Already here");

    p.write("replace.json", r#"{"id": "taken", "title": "Replaced", "status": "in_progress"}"#);
    let clash = p.msctl(&["import", p.root.join("replace.json").to_str().unwrap()]);
    assert!(clash.code == 4 && clash.stderr.contains("already exists; --replace replaces it"), "{clash:?}");
    p.msctl(&["import", p.root.join("replace.json").to_str().unwrap(), "--replace"]).ok();
    assert_eq!(p.msctl(&["get", "taken", "--json"]).json()["title"], "Replaced");

    p.write("broken.json", "[{\"id\": \"x\", ");
    p.msctl(&["import", p.root.join("broken.json").to_str().unwrap()]).fails(4, "is not valid JSON");
}
