//! The size limits of one milestone (README, PROTOCOL.md §5): refused on
//! every way in with the limit named, never holding others up, and lists
//! that stay whole however large the milestones in them are.

use std::fmt::Write as _;

use milestones_e2e::protocol::{DocumentInput, ErrorKind, Map, Query, Request, Response, Value};
use milestones_e2e::{ClientError, Project, BACKENDS};

/// A document with `keys` extra keys, as YAML.
fn wide_yaml(id: &str, keys: usize) -> String {
    let mut text = format!("id: {id}\ntitle: Wide\nstatus: planning\n");
    for i in 0..keys {
        let _ = writeln!(text, "k{i}: 1");
    }
    text
}

fn create_from(p: &Project, name: &str, yaml: &str) -> milestones_e2e::Run {
    let path = p.write(name, yaml);
    p.msctl(&["create", "--from-file", path.to_str().unwrap()])
}

#[test]
fn a_document_over_a_limit_is_refused_on_every_backend_with_the_limit_named() {
    for backend in BACKENDS {
        let p = Project::on_backend(backend);
        let d = p.start(&[]);
        // Just under the limit of values: taken, read back, updated.
        create_from(&p, "wide.yaml", &wide_yaml("wide", 9_900)).ok();
        p.msctl(&["update", "wide", "--set", "k5=2"]).ok();
        let got = p.msctl(&["get", "wide", "--json"]).json();
        assert_eq!((got["k5"].as_i64(), got["k9899"].as_i64()), (Some(2), Some(1)), "{backend}");

        // One hundred thousand keys: refused, and named.
        create_from(&p, "wider.yaml", &wide_yaml("wider", 100_000)).fails(4, "more than 10000 values");
        // Updates are held to the same limits.
        let long = "x".repeat(70_000);
        let mut client = d.client();
        let set = |path: &str, value: Value| {
            milestones_e2e::protocol::Change::Set(vec![milestones_e2e::protocol::Assignment {
                path: path.into(),
                value,
            }])
        };
        match client.request(Request::Update { id: "wide".into(), change: set("notes", Value::String(long)) }) {
            Err(ClientError::Daemon(e)) => {
                assert_eq!(e.kind, ErrorKind::TooLarge, "{backend}: {e:?}");
                assert_eq!(e.field.as_deref(), Some("notes"), "{backend}: {e:?}");
                assert!(e.message.contains("70000 bytes long"), "{backend}: {e:?}");
            }
            other => panic!("{backend}: a 70,000-byte string was not refused: {other:?}"),
        }
        let adding = (0..200).map(|i| (format!("more{i}"), Value::Int(i))).collect::<Vec<_>>();
        let mut extra = Map::new();
        for (k, v) in adding {
            extra.insert(k, v);
        }
        match client.request(Request::Update { id: "wide".into(), change: set("extra", Value::Map(extra)) }) {
            Err(ClientError::Daemon(e)) => assert_eq!(e.kind, ErrorKind::TooLarge, "{backend}: {e:?}"),
            other => panic!("{backend}: growing past the limit was not refused: {other:?}"),
        }
        // Nothing refused was kept; the milestone is as it was.
        let after = p.msctl(&["get", "wide", "--json"]).json();
        assert_eq!(after, got, "{backend}: a refused update changed nothing");
        assert_eq!(p.msctl(&["get", "wider"]).code, 3, "{backend}: the refused milestone does not exist");
    }
}

#[test]
fn a_frame_of_a_hundred_thousand_keys_is_refused_while_others_are_served() {
    let p = Project::new();
    let d = p.start(&[]);
    let mut entries = vec![("title".to_owned(), Value::from("Enormous"))];
    entries.extend((0..100_000).map(|i| (format!("k{i}"), Value::Int(i))));
    let doc = Map::from_entries(entries).unwrap();
    let writer = std::thread::spawn({
        let mut client = d.client();
        move || client.request(Request::Create { input: DocumentInput::Fields(Value::Map(doc)) })
    });
    p.msctl(&["create", "--title", "meanwhile"]).ok();
    match writer.join().unwrap() {
        Err(ClientError::Daemon(e)) => {
            assert_eq!(e.kind, ErrorKind::TooLarge, "{e:?}");
            assert!(e.message.contains("more than 10000 values"), "{e:?}");
        }
        other => panic!("the enormous milestone was not refused: {other:?}"),
    }
    assert_eq!(p.msctl(&["list", "--json"]).json().as_array().map(Vec::len), Some(1));
}

