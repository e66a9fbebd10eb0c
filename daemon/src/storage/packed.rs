//! `PackedDoc`: a milestone document as the file backend keeps it in
//! memory. A parsed document is a tree of maps, lists and strings, each its
//! own allocation: about 4 KB for a 0.9 KB YAML file. Packed, it is one
//! buffer smaller than the YAML, and reading it back costs about what
//! copying the tree did (2 µs), which every reply did anyway.
//!
//! The encoding is this module's own, because it stores each key name once
//! for the whole process ([`KeyNames`]) where a generic one writes it in
//! every document: documents share their schema. Strings sit in the buffer
//! as they are, so a search reads them there ([`PackedSearch`]) without
//! reading the document back.
//!
//! ```text
//! value := 0 (null) | 1 (false) | 2 (true) | 3 zigzag-varint (integer)
//!        | 4 f64 little-endian | 5 text | 6 varint value* (list)
//!        | 7 varint (key value)* (map)
//! key   := varint n > 0 (the name numbered n - 1) | 0 text
//! text  := varint length, UTF-8 bytes
//! ```

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock, RwLockReadGuard};

use memchr::memmem;
use milestones_protocol::{Map, Value};

use super::error::{StorageError, StorageResult};
use crate::search::{searchable_text, SearchTerms, SEARCHED_FIELDS};

pub struct PackedDoc {
    bytes: Box<[u8]>,
    /// Whether the text a search reads is ASCII, where lowercasing is
    /// byte for byte and the words a search finds are found in the bytes.
    ascii_text: bool,
}

impl PackedDoc {
    pub fn pack(doc: &Map) -> PackedDoc {
        let mut bytes = Vec::with_capacity(1024);
        write_map(&mut bytes, doc);
        PackedDoc { bytes: bytes.into_boxed_slice(), ascii_text: searchable_text(doc).is_ascii() }
    }

