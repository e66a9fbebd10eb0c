//! Who may do what (`storage.access`), with real users: the daemon runs as
//! root (the project's owner); `msctl` runs as `nobody` (a reader by name),
//! as a uid whose group, made for the test, is a writer, and as a uid on
//! no line of the list. Needs root, to run processes as other users and to
//! make the group: otherwise the test fails and says so.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use milestones_e2e::{binary, eventually, Project};

const NOBODY: (u32, u32) = (65534, 65534);

/// A group that exists for one test, removed when dropped.
struct TestGroup {
    name: String,
    gid: u32,
}

impl TestGroup {
    fn create() -> TestGroup {
        let gid = 54_000 + std::process::id() % 900;
        let name = format!("ms-access-{gid}");
        let _ = Command::new("groupdel").arg(&name).status();
        let made = Command::new("groupadd").args(["-g", &gid.to_string(), &name]).status();
        assert!(made.is_ok_and(|s| s.success()), "groupadd {name} failed (is the shadow `passwd` package installed?)");
        TestGroup { name, gid }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

/// `msctl` as another user, from a copy inside the project (the build
/// folder may be out of their reach).
struct OtherUser<'a> {
    project: &'a Project,
    program: PathBuf,
    uid: u32,
    gid: u32,
}

impl OtherUser<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .arg("--root")
            .arg(&self.project.root)
            .args(args)
            .env("MSCTL_NO_AUTOSTART", "1")
            .env_remove("XDG_RUNTIME_DIR")
            .uid(self.uid)
            .gid(self.gid);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run msctl as another user")
    }

    /// `msctl watch --json`, its lines as they come.
    fn watch(&self) -> (Child, Receiver<String>) {
        let mut child =
            self.command(&["watch", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        (child, rx)
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn socket_mode(p: &Project) -> (u32, u32) {
    let meta = std::fs::metadata(p.milestones().join("milestoned.sock")).unwrap();
    (meta.permissions().mode() & 0o777, meta.gid())
}

fn access_list(p: &Project, lines: &[String]) {
    let list: String = lines.iter().map(|l| format!("    - {l}\n")).collect();
    p.write(".milestones/config/storage-config.yaml", &format!("storage:\n  access:\n{list}"));
}

/// Waits until `rx` has a line holding `needle`.
fn expect_line(rx: &Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => eprintln!("(not it) {line}"),
            Err(e) => panic!("no line with `{needle}` within 10 s: {e}"),
        }
    }
}

#[test]
fn roles_from_the_access_list_decide_who_may_do_what() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs processes as other users and makes a group: run it as root"
    );
    let group = TestGroup::create();
    let p = Project::new();
    std::fs::set_permissions(&p.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let program = p.root.join("msctl-for-others");
    std::fs::copy(binary("msctl"), &program).unwrap();
    let as_user = |uid, gid| OtherUser { project: &p, program: program.clone(), uid, gid };
    let reader = as_user(NOBODY.0, NOBODY.1);
    let writer = as_user(54_322, group.gid);
    let stranger = as_user(54_323, 54_323);

    let reader_line = "{ user: nobody, role: reader }".to_owned();
    let writer_line = format!("{{ group: {}, role: writer }}", group.name);
    access_list(&p, &[reader_line, writer_line.clone()]);
    let daemon = p.start(&[]);
    assert_eq!(socket_mode(&p).0, 0o666, "a user and a group: open to all, the peer check decides");
    p.msctl(&["create", "--id", "first", "--title", "Made by the owner"]).ok();

    // A reader lists and gets, and may not create: nothing changes, and the
    // refusal is in the audit trail with the user.
    let listed = reader.run(&["list", "--json"]);
    assert!(listed.status.success() && text(&listed).contains("first"), "{}", text(&listed));
    assert!(reader.run(&["get", "first"]).status.success());
    let refused = reader.run(&["create", "--title", "Not allowed"]);
    assert_eq!(refused.status.code(), Some(8), "{}", text(&refused));
    assert!(
        text(&refused).contains("permission denied: nobody is a reader on this project; create needs the writer role"),
        "{}",
        text(&refused)
    );
    assert_eq!(p.msctl(&["list", "--json"]).json().as_array().unwrap().len(), 1, "nothing was created");
    let audit = std::fs::read_to_string(p.milestones().join("logs/storage-events.jsonl")).unwrap();
    let denial = audit.lines().find(|l| l.contains("permission_denied")).expect("the refusal is audited");
    assert!(denial.contains("\"nobody\"") && denial.contains("\"writer\""), "{denial}");

    // A plan that names a server connects to it: an admin's request.
    let plan = reader.run(&[
        "migrate",
        "database",
        "--database",
        "postgresql",
        "--url",
        "postgresql://x@127.0.0.1:9/db",
        "--dry-run",
    ]);
    assert_eq!(plan.status.code(), Some(8), "{}", text(&plan));
    assert!(text(&plan).contains("needs the admin role"), "{}", text(&plan));

    // A writer (by group) creates, and may not migrate.
    let created = writer.run(&["create", "--id", "second", "--title", "By the group"]);
    assert!(created.status.success(), "{}", text(&created));
    let migrate = writer.run(&["migrate", "database"]);
    assert_eq!(migrate.status.code(), Some(8), "{}", text(&migrate));
    assert!(text(&migrate).contains("needs the admin role"), "{}", text(&migrate));
    assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], "file", "no migration ran");

    // Someone on no line is turned away when they connect.
    let turned_away = stranger.run(&["list"]);
    assert_eq!(turned_away.status.code(), Some(6), "{}", text(&turned_away));
    assert!(
        text(&turned_away).contains("neither this project's owner nor on its access list"),
        "{}",
        text(&turned_away)
    );

    // The reader leaves the list: after SIGHUP their next request and their
    // watch are refused; the writer's watch goes on.
    let (mut reader_watch, reader_lines) = reader.watch();
    let (mut writer_watch, writer_lines) = writer.watch();
    p.msctl(&["update", "first", "--set", "priority=high"]).ok();
    expect_line(&reader_lines, "\"first\"");
    expect_line(&writer_lines, "\"first\"");
    access_list(&p, &[writer_line]);
    daemon.signal(libc::SIGHUP);
    eventually("the reader is refused after SIGHUP", Duration::from_secs(10), || {
        reader.run(&["list"]).status.code() == Some(6)
    });
    assert_eq!(socket_mode(&p), (0o660, group.gid), "one group: the socket is that group's");
    p.msctl(&["create", "--id", "third", "--title", "After the change"]).ok();
    expect_line(&writer_lines, "\"third\"");
    expect_line(&reader_lines, "not on this project's access list");
    assert!(reader_watch.wait().is_ok_and(|s| !s.success()), "the reader's watch ends");
    assert!(writer_watch.try_wait().unwrap().is_none(), "the writer's watch goes on");
    let _ = writer_watch.kill();
    let _ = writer_watch.wait();

    // No list, and no SIGHUP: the daemon sees the file change, and the
    // socket is owner-only again.
    p.write(".milestones/config/storage-config.yaml", "storage: {}\n");
    eventually("the socket is owner-only again", Duration::from_secs(10), || socket_mode(&p).0 == 0o600);
    let refused = writer.run(&["list"]);
    assert_eq!(refused.status.code(), Some(6), "{}", text(&refused));
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
}
