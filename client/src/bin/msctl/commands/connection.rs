//! Whether msctl reaches a daemon, and which one: `ping` and `version`.

use milestones_client::protocol::{Request, Response, PROTOCOL_VERSION};
use milestones_client::Client;

use crate::args::Cli;
use crate::render::Output;
use crate::{locate, Failure};

/// `msctl ping`: the daemon's version, pid and round-trip time.
pub fn ping(client: &mut Client, out: &Output) -> Result<u8, Failure> {
    let started = std::time::Instant::now();
    let reply = client.request(Request::Ping)?;
    let elapsed = started.elapsed();
    if let Response::Pong { daemon_version, uptime_ms } = reply {
        let w = client.welcome();
        out.print_json_or(
            &serde_json::json!({ "daemon_version": daemon_version, "pid": w.pid, "uptime_ms": uptime_ms, "round_trip_us": elapsed.as_micros() as u64 }),
            || format!("pong from milestoned {daemon_version} (pid {}) in {:.2} ms", w.pid, elapsed.as_secs_f64() * 1e3),
        );
    }
    Ok(0)
}

/// `msctl version`: msctl's version, and the daemon's when one is running
/// (never starts one).
pub fn version(cli: &Cli) -> Result<u8, Failure> {
    let mine = env!("CARGO_PKG_VERSION");
    let daemon =
        locate(cli).ok().and_then(|t| Client::connect(&t.socket, "msctl").ok().map(|c| (t, c.welcome().clone())));
    let out = Output { json: cli.json };
    out.print_json_or(
        &serde_json::json!({
            "msctl": mine,
            "protocol": PROTOCOL_VERSION,
            "daemon": daemon.as_ref().map(|(t, w)| serde_json::json!({ "version": w.daemon_version, "protocol": w.protocol_version, "pid": w.pid, "socket": t.socket })),
        }),
        || match &daemon {
            Some((t, w)) => format!(
                "msctl {mine} (protocol {PROTOCOL_VERSION})\nmilestoned {} (protocol {}, pid {}) at {}",
                w.daemon_version,
                w.protocol_version,
                w.pid,
                t.socket.display()
            ),
            None => format!("msctl {mine} (protocol {PROTOCOL_VERSION})\nmilestoned: not running"),
        },
    );
    Ok(0)
}
