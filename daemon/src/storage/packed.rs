//! `PackedDoc`: a milestone document as the file backend keeps it in
//! memory. A parsed document is a tree of maps, lists and strings, each its
//! own allocation: about 4 KB for a 0.9 KB YAML file. Packed, it is one
//! buffer (bincode with variable-length integers) of about the YAML's size,
//! and reading it back costs about what copying the tree did (2 µs), which
//! every reply did anyway.
//!
//! Strings sit in the buffer as they are, so a search can rule a document
//! out by looking for its words in the bytes, without reading it back.

use bincode::Options;
use milestones_protocol::Map;

use super::error::{StorageError, StorageResult};
use crate::search::{searchable_text, SearchTerms};

pub struct PackedDoc {
    bytes: Box<[u8]>,
    /// Whether the text a search reads is ASCII, where lowercasing is
    /// byte for byte and the words a search finds are found in the bytes.
    ascii_text: bool,
}

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_varint_encoding().with_little_endian().reject_trailing_bytes()
}

impl PackedDoc {
    pub fn pack(doc: &Map) -> StorageResult<PackedDoc> {
        let bytes = options()
            .serialize(doc)
            .map_err(|e| StorageError::Damaged(format!("cannot pack a milestone document in memory: {e}")))?;
        Ok(PackedDoc { bytes: bytes.into_boxed_slice(), ascii_text: searchable_text(doc).is_ascii() })
    }

    pub fn unpack(&self) -> StorageResult<Map> {
        options()
            .deserialize(&self.bytes)
            .map_err(|e| StorageError::Damaged(format!("cannot read back a milestone document kept in memory: {e}")))
    }

    /// False when the document cannot match `terms`: its text is ASCII and
    /// some word is nowhere in it, in any case. True otherwise, so the
    /// caller still checks the document itself.
    pub fn may_match(&self, terms: &SearchTerms) -> bool {
        !self.ascii_text || terms.words().iter().all(|w| !w.is_ascii() || contains_ignoring_case(&self.bytes, w))
    }
}

/// Whether `word` (lowercase ASCII) occurs in `bytes` in any ASCII case.
fn contains_ignoring_case(bytes: &[u8], word: &str) -> bool {
    let word = word.as_bytes();
    let Some((&first, rest)) = word.split_first() else { return true };
    let mut from = 0;
    while let Some(at) = memchr::memchr2(first, first.to_ascii_uppercase(), &bytes[from..]) {
        let start = from + at + 1;
        if bytes.get(start..start + rest.len()).is_some_and(|b| b.eq_ignore_ascii_case(rest)) {
            return true;
        }
        from = start;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Map {
        crate::yaml::parse_document(yaml, "test").unwrap()
    }

    fn terms(text: &str) -> SearchTerms {
        SearchTerms::parse(Some(text)).unwrap().unwrap()
    }

    #[test]
    fn a_packed_document_reads_back_as_it_was() {
        let d = doc("id: m-1\ntitle: Ünïcode ✓\nprogress: {percentage: 40}\ntasks: [{id: t-1, done: true, hours: 1.5}]\nx: null\n");
        assert_eq!(PackedDoc::pack(&d).unwrap().unpack().unwrap(), d);
    }

    #[test]
    fn only_documents_lacking_a_word_are_ruled_out() {
        let d = PackedDoc::pack(&doc("id: m-1\ntitle: Kubernetes rollout\ntasks: [{title: Wire OAuth}]\n")).unwrap();
        assert!(d.may_match(&terms("KUBER")));
        assert!(d.may_match(&terms("oauth rollout")));
        assert!(!d.may_match(&terms("kubernetes helm")), "every word must be somewhere");
        assert!(!d.may_match(&terms("xyz")));
        // Lowercasing beyond ASCII is not byte for byte (the Kelvin sign
        // lowercases to `k`): such documents are never ruled out.
        let kelvin = PackedDoc::pack(&doc("id: m-2\ntitle: \"\u{212A}ubernetes\"\n")).unwrap();
        assert!(kelvin.may_match(&terms("kubernetes")));
        assert!(terms("kubernetes").matches(&kelvin.unpack().unwrap()));
    }
}