    pub fn unpack(&self) -> StorageResult<Map> {
        self.unpack_with(&KEY_NAMES.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn unpack_with(&self, names: &KeyNames) -> StorageResult<Map> {
        let mut reader = Reader { bytes: &self.bytes, names };
        match reader.value() {
            Some(Value::Map(map)) if reader.bytes.is_empty() => Ok(map),
            _ => Err(damaged()),
        }
    }
}

/// A search asked of many packed documents, read from their bytes without
/// reading them back. The key names it looks for are numbered once, and
/// the table of names is held for the whole search.
pub struct PackedSearch<'a> {
    terms: &'a SearchTerms,
    names: RwLockReadGuard<'static, KeyNames>,
    /// The numbers of the searched fields (`None`: never met, so in no
    /// document), then of `tasks` and of `title`.
    searched: [Option<u64>; SEARCHED_FIELDS.len()],
    tasks: Option<u64>,
    title: Option<u64>,
    found: Vec<bool>,
    /// Each word, found with SIMD in lowercased bytes: scanning for a
    /// word's first letter in either case stopped at every `r` of a text
    /// for `release`.
    finders: Vec<memmem::Finder<'a>>,
    /// The document being read, lowercased (ASCII only, so each byte keeps
    /// its place).
    lowered: Vec<u8>,
}

impl<'a> PackedSearch<'a> {
    pub fn new(terms: &'a SearchTerms) -> PackedSearch<'a> {
        let names = KEY_NAMES.read().unwrap_or_else(|p| p.into_inner());
        let number = |name: &str| names.numbers.get(name).copied();
        PackedSearch {
            terms,
            searched: SEARCHED_FIELDS.map(number),
            tasks: number("tasks"),
            title: number("title"),
            found: vec![false; terms.words().len()],
            finders: terms.words().iter().map(|w| memmem::Finder::new(w.as_bytes())).collect(),
            lowered: Vec::new(),
            names,
        }
    }

    /// Whether `doc` matches the search.
    pub fn matches(&mut self, doc: &PackedDoc) -> StorageResult<bool> {
        match self.matches_in_bytes(doc) {
            Some(found) => Ok(found),
            // The names are held already: reading them again could wait
            // behind a writer for ever.
            None => Ok(self.terms.matches(&doc.unpack_with(&self.names)?)),
        }
    }

    /// [`PackedSearch::matches`] from the bytes; `None` when the text is
    /// not ASCII, or the bytes cannot be read.
    fn matches_in_bytes(&mut self, doc: &PackedDoc) -> Option<bool> {
        if !doc.ascii_text {
            return None;
        }
        // ASCII text holds no other letter; and a word found nowhere in the
        // bytes, in any case, is in no field.
        if !self.terms.words().iter().all(|w| w.is_ascii()) {
            return Some(false);
        }
        self.lowered.clear();
        self.lowered.extend(doc.bytes.iter().map(u8::to_ascii_lowercase));
        if !self.finders.iter().all(|f| f.find(&self.lowered).is_some()) {
            return Some(false);
        }
        self.found.iter_mut().for_each(|f| *f = false);
        let (found, finders, lowered) = (&mut self.found, &self.finders, &self.lowered);
        // A field's text in the lowercased copy, at the same place: one
        // pass over the whole document costs less than one per field.
        let look = |found: &mut [bool], text: &[u8]| {
            let start = text.as_ptr() as usize - doc.bytes.as_ptr() as usize;
            look(found, finders, &lowered[start..start + text.len()])
        };
        let is = |key: &Key<'_>, number: Option<u64>, name: &str| match key {
            Key::Numbered(n) => Some(*n) == number,
            Key::Inline(text) => *text == name,
        };
        let mut reader = Reader { bytes: &doc.bytes, names: &self.names };
        if reader.byte()? != MAP {
            return None;
        }
        for _ in 0..reader.count()? {
            let key = reader.key_ref()?;
            if SEARCHED_FIELDS.iter().zip(self.searched).any(|(name, number)| is(&key, number, name)) {
                if let Some(text) = reader.text_bytes()? {
                    if look(found, text) {
                        // The rest cannot undo a match.
                        return Some(true);
                    }
                }
            } else if is(&key, self.tasks, "tasks") && reader.bytes.first() == Some(&LIST) {
                reader.byte()?;
                for _ in 0..reader.count()? {
                    if reader.bytes.first() != Some(&MAP) {
                        reader.skip()?;
                        continue;
                    }
                    reader.byte()?;
                    for _ in 0..reader.count()? {
                        let key = reader.key_ref()?;
                        if !is(&key, self.title, "title") {
                            reader.skip()?;
                        } else if let Some(text) = reader.text_bytes()? {
                            if look(found, text) {
                                return Some(true);
                            }
                        }
                    }
                }
            } else {
                reader.skip()?;
            }
        }
        Some(false)
    }
}

/// Notes which of the words `finders` look for begin a word of `text`
/// (lowercase ASCII); true once every one has been found.
fn look(found: &mut [bool], finders: &[memmem::Finder<'_>], text: &[u8]) -> bool {
    for (found, finder) in found.iter_mut().zip(finders) {
        *found = *found || finder.find_iter(text).any(|at| at == 0 || !text[at - 1].is_ascii_alphanumeric());
    }
    found.iter().all(|f| *f)
}

fn damaged() -> StorageError {
    StorageError::Damaged("a milestone document kept in memory cannot be read back".to_owned())
}

/// A key as a packed document holds it: by number, or written out.
enum Key<'b> {
    Numbered(u64),
    Inline(&'b str),
}

/// Key names stored once for every document of the process, numbered in
/// the order they were first met. Only the first [`KeyNames::MOST`] are
/// kept, so documents full of one-off keys cannot grow it without bound;
/// other keys are written out in full.
#[derive(Default)]
struct KeyNames {
    numbers: HashMap<Arc<str>, u64>,
    names: Vec<Arc<str>>,
}

impl KeyNames {
    const MOST: usize = 4096;
}

static KEY_NAMES: LazyLock<RwLock<KeyNames>> = LazyLock::new(RwLock::default);

/// The number of key `name`, numbering it when it is new and there is room.
fn key_number(name: &str) -> Option<u64> {
    if let Some(n) = KEY_NAMES.read().unwrap_or_else(|p| p.into_inner()).numbers.get(name) {
        return Some(*n);
    }
    let mut table = KEY_NAMES.write().unwrap_or_else(|p| p.into_inner());
    let table = &mut *table;
    if let Some(n) = table.numbers.get(name) {
        return Some(*n);
    }
    if table.names.len() >= KeyNames::MOST {
        return None;
    }
    let n = table.names.len() as u64;
    let name: Arc<str> = Arc::from(name);
    table.names.push(name.clone());
    table.numbers.insert(name, n);
    Some(n)
}

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const TEXT: u8 = 5;
const LIST: u8 = 6;
const MAP: u8 = 7;

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_text(out: &mut Vec<u8>, text: &str) {
    write_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn write_map(out: &mut Vec<u8>, map: &Map) {
    out.push(MAP);
    write_varint(out, map.len() as u64);
    for (key, value) in map.iter() {
        match key_number(key) {
            Some(n) => write_varint(out, n + 1),
            None => {
                write_varint(out, 0);
                write_text(out, key);
            }
        }
        write_value(out, value);
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            write_varint(out, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::String(s) => {
            out.push(TEXT);
            write_text(out, s);
        }
        Value::List(items) => {
            out.push(LIST);
            write_varint(out, items.len() as u64);
            items.iter().for_each(|item| write_value(out, item));
        }
        Value::Map(map) => write_map(out, map),
    }
}

/// Reads a packed document back; `None` at anything this module did not
/// write (a bug, never input).
struct Reader<'a> {
    bytes: &'a [u8],
    names: &'a KeyNames,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = (self.bytes.get(..n)?, self.bytes.get(n..)?);
        self.bytes = rest;
        Some(taken)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn count(&mut self) -> Option<usize> {
        // Every item takes at least a byte: a count beyond that is damage.
        usize::try_from(self.varint()?).ok().filter(|n| *n <= self.bytes.len())
    }

    /// A length, then that many bytes.
    fn raw_text(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        self.take(len)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.raw_text()?.to_vec()).ok()
    }

    /// The key that comes next, as it is held.
    fn key_ref(&mut self) -> Option<Key<'a>> {
        match self.varint()? {
            0 => std::str::from_utf8(self.raw_text()?).ok().map(Key::Inline),
            n => Some(Key::Numbered(n - 1)),
        }
    }

    /// The name of the key that comes next.
    fn key(&mut self) -> Option<&'a str> {
        match self.key_ref()? {
            Key::Inline(text) => Some(text),
            Key::Numbered(n) => self.names.names.get(usize::try_from(n).ok()?).map(|name| &**name),
        }
    }

