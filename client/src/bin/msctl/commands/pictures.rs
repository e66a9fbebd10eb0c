//! `msctl deps --format dot|mermaid` and `msctl board`: the project drawn,
//! as a dependency graph for Graphviz or a Markdown page, and as a
//! terminal board with one column per status.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use milestones_client::protocol::{DepsReport, Query, Request, Response, Value};
use milestones_client::Client;

use crate::render::Output;
use crate::{unexpected, Failure};

/// The statuses a board shows, in order (archived milestones stay hidden,
/// as in `list`).
const BOARD_COLUMNS: [&str; 5] = ["planning", "in_progress", "blocked", "completed", "cancelled"];

/// One milestone as a picture shows it.
struct Card {
    title: String,
    status: String,
    priority: String,
}

/// Every milestone's title, status and priority, archived ones too.
fn cards(client: &mut Client) -> Result<HashMap<String, Card>, Failure> {
    let query = Query { include_archived: true, ..Query::default() };
    let page = client.list(query)?;
    let text = |m: &Value, path: &str| m.pointer(path).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(page
        .items
        .iter()
        .map(|m| {
            let card = Card { title: text(m, "title"), status: text(m, "status"), priority: text(m, "priority") };
            (text(m, "id"), card)
        })
        .collect())
}

/// The fill colour of a status, the same in both formats.
fn colour(status: &str) -> &'static str {
    match status {
        "planning" => "#dbe9f6",
        "in_progress" => "#fde9a9",
        "blocked" => "#f4b6b6",
        "completed" => "#c6e5b3",
        "cancelled" | "archived" => "#e0e0e0",
        _ => "#ffffff",
    }
}

/// `msctl deps [ID] --format dot|mermaid`: every milestone and dependency
/// (with ID: that milestone and what it needs or is needed by), an arrow
/// from each milestone to the ones that need it, status as colour, the
/// critical path in bold red and missing milestones dashed.
pub fn deps(client: &mut Client, id: Option<String>, format: &str) -> Result<u8, Failure> {
    let report = match client.request(Request::Deps { id })? {
        Response::Deps(report) => report,
        other => return Err(unexpected(other)),
    };
    let cards = cards(client)?;
    let graph = Graph::of(&report, &cards);
    print!("{}", if format == "mermaid" { graph.mermaid() } else { graph.dot() });
    Ok(0)
}

/// What a picture draws, worked out once for both formats.
struct Graph<'a> {
    /// Each node: its id, its card (none when missing).
    nodes: Vec<(String, Option<&'a Card>)>,
    /// Each edge as (needed, needing), and whether it is on the critical path.
    edges: Vec<(String, String, bool)>,
}

