//! Foundation benchmarks: the real daemon on a temporary project, measured
//! from outside. Prints a Markdown table and writes it into BENCHMARKS.md.
//!
//!     cargo build --release --workspace && cargo bench -p milestones-e2e --bench foundation
//!
//! Figures, not assertions: speed is never checked in a test that can flake.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use milestones_client::Client;
use milestones_e2e::bench::{machine, percentiles, write_section};
use milestones_e2e::protocol::frame::{read_frame, write_frame};
use milestones_e2e::protocol::{
    codec, DocumentInput, Encoding, Map, Request, RequestFrame, Response, Value, DEFAULT_MAX_FRAME,
};
use milestones_e2e::{binary, fixture, Project};

struct Row {
    what: &'static str,
    figure: String,
}

fn main() {
    let mut rows = Vec::new();
    let template = fixture("seed-000-template.yaml");

    // The floor: a raw frame echo over a Unix socket, same frame sizes as a `get`.
    let get_frame =
        codec::encode(Encoding::Bincode, &RequestFrame { id: 1, request: Request::Get { id: "milestone-001".into() } })
            .unwrap();
    let echo = echo_round_trips(&get_frame, 20_000);
    rows.push(Row { what: "raw Unix-socket frame echo round trip (floor)", figure: percentiles(&echo) });

    let p = Project::new();
    let d = p.start(&[]);
    let mut c = d.client();
    c.request(Request::Create { input: DocumentInput::Yaml(template.replace("seed-template", "milestone-001")) })
        .unwrap();
    let mut get = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        c.request(Request::Get { id: "milestone-001".into() }).unwrap();
        get.push(t.elapsed());
    }
    rows.push(Row { what: "`get` round trip, in-process client (seed template document)", figure: percentiles(&get) });
    let ratio = median(&get).as_secs_f64() / median(&echo).as_secs_f64();
    rows.push(Row { what: "`get` p50 / echo p50", figure: format!("{ratio:.2}x") });

    let msctl = binary("msctl");
    let mut whole = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let out = Command::new(&msctl).arg("--root").arg(&p.root).args(["get", "milestone-001"]).output().unwrap();
        assert!(out.status.success());
        whole.push(t.elapsed());
    }
    rows.push(Row { what: "whole-process `msctl get` (300 runs)", figure: percentiles(&whole) });

    let reads = concurrent_reads(&d.socket, 8, Duration::from_secs(3));
    rows.push(Row { what: "`get` throughput, 8 concurrent clients", figure: format!("{reads:.0} reads/s") });

    let small = small_doc();
    let n = 500;
    let t = Instant::now();
    for _ in 0..n {
        c.request(Request::Create { input: DocumentInput::Fields(small.clone()) }).unwrap();
    }
    rows.push(Row {
        what: "durable creates, 1 client (fsync file + folder)",
        figure: format!("{:.0} creates/s", n as f64 / t.elapsed().as_secs_f64()),
    });
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            let socket = d.socket.clone();
            let small = small.clone();
            s.spawn(move || {
                let mut c = Client::connect(&socket, "bench").unwrap();
                for _ in 0..n / 8 {
                    c.request(Request::Create { input: DocumentInput::Fields(small.clone()) }).unwrap();
                }
            });
        }
    });
    rows.push(Row {
        what: "durable creates, 8 clients",
        figure: format!("{:.0} creates/s", (n / 8 * 8) as f64 / t.elapsed().as_secs_f64()),
    });
    drop(c);
    drop(d);

    let big = Project::new();
    let active = big.milestones().join("active");
    std::fs::create_dir_all(&active).unwrap();
    for i in 0..10_000 {
        let id = format!("milestone-{i:05}");
        std::fs::write(active.join(format!("{id}.yaml")), template.replace("seed-template", &id)).unwrap();
    }
    let bytes: u64 = std::fs::read_dir(&active).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let mut starts = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let d = big.start(&[]);
        starts.push(t.elapsed());
        let mut c = d.client();
        match c.request(Request::Backend).unwrap() {
            Response::Backend(info) => assert_eq!(info.milestones, 10_000),
            other => panic!("{other:?}"),
        }
        drop(c);
        let _ = d.stop();
    }
    starts.sort();
    rows.push(Row {
        what: "start-up to serving, 10,000 milestone files",
        figure: format!(
            "{:.0} ms median of 3 ({:.1} MiB of YAML)",
            starts[1].as_secs_f64() * 1e3,
            bytes as f64 / 1048576.0
        ),
    });

    report(&rows);
}

fn small_doc() -> Value {
    let mut m = Map::new();
    m.insert("title", Value::from("benchmark milestone"));
    m.insert("category", Value::from("feature"));
    Value::Map(m)
}

fn echo_round_trips(payload: &[u8], n: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        while let Ok(Some(frame)) = read_frame(&mut s, DEFAULT_MAX_FRAME) {
            write_frame(&mut s, &frame, DEFAULT_MAX_FRAME).unwrap();
        }
    });
    let mut s = UnixStream::connect(&path).unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        write_frame(&mut s, payload, DEFAULT_MAX_FRAME).unwrap();
        read_frame(&mut s, DEFAULT_MAX_FRAME).unwrap().unwrap();
        out.push(t.elapsed());
    }
    drop(s);
    server.join().unwrap();
    out
}

fn concurrent_reads(socket: &Path, clients: usize, span: Duration) -> f64 {
    let t = Instant::now();
    let total: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(move || {
                    let mut c = Client::connect(socket, "bench").unwrap();
                    let mut n = 0;
                    while t.elapsed() < span {
                        c.request(Request::Get { id: "milestone-001".into() }).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total as f64 / t.elapsed().as_secs_f64()
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn report(rows: &[Row]) {
    let mut table = String::from("| measurement | figure |\n| --- | --- |\n");
    for r in rows {
        table.push_str(&format!("| {} | {} |\n", r.what, r.figure));
    }
    println!("{table}");
    let section = format!(
        "## Foundation (file backend)\n\nMachine: {} Release build.\n\nCommand: `cargo build --release --workspace && cargo bench -p milestones-e2e --bench foundation`\n\n{table}",
        machine()
    );
    write_section("foundation", &section);
}
