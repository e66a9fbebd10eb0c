//! What standard output is: whether it gets colour (a terminal, and never
//! with `NO_COLOR` or `TERM=dumb`), and how wide tables may be (`COLUMNS`,
//! else the terminal's width; a pipe or file gets every character).

use std::io::IsTerminal;
use std::sync::OnceLock;

/// Whether to colour standard output; decided once.
pub fn colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR.get_or_init(|| {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        std::io::stdout().is_terminal() && !no_color && !dumb
    })
}

/// `text` in the SGR style `code` (`1` bold, `31` red, ...) when colouring.
pub fn paint(text: &str, code: &str) -> String {
    if colour() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A milestone's or task's status (the first word of `text`) in its
/// colour.
pub fn status(text: &str) -> String {
    let code = match text.split_whitespace().next().unwrap_or_default() {
        "planning" => "34",
        "in_progress" => "33",
        "blocked" => "31",
        "completed" => "32",
        "cancelled" | "archived" | "pending" => "2",
        _ => return text.to_owned(),
    };
    paint(text, code)
}

/// The width a table may take: `COLUMNS`, else the terminal's; `None` when
/// standard output is not a terminal.
pub fn width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()) {
        return Some(columns.max(20));
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills the winsize it is given and nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let asked = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (asked == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// `text` cut to `width` characters, the cut marked with `…`.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