impl<'a> Graph<'a> {
    fn of(report: &DepsReport, cards: &'a HashMap<String, Card>) -> Graph<'a> {
        let shown: Option<BTreeSet<&str>> = report.focus.as_ref().map(|f| {
            std::iter::once(f.id.as_str())
                .chain(f.requires.iter().map(String::as_str))
                .chain(f.required_by.iter().map(String::as_str))
                .collect()
        });
        let wanted = |id: &str| shown.as_ref().is_none_or(|s| s.contains(id));
        let on_path: BTreeSet<(&str, &str)> =
            report.critical_path.windows(2).map(|w| (w[0].as_str(), w[1].as_str())).collect();
        let mut edges = Vec::new();
        for e in report.edges.iter().chain(&report.missing) {
            if wanted(&e.from) && wanted(&e.to) {
                let critical = on_path.contains(&(e.to.as_str(), e.from.as_str()));
                edges.push((e.to.clone(), e.from.clone(), critical));
            }
        }
        let mut ids: BTreeSet<&str> = edges.iter().flat_map(|(a, b, _)| [a.as_str(), b.as_str()]).collect();
        match &shown {
            Some(shown) => ids.extend(shown.iter().copied()),
            None => ids.extend(cards.iter().filter(|(_, c)| c.status != "archived").map(|(id, _)| id.as_str())),
        }
        let nodes = ids.into_iter().map(|id| (id.to_owned(), cards.get(id))).collect();
        Graph { nodes, edges }
    }

    fn dot(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"));
        let mut out = String::from(
            "digraph milestones {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
        );
        for (id, card) in &self.nodes {
            let _ = match card {
                Some(c) => writeln!(
                    out,
                    "  {} [label={}, fillcolor=\"{}\", tooltip={}];",
                    quote(id),
                    quote(&format!("{id}\n{}", c.title)),
                    colour(&c.status),
                    quote(&c.status)
                ),
                None => writeln!(out, "  {} [label={}, style=dashed];", quote(id), quote(&format!("{id}\n(missing)"))),
            };
        }
        for (from, to, critical) in &self.edges {
            let style = if *critical { " [color=\"#d62728\", penwidth=3]" } else { "" };
            let _ = writeln!(out, "  {} -> {}{style};", quote(from), quote(to));
        }
        out.push_str("}\n");
        out
    }

    fn mermaid(&self) -> String {
        // Node names of their own: ids may hold dots, which Mermaid reads
        // as syntax. Labels escape what would end them.
        let name: HashMap<&str, String> =
            self.nodes.iter().enumerate().map(|(i, (id, _))| (id.as_str(), format!("m{i}"))).collect();
        let label = |s: &str| s.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;");
        let mut out = String::from("flowchart LR\n");
        for (id, card) in &self.nodes {
            let _ = match card {
                Some(c) => {
                    writeln!(out, "  {}[\"{}: {}\"]:::{}", name[id.as_str()], label(id), label(&c.title), c.status)
                }
                None => writeln!(out, "  {}[\"{} (missing)\"]:::missing", name[id.as_str()], label(id)),
            };
        }
        for (from, to, _) in &self.edges {
            let _ = writeln!(out, "  {} --> {}", name[from.as_str()], name[to.as_str()]);
        }
        for (i, _) in self.edges.iter().enumerate().filter(|(_, (_, _, critical))| *critical) {
            let _ = writeln!(out, "  linkStyle {i} stroke:#d62728,stroke-width:3px");
        }
        for status in BOARD_COLUMNS.iter().chain(&["archived"]) {
            let _ = writeln!(out, "  classDef {status} fill:{}", colour(status));
        }
        out.push_str("  classDef missing stroke-dasharray: 5 5\n");
        out
    }
}

/// `msctl board`: one column per status, most urgent first in each,
/// fitted to the terminal's width.
pub fn board(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    let cards = cards(client)?;
    let rank = |p: &str| match p {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    };
    let columns: Vec<(&str, Vec<(&String, &Card)>)> = BOARD_COLUMNS
        .iter()
        .map(|status| {
            let mut cards: Vec<(&String, &Card)> = cards.iter().filter(|(_, c)| c.status == *status).collect();
            cards.sort_by(|a, b| rank(&a.1.priority).cmp(&rank(&b.1.priority)).then(a.0.cmp(b.0)));
            (*status, cards)
        })
        .collect();
    let json: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .map(|(status, cards)| {
            let items = cards
                .iter()
                .map(|(id, c)| serde_json::json!({ "id": id, "title": c.title, "priority": c.priority }))
                .collect();
            (status.to_string(), serde_json::Value::Array(items))
        })
        .collect();
    out.print_json_or(&json, || {
        let width = crate::terminal::width().unwrap_or(100);
        let column = (width.saturating_sub(BOARD_COLUMNS.len() - 1) / BOARD_COLUMNS.len()).max(12);
        let fit = |s: &str| -> String {
            let mut s: String = s.chars().take(column).collect();
            if s.chars().count() == column && column > 1 {
                s.pop();
                s.push('…');
            }
            format!("{s:<column$}")
        };
        let header = columns
            .iter()
            .map(|(s, c)| {
                let heading = fit(&format!("{} ({})", s, c.len()));
                crate::terminal::status(&heading)
            })
            .collect::<Vec<_>>();
        let mut lines = vec![header.join(" ").trim_end().to_owned()];
        lines.push(columns.iter().map(|_| "─".repeat(column)).collect::<Vec<_>>().join(" "));
        let depth = columns.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
        for row in 0..depth {
            let line: Vec<String> = columns
                .iter()
                .map(|(_, cards)| cards.get(row).map_or_else(|| fit(""), |(id, c)| fit(&format!("{id} {}", c.title))))
                .collect();
            lines.push(line.join(" ").trim_end().to_owned());
        }
        lines.join("\n")
    });
    Ok(0)
}