#[test]
fn a_file_over_a_limit_is_named_and_never_read_whole() {
    for backend in BACKENDS {
        let p = Project::on_backend(backend);
        let _d = p.start(&[]);
        p.msctl(&["create", "--title", "Neighbour", "--id", "neighbour"]).ok();
        // Two MiB of text, and a hundred thousand keys in under a MiB.
        let big = format!("id: big\ntitle: Big\nnotes: {}\n", "y".repeat(2 * 1024 * 1024));
        p.write(".milestones/active/big.yaml", &big);
        p.write(".milestones/active/many.yaml", &wide_yaml("many", 100_000));
        milestones_e2e::eventually(
            &format!("validate names both files on {backend}"),
            std::time::Duration::from_secs(20),
            || {
                let run = p.msctl(&["validate", "--all"]);
                run.code == 5
                    && run.stdout.contains("active/big.yaml")
                    && run.stdout.contains("at most 1048576 bytes")
                    && run.stdout.contains("active/many.yaml")
                    && run.stdout.contains("more than 10000 values")
            },
        );
        let ids: Vec<_> =
            p.msctl(&["list", "--json"]).json().as_array().unwrap().iter().map(|m| m["id"].clone()).collect();
        assert_eq!(ids, ["neighbour"], "{backend}: only the neighbour is served");
        // Left as written, for the user to split.
        assert_eq!(std::fs::read_to_string(p.milestones().join("active/big.yaml")).unwrap(), big, "{backend}");
    }
}

#[test]
fn a_list_of_milestones_larger_than_a_frame_arrives_whole() {
    let p = Project::new();
    let d = p.start(&[]);
    // Twenty milestones of about 900 KB each: 18 MB, over the 16 MiB frame.
    let chunk = "z".repeat(60_000);
    for i in 0..20 {
        let mut yaml = format!("id: heavy-{i:02}\ntitle: Heavy {i}\nstatus: planning\n");
        for j in 0..15 {
            let _ = writeln!(yaml, "part{j}: {chunk}");
        }
        create_from(&p, &format!("heavy-{i}.yaml"), &yaml).ok();
    }
    // One request: as many as fit, and the total that matched.
    match d.client().request(Request::List { query: Query::default() }) {
        Ok(Response::Page(page)) => {
            assert_eq!(page.total, 20);
            assert!(!page.items.is_empty() && page.items.len() < 20, "{} items in one frame", page.items.len());
        }
        other => panic!("the list failed: {other:?}"),
    }
    // msctl (and the client library) ask for the rest.
    let listed = p.msctl(&["list", "--json"]).json();
    let mut ids: Vec<_> = listed.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every milestone once");
    let found = p.msctl(&["search", "Heavy", "--json"]).json();
    assert_eq!(found.as_array().map(Vec::len), Some(20));
}

/// A list with no limit, read in chunks and replies sized to the frame,
/// is exactly its pages read one by one: every milestone once, in order.
#[test]
fn a_whole_list_is_its_pages_in_order() {
    const N: usize = 2_500;
    let ids = |run: milestones_e2e::Run| -> Vec<String> {
        run.json().as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
    };
    for backend in ["file", "database"] {
        let p = Project::new();
        milestones_e2e::corpus::generate(&p, N);
        // The default frame holds them all (read 1,000 at a time); a
        // 256 KiB frame holds about 250, so msctl asks ten times.
        for frame in ["16777216", "262144"] {
            let _d = p.start(&["--max-frame-bytes", frame]);
            if backend != "file" && frame == "16777216" {
                p.msctl(&["migrate", backend]).ok();
            }
            for order in [&["list", "--json"][..], &["list", "--json", "--sort", "-title"]] {
                let whole = ids(p.msctl(order));
                let mut pages = Vec::new();
                for offset in (0..N).step_by(700) {
                    let offset = offset.to_string();
                    pages.extend(ids(p.msctl(&[order, &["--limit", "700", "--offset", &offset]].concat())));
                }
                assert_eq!(whole.len(), N, "{backend}, frame {frame}, {order:?}");
                assert_eq!(whole, pages, "{backend}, frame {frame}, {order:?}");
            }
            // Every generated description mentions a release train.
            let mut found = ids(p.msctl(&["search", "release", "--json"]));
            found.sort();
            found.dedup();
            assert_eq!(found.len(), N, "{backend}, frame {frame}: search");
        }
    }
}
