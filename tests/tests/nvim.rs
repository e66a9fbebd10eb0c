//! The Neovim plugin (client/editors/nvim), driven headless by
//! tests/nvim/plugin_test.lua against a real daemon: open the list, open a
//! milestone, change a field and save it through the daemon, see an
//! outside `msctl update` appear in the open list, mark a task done.

use std::path::Path;
use std::process::Command;

use milestones_e2e::{binary, Project};

#[test]
fn the_neovim_plugin_lists_opens_saves_and_refreshes() {
    let p = Project::new();
    let _d = p.start(&[]);
    p.msctl(&["create", "--title", "Alpha", "--id", "alpha"]).ok();
    p.msctl(&["task", "add", "alpha", "--title", "First step"]).ok();
    p.msctl(&["create", "--title", "Beta", "--id", "beta"]).ok();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plugin = here.join("../client/editors/nvim").canonicalize().unwrap();
    let script = here.join("nvim/plugin_test.lua");
    let result = p.root.join("nvim-result");
    let run = Command::new("timeout")
        .arg("60")
        .args(["nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n"])
        .args(["--cmd", &format!("set rtp+={}", plugin.display())])
        .args(["-c", &format!("luafile {}", script.display())])
        .current_dir(&p.root)
        .env("MILESTONES_ROOT", &p.root)
        .env("MSCTL", binary("msctl"))
        .env("MSCTL_NO_AUTOSTART", "1")
        .env("RESULT", &result)
        .output()
        .expect("Neovim is installed (.ci/run installs Debian's neovim)");
    let outcome = std::fs::read_to_string(&result).unwrap_or_else(|_| format!("no result; nvim said {run:?}"));
    assert_eq!(outcome, "ok", "{run:?}");
    let alpha = p.msctl(&["get", "alpha", "--json"]).json();
    assert_eq!(alpha["title"], "Renamed in Neovim", "saved through the daemon");
    assert_eq!(alpha["tasks"][0]["status"], "completed", "marked done from the list");
}