    /// Passes over the next value without building it.
    fn skip(&mut self) -> Option<()> {
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            INT => {
                self.varint()?;
            }
            FLOAT => {
                self.take(8)?;
            }
            TEXT => {
                self.raw_text()?;
            }
            LIST => {
                for _ in 0..self.count()? {
                    self.skip()?;
                }
            }
            MAP => {
                for _ in 0..self.count()? {
                    self.key_ref()?;
                    self.skip()?;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// The next value's bytes when it is text (`Some(None)`, passed over,
    /// when it is not).
    fn text_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        if self.bytes.first() != Some(&TEXT) {
            return self.skip().map(|()| None);
        }
        self.byte()?;
        self.raw_text().map(Some)
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => {
                let n = self.varint()?;
                Value::Int(((n >> 1) as i64) ^ -((n & 1) as i64))
            }
            FLOAT => Value::Float(f64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            TEXT => Value::String(self.text()?),
            LIST => {
                let n = self.count()?;
                Value::List((0..n).map(|_| self.value()).collect::<Option<_>>()?)
            }
            MAP => {
                let n = self.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.key()?.to_owned();
                    entries.push((key, self.value()?));
                }
                Value::Map(Map::from_entries(entries).ok()?)
            }
            _ => return None,
        })
    }
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
        let d =
            doc("id: m-1\ntitle: Ünïcode ✓\nprogress: {percentage: 40}\ntasks: [{id: t-1, done: true, hours: 1.5}]\n\
             x: null\nlow: -9223372036854775808\nhigh: 9223372036854775807\nno: false\n\
             long: [[[]], {}, '', -1.0e-300]\n");
        assert_eq!(PackedDoc::pack(&d).unpack().unwrap(), d);
    }

    #[test]
    fn a_search_read_from_the_bytes_agrees_with_the_document() {
        let docs = [
            "id: auth-ui\ntitle: Authentication rewrite\ncategory: security\n",
            "id: m-2\ntitle: Reauth flow\ndescription: 'OAuth2, then SSO; x-auth'\n",
            "id: m-3\ntitle: 42\ntasks: [{title: Wire the OAuth flow, status: done}, 7, {id: t-2}]\nowner: {title: auth}\n",
            "id: m-4\ntitle: [auth]\ndescription: null\ncategory: {auth: auth}\nnotes: auth\n",
            "id: m-5\ntitle: Ünïcode auth\n",
        ];
        let searches =
            ["auth", "AUTH rew", "oauth", "thent", "auth2", "sso x", "flow wire", "42", "security", "m", "é"];
        for yaml in docs {
            let d = doc(yaml);
            let packed = PackedDoc::pack(&d);
            for text in searches {
                let terms = terms(text);
                let mut search = PackedSearch::new(&terms);
                assert_eq!(search.matches(&packed).unwrap(), terms.matches(&d), "{text:?} in {yaml:?}");
                let from_bytes = search.matches_in_bytes(&packed).is_some();
                assert_eq!(from_bytes, searchable_text(&d).is_ascii(), "only text beyond ASCII is read back");
            }
        }
    }

    #[test]
    fn keys_beyond_the_shared_names_are_written_in_full() {
        let mut d = Map::new();
        for n in 0..KeyNames::MOST + 10 {
            d.insert(format!("key-{n}"), Value::Int(n as i64));
        }
        assert_eq!(PackedDoc::pack(&d).unpack().unwrap(), d);
        assert!(KEY_NAMES.read().unwrap().names.len() <= KeyNames::MOST);
    }

    #[test]
    fn damaged_bytes_are_an_error() {
        let packed = PackedDoc::pack(&doc("id: m-1\ntitle: t\n"));
        let mut bytes = packed.bytes.to_vec();
        bytes.pop();
        let cut = PackedDoc { bytes: bytes.into_boxed_slice(), ascii_text: true };
        assert!(matches!(cut.unpack(), Err(StorageError::Damaged(_))));
        let foreign = PackedDoc { bytes: Box::new([MAP, 0xff, 0xff, 0xff, 0xff, 0x0f]), ascii_text: true };
        assert!(foreign.unpack().is_err());
    }

    #[test]
    fn text_beyond_ascii_is_read_back_to_be_searched() {
        let d = PackedDoc::pack(&doc("id: m-1\ntitle: Kubernetes rollout\ntasks: [{title: Wire OAuth}]\n"));
        let found = |doc: &PackedDoc, text: &str| PackedSearch::new(&terms(text)).matches(doc).unwrap();
        assert!(found(&d, "KUBER"));
        assert!(found(&d, "oauth rollout"));
        assert!(!found(&d, "kubernetes helm"), "every word must be somewhere");
        assert!(!found(&d, "xyz"));
        // Lowercasing beyond ASCII is not byte for byte (the Kelvin sign
        // lowercases to `k`): such documents are read back and matched.
        let kelvin = PackedDoc::pack(&doc("id: m-2\ntitle: \"\u{212A}ubernetes\"\n"));
        assert_eq!(PackedSearch::new(&terms("kubernetes")).matches_in_bytes(&kelvin), None);
        assert!(found(&kelvin, "kubernetes"));
    }
}
