//! Outside edits, measured: how soon a file written by hand is served by
//! `get` and announced to a subscriber, and how long a checkout that
//! rewrites 10,000 files takes to absorb. Writes its section of
//! BENCHMARKS.md.
//!
//!     cargo build --release --workspace && cargo bench -p milestones-e2e --bench watching

use std::time::{Duration, Instant};

use milestones_e2e::bench::{fmt_duration, machine, percentiles, write_section};
use milestones_e2e::protocol::{EventFilter, Filter, FilterOp, Query, Request, Response, ServerMessage, Value};
use milestones_e2e::Project;

const EDITS: usize = 300;
const CHECKOUT: usize = 10_000;

fn main() {
    let mut rows = Vec::new();

    let p = Project::new();
    std::fs::create_dir_all(p.milestones().join("active")).unwrap();
    for i in 0..1000 {
        write(&p, &format!("m-{i:05}"), "Start", i);
    }
    let daemon = p.start(&[]);
    let mut reader = daemon.client();

    // Edit → visible through `get`: write the way editors and the seed's
    // scripts do (a temporary file renamed into place), then ask until the
    // new title is served.
    let mut visible = Vec::with_capacity(EDITS);
    for n in 0..EDITS {
        let id = format!("m-{:05}", n % 1000);
        let title = format!("Visible {n}");
        let t = Instant::now();
        write(&p, &id, &title, n);
        loop {
            if let Ok(Response::Document(doc)) = reader.request(Request::Get { id: id.clone() }) {
                if doc.as_map().and_then(|m| m.get("title")).and_then(Value::as_str) == Some(title.as_str()) {
                    break;
                }
            }
        }
        visible.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    rows.push(("outside edit → new version served by `get` (1,000 milestones)", percentiles(&visible)));

    // Edit → event at a subscriber.
    let mut subscriber = daemon.client();
    subscriber.subscribe(EventFilter::default()).unwrap();
    let mut announced = Vec::with_capacity(EDITS);
    for n in 0..EDITS {
        let id = format!("m-{:05}", n % 1000);
        let t = Instant::now();
        write(&p, &id, &format!("Announced {n}"), n);
        loop {
            match subscriber.next_event().unwrap() {
                ServerMessage::Event(e) if e.id.as_deref() == Some(id.as_str()) => break,
                _ => {}
            }
        }
        announced.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    rows.push(("outside edit → event at a subscriber", percentiles(&announced)));
    drop(daemon);

    // A checkout: 10,000 files rewritten at once.
    let p = Project::new();
    std::fs::create_dir_all(p.milestones().join("active")).unwrap();
    for i in 0..CHECKOUT {
        write(&p, &format!("c-{i:05}"), "Old branch", i);
    }
    let daemon = p.start(&[]);
    let mut client = daemon.client();
    let t = Instant::now();
    for i in 0..CHECKOUT {
        write(&p, &format!("c-{i:05}"), "New branch", i);
    }
    let written = t.elapsed();
    let new_branch = Query {
        filters: vec![Filter { path: "title".into(), op: FilterOp::Contains, value: Value::from("New branch") }],
        limit: Some(0),
        ..Query::default()
    };
    loop {
        if let Ok(Response::Page(page)) = client.request(Request::List { query: new_branch.clone() }) {
            if page.total == CHECKOUT as u64 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let absorbed = t.elapsed();
    rows.push((
        "checkout rewriting 10,000 files → all served (from the first write)",
        format!("{} (the writes themselves took {})", fmt_duration(absorbed), fmt_duration(written)),
    ));

    let mut table = String::from("| measurement | figure |\n| --- | --- |\n");
    for (what, figure) in &rows {
        table.push_str(&format!("| {what} | {figure} |\n"));
    }
    println!("{table}");
    write_section(
        "watching",
        &format!(
            "## Watching outside edits (file backend)\n\nMachine: {} Release build. Edits are written as a temporary file renamed into place; {EDITS} samples each.\n\nCommand: `cargo build --release --workspace && cargo bench -p milestones-e2e --bench watching`\n\n{table}",
            machine()
        ),
    );
}

fn write(p: &Project, id: &str, title: &str, n: usize) {
    let dir = p.milestones().join("active");
    let temp = dir.join(format!("{id}.tmp"));
    std::fs::write(&temp, format!("id: {id}\ntitle: {title}\nstatus: planning\npriority: medium\nnote: {n}\n"))
        .unwrap();
    std::fs::rename(&temp, dir.join(format!("{id}.yaml"))).unwrap();
}
