//! Full-text search: how text is cut into words. The in-memory engine and the
//! SQLite FTS5 index share these rules, so `msctl search` finds the same
//! milestones on every backend.
//!
//! A word is a run of letters and digits (FTS5's `unicode61` tokenizer with
//! diacritics kept), compared case-insensitively. Every word of the search
//! must begin some word of the milestone: `auth` finds "Authentication".

use milestones_protocol::{Map, Value};

/// Fields whose text is searched, besides every task's title.
pub const SEARCHED_FIELDS: [&str; 4] = ["id", "title", "description", "category"];

/// The words a search looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// `Ok(None)` when there is nothing to search for; an error when the text
    /// is not empty yet holds no word (only punctuation, say), since matching
    /// everything or nothing would both surprise.
    pub fn parse(text: Option<&str>) -> Result<Option<SearchTerms>, String> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else { return Ok(None) };
        let words = words(text);
        if words.is_empty() {
            return Err(format!("the search text {text:?} has no letters or digits to look for"));
        }
        Ok(Some(SearchTerms(words)))
    }

    /// The lowercased words looked for.
    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// True when every term begins some word of the document's searched text.
    pub fn matches(&self, doc: &Map) -> bool {
        self.matches_text(&searchable_text(doc))
    }

    /// True when every term begins some word of `text` (a document's
    /// [`searchable_text`], as a search index holds it).
    pub fn matches_text(&self, text: &str) -> bool {
        // Terms are letters and digits only, so a match that starts a word
        // stays inside it: no need to cut the text into words.
        let text = text.to_lowercase();
        self.0.iter().all(|term| {
            text.match_indices(term.as_str())
                .any(|(at, _)| text[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric()))
        })
    }

    /// The PostgreSQL `tsquery`: each term prefix-matched (`'auth':*`),
    /// all required. Read as a `tsquery` literal, not parsed by a text
    /// search configuration, so it means exactly these lowercased words.
    pub fn tsquery_expression(&self) -> String {
        self.0.iter().map(|t| format!("'{}':*", lexeme(t))).collect::<Vec<_>>().join(" & ")
    }

    /// The FTS5 `MATCH` expression: each term quoted (so no character of the
    /// user's text is ever read as FTS syntax) and prefix-matched.
    pub fn fts_expression(&self) -> String {
        // Terms hold only letters and digits, so they never contain a quote.
        self.0.iter().map(|t| format!("\"{t}\"*")).collect::<Vec<_>>().join(" ")
    }
}

/// Longest word PostgreSQL's full-text index keeps (its lexemes are
/// limited to 2 KiB): longer words, and search terms, are cut at this many
/// bytes alike, so they still find each other.
const MAX_LEXEME_BYTES: usize = 1024;

fn lexeme(word: &str) -> &str {
    let mut end = word.len().min(MAX_LEXEME_BYTES);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

/// A document's searched text as a PostgreSQL `tsvector` literal: its words
/// as they are (lowercased letters and digits need no quoting beyond the
/// quotes themselves), for the same rules as every other backend.
pub fn tsvector_literal(text: &str) -> String {
    let mut words: Vec<String> = words(text).iter().map(|w| format!("'{}'", lexeme(w))).collect();
    words.sort_unstable();
    words.dedup();
    words.join(" ")
}

/// Lowercased runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The text a document is searched by: the searched fields and task titles,
/// one per line.
pub fn searchable_text(doc: &Map) -> String {
    let mut text = String::new();
    for field in SEARCHED_FIELDS {
        if let Some(s) = doc.get(field).and_then(Value::as_str) {
            text.push_str(s);
            text.push('\n');
        }
    }
    for task in doc.get("tasks").and_then(Value::as_list).unwrap_or(&[]) {
        if let Some(s) = task.as_map().and_then(|t| t.get("title")).and_then(Value::as_str) {
            text.push_str(s);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Map {
        crate::yaml::parse_document(yaml, "test").unwrap()
    }

    #[test]
    fn words_are_prefixes_of_words_in_any_case() {
        let d = doc("id: m-1\ntitle: Authentication rewrite\ntasks: [{title: Wire the OAuth flow}]\n");
        let terms = |t| SearchTerms::parse(Some(t)).unwrap().unwrap();
        assert!(terms("auth").matches(&d));
        assert!(terms("AUTH rew").matches(&d));
        assert!(terms("oauth").matches(&d));
        assert!(!terms("thent").matches(&d), "words match from their start, not in the middle");
        assert!(!terms("auth missing").matches(&d), "every word must be found");
    }

    #[test]
    fn punctuation_only_text_is_refused_and_quotes_never_reach_fts() {
        assert!(SearchTerms::parse(Some(";--")).is_err());
        assert_eq!(SearchTerms::parse(Some("  ")).unwrap(), None);
        let t = SearchTerms::parse(Some("x\" OR 1=1; DROP--")).unwrap().unwrap();
        assert_eq!(t.fts_expression(), "\"x\"* \"or\"* \"1\"* \"1\"* \"drop\"*");
    }
}
