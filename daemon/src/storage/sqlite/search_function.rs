//! `search_matches(body, words)`: the search rule of [`crate::search`] as
//! an SQL function, asked of the text the search index holds for a row.
//!
//! A search most milestones match is read along its order's index, each
//! row's text asked as the walk meets it: looking the rows up among the
//! full-text index's matches instead first builds the set of every match
//! (15 ms for 100,000 in the `sqlite3` shell), for a page of 20.

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

use crate::search::SearchTerms;

/// The function's name in SQL.
pub const NAME: &str = "search_matches";

/// Makes [`NAME`] known to `conn`. `words` is bound as the search's words
/// joined by spaces ([`SearchTerms::words`]), parsed once per statement.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function(NAME, 2, flags, |ctx| {
        let terms = ctx.get_or_create_aux(1, |words| -> Result<SearchTerms, String> {
            let words = words.as_str_or_null().map_err(|e| format!("the search words: {e}"))?;
            SearchTerms::parse(words)?.ok_or_else(|| "no words to search for".to_owned())
        })?;
        // No text (no search row) matches nothing.
        Ok(ctx.get_raw(0).as_str_or_null()?.is_some_and(|body| terms.matches_text(body)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_follows_the_search_rule() {
        let conn = Connection::open_in_memory().expect("open");
        register(&conn).expect("register");
        let asks = |body: Option<&str>, words: &str| -> bool {
            conn.query_row(&format!("SELECT {NAME}(?, ?)"), rusqlite::params![body, words], |r| r.get(0)).expect("ask")
        };
        assert!(asks(Some("m-1\nAuthentication rewrite\n"), "auth rew"));
        assert!(!asks(Some("m-1\nAuthentication rewrite\n"), "thent"), "words match from their start");
        assert!(!asks(Some("m-1\nAuthentication rewrite\n"), "auth missing"), "every word must be found");
        assert!(asks(Some("Ünïcode ÉTÉ\n"), "été"));
        assert!(!asks(None, "auth"), "no text matches nothing");
        let refused = conn.query_row(&format!("SELECT {NAME}('x', ';--')"), [], |r| r.get::<_, bool>(0));
        assert!(refused.is_err_and(|e| e.to_string().contains("no letters or digits")), "words must hold a word");
    }
}
