//! `msctl completions SHELL` and `msctl man`: generated from the same clap
//! definitions that parse the command line, so they never fall behind it.

use clap::CommandFactory;

use crate::args::Cli;
use crate::{exit, Failure};

pub fn completions(shell: &str) -> Result<u8, Failure> {
    let shell = match shell {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        "fish" => clap_complete::Shell::Fish,
        other => return Err(Failure::new(exit::USAGE, format!("no completions for the `{other}` shell"))),
    };
    clap_complete::generate(shell, &mut Cli::command(), "msctl", &mut std::io::stdout());
    Ok(0)
}

pub fn man_page() -> Result<u8, Failure> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| Failure::new(exit::FAILURE, format!("cannot write the manual page: {e}")))?;
    Ok(0)
}
