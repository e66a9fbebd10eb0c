//! `milestoned`: the per-project milestone daemon. Everything lives in the
//! library; see [`milestoned::lifecycle`] for the order of start-up.

fn main() -> std::process::ExitCode {
    milestoned::lifecycle::main()
}
