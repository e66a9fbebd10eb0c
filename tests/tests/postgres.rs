//! Several daemons on one PostgreSQL database, end to end: real daemons on
//! two project roots, a real server the tests start themselves (stopped and
//! started again for the outage test), `msctl` and `psql`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use milestones_e2e::postgres::{self, PgServer, PASSWORD};
use milestones_e2e::{eventually, Project};
use serde_json::Value;

/// `msctl watch --json` on a project, its lines handed over as they come.
struct Watch {
    child: Child,
    lines: Receiver<Value>,
}

impl Watch {
    fn start(p: &Project) -> Watch {
        let mut child = Command::new(milestones_e2e::binary("msctl"))
            .env("MSCTL_NO_AUTOSTART", "1")
            .arg("--root")
            .arg(&p.root)
            .args(["watch", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start msctl watch");
        let stdout = child.stdout.take().expect("watch stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str(&line) {
                    if sender.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        // Subscribed once the daemon has answered; a ping after it is
        // ordered behind the subscription.
        std::thread::sleep(Duration::from_millis(300));
        Watch { child, lines }
    }

    /// Waits for an event of `kind` on `id`; returns it and how long it took.
    fn expect(&self, kind: &str, id: &str, within: Duration) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let left = within.checked_sub(started.elapsed()).unwrap_or_default();
            match self.lines.recv_timeout(left) {
                Ok(event)
                    if event["kind"].as_str().is_some_and(|k| k.eq_ignore_ascii_case(kind)) && event["id"] == id =>
                {
                    return (event, started.elapsed())
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {kind} event for {id} within {within:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("msctl watch ended before a {kind} event for {id}"),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many milestones `msctl list` shows.
fn count(p: &Project) -> usize {
    p.msctl(&["list", "--json"]).json().as_array().expect("a JSON array").len()
}

fn title(p: &Project, id: &str) -> Option<String> {
    let run = p.msctl(&["get", id, "--json"]);
    (run.code == 0).then(|| run.json()["title"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn two_project_roots_share_one_database_and_hear_each_other() {
    let db = postgres::shared().database();
    // By TCP with a password, which must never be shown.
    let url = db.tcp_url();
    let a = Project::new();
    let daemon_a = a.start(&[]);
    a.msctl(&["create", "--id", "first", "--title", "Written on files"]).ok();
    a.msctl(&["create", "--id", "second", "--title", "Also on files", "--requires", "first"]).ok();
    let report = a.msctl(&["migrate", "database", "--database", "postgresql", "--url", &url, "--json"]).json();
    assert_eq!(
        (report["to"].as_str(), report["database"].as_str(), report["milestones"].as_u64()),
        (Some("database"), Some("postgresql"), Some(2))
    );
    let saved = a.milestones().join("database-url");
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600, "the saved URL is owner-only");
    assert_eq!(std::fs::read_to_string(&saved).unwrap().trim(), url);
    let backend = a.msctl(&["backend"]).ok().to_owned();
    assert!(backend.contains("postgresql://postgres:***@127.0.0.1:") && !backend.contains(PASSWORD), "{backend}");

    // A second root joins the database A filled; nothing is copied.
    let b = Project::new();
    let joined = b.msctl(&["init", "--backend", "database", "--database", "postgresql", "--url", &url, "--json"]);
    assert_eq!(joined.json()["backend"], "database", "{joined:?}");
    assert_eq!(count(&b), 2);
    assert_eq!(b.msctl(&["deps", "second", "--json"]).code, 0);

    // Each sees the other's creates, updates and deletes, by watch and get.
    let watch_b = Watch::start(&b);
    let watch_a = Watch::start(&a);
    a.msctl(&["create", "--id", "from-a", "--title", "Made by A"]).ok();
    let (event, took) = watch_b.expect("created", "from-a", Duration::from_secs(5));
    assert_eq!(event["source"], "SharedDatabase", "{event}");
    assert_eq!(title(&b, "from-a").as_deref(), Some("Made by A"));
    eprintln!("A's create reached B's watch in {took:?}");
    a.msctl(&["update", "from-a", "--set", "title=Renamed by A"]).ok();
    watch_b.expect("updated", "from-a", Duration::from_secs(5));
    assert_eq!(title(&b, "from-a").as_deref(), Some("Renamed by A"));
    b.msctl(&["create", "--id", "from-b", "--title", "Made by B"]).ok();
    watch_a.expect("created", "from-b", Duration::from_secs(5));
    assert_eq!(title(&a, "from-b").as_deref(), Some("Made by B"));
    b.msctl(&["delete", "from-a", "--purge"]).ok();
    watch_a.expect("deleted", "from-a", Duration::from_secs(5));
    assert_eq!(a.msctl(&["get", "from-a"]).code, 3);

    // B's `ready` follows A's writes as its watch does.
    let ready = |p: &Project| p.work_ids(&["ready"]);
    assert_eq!(ready(&b), ["first", "from-b"], "first heads a chain of two");
    a.msctl(&["complete", "first"]).ok();
    eventually("B's ready hears of A's complete", Duration::from_secs(5), || ready(&b) == ["from-b", "second"]);

    // Generated ids stay unique across the two daemons.
    let made: Vec<String> = (0..6)
        .map(|i| {
            let p = if i % 2 == 0 { &a } else { &b };
            p.msctl(&["create", "--title", "Numbered"]).ok().trim().to_owned()
        })
        .collect();
    let unique: std::collections::HashSet<&String> = made.iter().collect();
    assert_eq!(unique.len(), made.len(), "{made:?}");

    // Health: connected, hearing changes, the server's figures, users
    // counted across daemons.
    let health = b.msctl(&["health", "--json"]).json();
    let server = &health["database_server"];
    assert_eq!(
        (server["connection"].as_str(), server["listening"].as_bool()),
        (Some("connected"), Some(true)),
        "{health}"
    );
    assert!(server["database_size_bytes"].as_u64().unwrap() > 0, "{health}");
    assert!(server["cache_hit_ratio"].as_f64().is_some(), "{health}");
    assert_eq!(server["concurrent_users"], 1, "one user wrote through both daemons: {health}");
    assert!(!health.to_string().contains(PASSWORD));

    // B moves back out to files; A still serves the database.
    let out = b.msctl(&["migrate", "file", "--json"]).json();
    assert_eq!(out["to"], "file");
    assert!(b.milestones().join("active/from-b.yaml").is_file());
    assert_eq!(count(&a), count(&b));
    assert_eq!(db.psql("SELECT COUNT(*) FROM milestones WHERE data->>'status' != 'archived'"), count(&a).to_string());

    // No password in any log line.
    let log_b = std::fs::read_to_string(b.milestones().join("logs/milestoned.log")).unwrap_or_default();
    b.stop_background_daemon();
    let (_, log_a) = daemon_a.stop();
    for log in [&log_a, &log_b] {
        assert!(!log.contains(PASSWORD), "a password in the log: {log}");
    }
    assert!(log_b.contains("127.0.0.1"), "B's log names the server it joined: {log_b}");
}

#[test]
fn an_outage_fails_requests_fast_and_the_daemons_recover_without_a_restart() {
    let server = PgServer::start(false);
    let db = server.database();
    let (a, b) = (Project::on_postgresql(&db.url()), Project::on_postgresql(&db.url()));
    let (daemon_a, daemon_b) = (a.start(&[]), b.start(&[]));
    let watch_b = Watch::start(&b);
    a.msctl(&["create", "--id", "before", "--title", "Before the outage"]).ok();
    watch_b.expect("created", "before", Duration::from_secs(5));

    server.stop();
    let started = Instant::now();
    let failed = a.msctl(&["list"]);
    assert_eq!(failed.code, 7, "{failed:?}");
    assert!(
        failed.stderr.contains("PostgreSQL at") && failed.stderr.contains(".s.PGSQL."),
        "names the server: {failed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "failed fast: {:?}", started.elapsed());
    let health = a.msctl(&["health"]);
    assert_eq!(health.code, 5, "{health:?}");
    assert!(health.stdout.contains("cannot be reached"), "{health:?}");
    assert_eq!(a.msctl(&["ping"]).code, 0, "the daemon itself stays up");

    server.restart();
    eventually("A serves again", Duration::from_secs(20), || a.msctl(&["list"]).code == 0);
    a.msctl(&["create", "--id", "after", "--title", "After the outage"]).ok();
    // B hears of it, by notification or by catching up once it listens again.
    watch_b.expect("created", "after", Duration::from_secs(20));
    assert_eq!(title(&b, "after").as_deref(), Some("After the outage"));
    eventually("B listens again", Duration::from_secs(20), || {
        b.msctl(&["health", "--json"]).json()["database_server"]["listening"] == true
    });
    // Neither daemon restarted.
    assert_eq!(a.msctl(&["daemon", "status", "--json"]).json()["daemon"]["pid"], daemon_a.pid());
    assert_eq!(b.msctl(&["daemon", "status", "--json"]).json()["daemon"]["pid"], daemon_b.pid());
}

#[test]
fn a_database_with_a_newer_schema_is_refused_untouched() {
    let db = postgres::shared().database();
    let p = Project::on_postgresql(&db.url());
    drop(p.start(&[]));
    let known: i64 = db.psql("SELECT MAX(version) FROM milestoned_schema").parse().expect("a version");
    let newer = known + 1;
    db.psql(&format!("INSERT INTO milestoned_schema (version, applied_by) VALUES ({newer}, 'a newer milestoned')"));
    let daemon = p.spawn(&[]);
    let (code, stderr) = daemon.wait();
    assert_ne!(code, Some(0));
    let named = format!("schema version {newer}");
    assert!(stderr.contains(&named) && stderr.contains(&format!("knows version {known}")), "{stderr}");
    assert_eq!(db.psql("SELECT MAX(version) FROM milestoned_schema"), newer.to_string());
}

#[test]
fn the_url_comes_from_the_environment_or_start_up_says_how_to_give_it() {
    let db = postgres::shared().database();
    let p = Project::on_postgresql(&db.url());
    std::fs::remove_file(p.milestones().join("database-url")).unwrap();
    let (code, stderr) = p.spawn(&[]).wait();
    assert_ne!(code, Some(0));
    assert!(stderr.contains("no database URL is configured") && stderr.contains("MILESTONED_DATABASE_URL"), "{stderr}");
    let daemon = p.start_with_env(&[("MILESTONED_DATABASE_URL", &db.tcp_url())]);
    p.msctl(&["create", "--id", "by-env", "--title", "Through the environment"]).ok();
    assert_eq!(db.psql("SELECT title FROM milestones"), "Through the environment");
    let (_, log) = daemon.stop();
    assert!(!log.contains(PASSWORD), "{log}");
}

#[test]
fn a_server_stopped_mid_copy_fails_the_migration_losing_nothing_and_the_next_attempt_succeeds() {
    let server = PgServer::start(false);
    let db = server.database();
    let p = Project::new();
    let n = 4_000;
    milestones_e2e::corpus::generate(&p, n);
    let _d = p.start(&[]);
    let held = |p: &Project| p.msctl(&["backend", "--json"]).json()["milestones"].as_u64();
    assert_eq!(held(&p), Some(n as u64));
    let url = db.url();
    let copied = || {
        db.psql("SELECT to_regclass('milestones') IS NOT NULL") == "t"
            && db.psql("SELECT COUNT(*) FROM milestones").parse::<u64>().unwrap_or(0) > 0
    };
    let failed = std::thread::scope(|scope| {
        let migrating =
            scope.spawn(|| p.msctl(&["migrate", "database", "--database", "postgresql", "--url", &url, "--json"]));
        eventually("the copy has begun", Duration::from_secs(60), copied);
        server.stop();
        migrating.join().unwrap()
    });
    assert_ne!(failed.code, 0, "{failed:?}");
    assert!(failed.stderr.contains("PostgreSQL at"), "the error names the server: {failed:?}");
    assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], "file", "the backend is unchanged");
    assert_eq!(held(&p), Some(n as u64), "nothing lost");

    // What the copy left in the database could not be removed with the
    // server gone; the next attempt recognises it as its own and starts over.
    server.restart();
    let report = p.msctl(&["migrate", "database", "--database", "postgresql", "--url", &url, "--json"]).json();
    assert_eq!(report["milestones"], n as u64, "{report}");
    assert_eq!(db.psql("SELECT COUNT(*) FROM milestones"), n.to_string());
    assert_eq!(db.psql("SELECT COUNT(*) FROM milestoned_copies"), "0", "the copy is the project's now");
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes())) {
            found.push(path);
        }
    }
    found
}

/// No password needs to be in the project: against a server that asks for
/// one (scram-sha-256 over TCP), the daemon takes it from `PGPASSFILE`, or
/// from a `password_file` outside the repository that only its owner may
/// read; a password written into the tracked configuration is a warning.
#[test]
fn the_database_password_comes_from_outside_the_project() {
    let secrets = tempfile::tempdir().unwrap();
    let bare = |db: &postgres::TestDatabase| db.tcp_url().replace(&format!(":{PASSWORD}@"), "@");

    // From PGPASSFILE, as libpq users keep it.
    let db = postgres::shared().database();
    let pgpass = secrets.path().join("pgpass");
    std::fs::write(&pgpass, format!("# for the test\n*:*:*:postgres:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let a = Project::new();
    let daemon = a.start_with_env(&[("PGPASSFILE", pgpass.to_str().unwrap())]);
    a.msctl(&["create", "--id", "first", "--title", "Moved with a pgpass password"]).ok();
    let moved = a.msctl(&["migrate", "database", "--database", "postgresql", "--url", &bare(&db), "--json"]);
    assert_eq!(moved.json()["database"], "postgresql", "{moved:?}");
    assert_eq!(db.psql("SELECT COUNT(*) FROM milestones"), "1");
    assert_eq!(files_holding(&a.milestones(), PASSWORD), Vec::<std::path::PathBuf>::new());
    daemon.stop();

    // From password_file: refused while others may read it.
    let db = postgres::shared().database();
    let file = secrets.path().join("db-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let b = Project::new();
    b.write(
        ".milestones/config/storage-config.yaml",
        &format!("storage:\n  database:\n    password_file: {}\n", file.display()),
    );
    let _daemon = b.start(&[]);
    b.msctl(&["create", "--id", "second", "--title", "Moved with a password file"]).ok();
    let refused = b.msctl(&["migrate", "database", "--database", "postgresql", "--url", &bare(&db)]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("may be read by others (mode 0644)"), "{refused:?}");
    assert!(!refused.stderr.contains(PASSWORD));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let moved = b.msctl(&["migrate", "database", "--database", "postgresql", "--url", &bare(&db), "--json"]);
    assert_eq!(moved.json()["database"], "postgresql", "{moved:?}");
    assert_eq!(db.psql("SELECT COUNT(*) FROM milestones"), "1");
    assert_eq!(files_holding(&b.milestones(), PASSWORD), Vec::<std::path::PathBuf>::new());

    // From password_env: a variable of the daemon's environment.
    let db = postgres::shared().database();
    let e = Project::new();
    e.write(".milestones/config/storage-config.yaml", "storage:\n  database:\n    password_env: MS_TEST_DB_PASSWORD\n");
    let _daemon = e.start_with_env(&[("MS_TEST_DB_PASSWORD", PASSWORD)]);
    e.msctl(&["create", "--id", "third", "--title", "Moved with a password from the environment"]).ok();
    let moved = e.msctl(&["migrate", "database", "--database", "postgresql", "--url", &bare(&db), "--json"]);
    assert_eq!(moved.json()["database"], "postgresql", "{moved:?}");
    assert_eq!(files_holding(&e.milestones(), PASSWORD), Vec::<std::path::PathBuf>::new());

    // A password in the tracked configuration: health and validate warn,
    // without showing it.
    let c = Project::new();
    c.write(".milestones/config/storage-config.yaml", &format!("storage:\n  database:\n    url: {}\n", db.tcp_url()));
    let _daemon = c.start(&[]);
    for args in [&["health"][..], &["validate", "--all"][..]] {
        let out = c.msctl(args);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(text.contains("the database URL holds a password, in a file the team commits"), "{args:?}: {text}");
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

/// TLS as libpq users expect it, against a server of the test's own with
/// `ssl = on` and certificates the test made: `require` encrypts (and
/// `health` says so, and to what host), `verify-full` with the right root
/// certificate connects, with a wrong one it fails and says why, and
/// `disable` does not encrypt.
#[test]
fn tls_to_the_server_works_as_libpq_users_expect() {
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = postgres::TestCertificates::make(certs_dir.path());
    let server = PgServer::start_with_tls(&certs);
    let db = server.database();
    let url = |query: String| format!("{}?{query}", db.tcp_url());
    // Once the daemon's listener is connected too (right after a start it
    // may still be connecting: health then says `reconnecting`).
    let connection = |p: &Project| {
        eventually("health sees the server connected", Duration::from_secs(10), || {
            p.msctl(&["health", "--json"]).code == 0
        });
        p.msctl(&["health", "--json"]).json()["database_connection"].clone()
    };

    let a = Project::new();
    let _a = a.start(&[]);
    a.msctl(&["create", "--id", "first", "--title", "Over TLS"]).ok();
    let moved = a.msctl(&["migrate", "database", "--database", "postgresql", "--url", &url("sslmode=require".into())]);
    assert_eq!(moved.code, 0, "{moved:?}");
    let tls = connection(&a);
    assert_eq!(tls["encrypted"], true, "{tls}");
    assert!(tls["protocol"].as_str().is_some_and(|v| v.starts_with("TLSv1.")), "{tls}");
    assert_eq!(tls["host"].as_str(), db.tcp_url().split('@').nth(1).and_then(|rest| rest.split('/').next()));
    let text = a.msctl(&["health"]).ok().to_owned();
    assert!(text.contains("connection to 127.0.0.1:") && text.contains(": encrypted (TLSv1."), "{text}");

    // verify-full with the CA that signed the server's certificate.
    let b = Project::new();
    let full = url(format!("sslmode=verify-full&sslrootcert={}", certs.ca.display()));
    let joined = b.msctl(&["init", "--backend", "database", "--database", "postgresql", "--url", &full, "--json"]);
    assert_eq!(joined.json()["backend"], "database", "{joined:?}");
    let tls = connection(&b);
    assert_eq!(
        (tls["encrypted"].as_bool(), tls["checks"].as_str()),
        (Some(true), Some("certificate chain and host name"))
    );
    assert_eq!(b.msctl(&["get", "first", "--json"]).json()["title"], "Over TLS");
    b.stop_background_daemon();

    // verify-ca checks the chain and not the name.
    let v = Project::new();
    let ca_only = url(format!("sslmode=verify-ca&sslrootcert={}", certs.ca.display()));
    let joined = v.msctl(&["init", "--backend", "database", "--database", "postgresql", "--url", &ca_only, "--json"]);
    assert_eq!(joined.json()["backend"], "database", "{joined:?}");
    assert_eq!(connection(&v)["checks"], "certificate chain");
    v.stop_background_daemon();

    // With a root certificate that did not sign it: refused, and said why.
    let c = Project::new();
    let wrong = url(format!("sslmode=verify-full&sslrootcert={}", certs.other_ca.display()));
    let refused = c.msctl(&["init", "--backend", "database", "--database", "postgresql", "--url", &wrong]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("certificate") && refused.stderr.contains("UnknownIssuer"), "{refused:?}");
    assert!(!refused.stderr.contains(PASSWORD), "{refused:?}");
    c.stop_background_daemon();

    // disable: not encrypted, and health says so.
    let d = Project::new();
    let plain = d.msctl(&[
        "init",
        "--backend",
        "database",
        "--database",
        "postgresql",
        "--url",
        &url("sslmode=disable".into()),
    ]);
    assert_eq!(plain.code, 0, "{plain:?}");
    assert_eq!(connection(&d)["encrypted"], false);
    d.stop_background_daemon();
}
