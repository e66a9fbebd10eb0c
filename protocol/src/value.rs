//! `Value`: a milestone document (or any part of one) as it travels on the wire.
//!
//! Documents are user-written YAML with fields we do not know about, so they
//! cannot be a fixed struct. `serde_json::Value` would be the obvious choice,
//! but bincode cannot carry it (it needs a self-describing format). `Value`
//! serialises two ways:
//!
//! * to human-readable formats (JSON, YAML) as the plain value: `{"a": [1, true]}`;
//! * to compact formats (bincode) as a tagged enum, which bincode can decode.
//!
//! Maps keep their key order, so a document written in one order is returned in
//! the same order.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A document value. Integers that fit in `i64` stay integers; everything
/// else numeric is a float.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    Map(Map),
}

/// An ordered map with string keys. Documents have a handful of keys per
/// level, so a vector beats a hash map and keeps the user's order for free.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map(Vec<(String, Value)>);

impl Map {
    pub fn new() -> Self {
        Map(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, keeping its position when it exists and appending otherwise.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// A map of `entries` as read (a frame, a file), in their order; the
    /// first key that appears twice is the error. Linear in the number of
    /// entries however many there are, so a hostile frame of a hundred
    /// thousand keys costs no more to refuse than to read.
    pub fn from_entries(entries: Vec<(String, Value)>) -> Result<Map, String> {
        // A handful of keys (every real document): comparing beats hashing.
        const SMALL: usize = 16;
        if entries.len() <= SMALL {
            for (i, (key, _)) in entries.iter().enumerate() {
                if entries[..i].iter().any(|(k, _)| k == key) {
                    return Err(key.clone());
                }
            }
        } else {
            let mut seen = std::collections::HashSet::with_capacity(entries.len());
            if let Some((key, _)) = entries.iter().find(|(k, _)| !seen.insert(k.as_str())) {
                return Err(key.clone());
            }
        }
        Ok(Map(entries))
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    /// Follows a dotted path from this map (see [`Value::pointer`]).
    pub fn pointer(&self, path: &str) -> Option<&Value> {
        let (first, rest) = match path.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (path, None),
        };
        let value = self.get(first)?;
        match rest {
            Some(rest) => value.pointer(rest),
            None => Some(value),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Reorders the entries: keys named in `order` first, in that order, then
    /// the rest as they were.
    pub fn reorder(&mut self, order: &[&str]) {
        let mut front = Vec::with_capacity(self.0.len());
        for key in order {
            if let Some(pos) = self.0.iter().position(|(k, _)| k == key) {
                front.push(self.0.remove(pos));
            }
        }
        front.append(&mut self.0);
        self.0 = front;
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut map = Map::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Follows a dotted path (`progress.percentage`, `tasks.0.title`).
    pub fn pointer(&self, path: &str) -> Option<&Value> {
        let mut cur = self;
        for seg in path.split('.') {
            cur = match cur {
                Value::Map(m) => m.get(seg)?,
                Value::List(l) => l.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// A short name for the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "mapping",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}

// ---- serialisation -------------------------------------------------------

/// Variant names of the compact (bincode) form. Their indices are the wire
/// tags and must never change; append new kinds at the end.
const VARIANTS: &[&str] = &["Null", "Bool", "Int", "Float", "String", "List", "Map"];

/// The compact form of a map: a sequence of (key, value) pairs.
struct Entries<'a>(&'a Map);

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for entry in &self.0 .0 {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return match self {
                Value::Null => s.serialize_unit(),
                Value::Bool(b) => s.serialize_bool(*b),
                Value::Int(i) => s.serialize_i64(*i),
                Value::Float(f) => s.serialize_f64(*f),
                Value::String(v) => s.serialize_str(v),
                Value::List(l) => {
                    let mut seq = s.serialize_seq(Some(l.len()))?;
                    for v in l {
                        seq.serialize_element(v)?;
                    }
                    seq.end()
                }
                Value::Map(m) => {
                    let mut map = s.serialize_map(Some(m.len()))?;
                    for (k, v) in m.iter() {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                }
            };
        }
        match self {
            Value::Null => s.serialize_unit_variant("Value", 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant("Value", 1, "Bool", b),
            Value::Int(i) => s.serialize_newtype_variant("Value", 2, "Int", i),
            Value::Float(f) => s.serialize_newtype_variant("Value", 3, "Float", f),
            Value::String(v) => s.serialize_newtype_variant("Value", 4, "String", v),
            Value::List(l) => s.serialize_newtype_variant("Value", 5, "List", l),
            Value::Map(m) => s.serialize_newtype_variant("Value", 6, "Map", &Entries(m)),
        }
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut map = s.serialize_map(Some(self.len()))?;
            for (k, v) in self.iter() {
                map.serialize_entry(k, v)?;
            }
            map.end()
        } else {
            Entries(self).serialize(s)
        }
    }
}

/// Reads the plain (human-readable) form.
struct PlainVisitor;

impl<'de> Visitor<'de> for PlainVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a document value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = access.next_key::<Key>()? {
            entries.push((key.0, access.next_value()?));
        }
        unique_keys(entries)
    }
}

fn unique_keys<E: de::Error>(entries: Vec<(String, Value)>) -> Result<Value, E> {
    Map::from_entries(entries).map(Value::Map).map_err(|key| E::custom(format_args!("duplicate key `{key}`")))
}

/// A mapping key. YAML allows non-string keys (`1: x`, `true: y`); documents
/// keep them as their text so nothing the user wrote is dropped.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Key, E> {
                Ok(Key(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("null".to_owned()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// Reads the compact (tagged) form.
struct TaggedVisitor;

impl<'de> Visitor<'de> for TaggedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tagged document value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (u32, _) = data.variant()?;
        Ok(match tag {
            0 => {
                variant.unit_variant()?;
                Value::Null
            }
            1 => Value::Bool(variant.newtype_variant()?),
            2 => Value::Int(variant.newtype_variant()?),
            3 => Value::Float(variant.newtype_variant()?),
            4 => Value::String(variant.newtype_variant()?),
            5 => Value::List(variant.newtype_variant()?),
            6 => unique_keys(variant.newtype_variant()?)?,
            other => {
                return Err(de::Error::invalid_value(
                    de::Unexpected::Unsigned(other.into()),
                    &"a value tag from 0 to 6",
                ))
            }
        })
    }
}

/// How deep lists and maps may nest in a value read from anywhere (a
/// frame, a YAML file, a stored JSON row). Reading is recursive: without a
/// bound, a small frame nesting thousands deep overflows the reader's
/// stack and takes the process down. The bound also keeps every accepted
/// value within what JSON readers take back (serde_json stops at 128), so
/// what is stored can always be read again.
pub const MAX_NESTING: usize = 100;

thread_local! {
    /// Lists and maps open in the value being read on this thread.
    static NESTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One level of nesting, given back when dropped (also on an error).
struct Nested;

impl Nested {
    fn enter<E: de::Error>() -> Result<Nested, E> {
        NESTING.with(|depth| {
            if depth.get() >= MAX_NESTING {
                return Err(E::custom(format_args!("lists and maps nest more than {MAX_NESTING} deep")));
            }
            depth.set(depth.get() + 1);
            Ok(Nested)
        })
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTING.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _level = Nested::enter::<D::Error>()?;
        if d.is_human_readable() {
            d.deserialize_any(PlainVisitor)
        } else {
            d.deserialize_enum("Value", VARIANTS, TaggedVisitor)
        }
    }
}

impl<'de> Deserialize<'de> for Map {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The compact form is what `Map` writes: its entries, untagged.
        let value = if d.is_human_readable() {
            Value::deserialize(d)?
        } else {
            let _level = Nested::enter::<D::Error>()?;
            unique_keys(Vec::<(String, Value)>::deserialize(d)?)?
        };
        match value {
            Value::Map(m) => Ok(m),
            other => Err(de::Error::custom(format_args!("expected a mapping, found a {}", other.type_name()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list nested `depth` deep around one integer, built (and later
    /// dropped) on a thread with room for the recursion.
    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::Int(1), |inner, _| Value::List(vec![inner]))
    }

    fn on_a_big_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new().stack_size(256 << 20).spawn(work).unwrap().join().unwrap()
    }

    #[test]
    fn a_map_reads_back_in_both_forms() {
        use crate::codec::{decode, encode};
        use crate::Encoding;
        let map = Map::from_entries(vec![
            ("id".to_owned(), Value::from("m-1")),
            ("tasks".to_owned(), Value::List(vec![Value::Map(Map::new()), Value::Int(3)])),
        ])
        .unwrap();
        for encoding in [Encoding::Bincode, Encoding::Json] {
            assert_eq!(decode::<Map>(encoding, &encode(encoding, &map).unwrap()).unwrap(), map, "{encoding:?}");
        }
    }

    #[test]
    fn values_nesting_too_deep_are_refused_not_a_stack_overflow() {
        use crate::codec::{decode, encode};
        use crate::Encoding;
        let (deep, fits) = on_a_big_stack(|| {
            let deep = encode(Encoding::Bincode, &nested(5_000)).unwrap();
            let fits = encode(Encoding::Bincode, &nested(MAX_NESTING - 1)).unwrap();
            (deep, fits)
        });
        // Read on an ordinary thread: an error, not an abort.
        let refused = decode::<Value>(Encoding::Bincode, &deep).unwrap_err().to_string();
        assert!(refused.contains("nest more than 100 deep"), "{refused}");
        let read = decode::<Value>(Encoding::Bincode, &fits).unwrap();
        assert_eq!(read, nested(MAX_NESTING - 1));
        // The count starts again after a refusal.
        assert_eq!(decode::<Value>(Encoding::Bincode, &fits).unwrap(), read);
        let json = format!("{}1{}", "[".repeat(MAX_NESTING + 5), "]".repeat(MAX_NESTING + 5));
        let refused = serde_json::from_str::<Value>(&json).unwrap_err().to_string();
        assert!(refused.contains("nest more than 100 deep"), "{refused}");
        on_a_big_stack(move || drop(read));
    }

    fn sample() -> Value {
        let mut inner = Map::new();
        inner.insert("percentage", Value::Int(40));
        inner.insert("ratio", Value::Float(0.5));
        let mut m = Map::new();
        m.insert("zeta", Value::from("last-but-first"));
        m.insert("progress", Value::Map(inner));
        m.insert("tags", Value::List(vec![Value::Bool(true), Value::Null]));
        Value::Map(m)
    }

    /// Found by the `yaml_documents` fuzz target: without serde_json's
    /// exact float parsing, a float stored as JSON (the SQL backends) read
    /// back one bit off.
    #[test]
    fn floats_come_back_from_json_exactly() {
        for f in [-2.1425e54, 0.1, 1e-300, 123456.789e200, f64::MAX, f64::MIN_POSITIVE] {
            let json = serde_json::to_string(&Value::Float(f)).unwrap();
            assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), Value::Float(f), "{json}");
        }
    }

    #[test]
    fn json_form_is_plain_and_keeps_key_order() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(json, r#"{"zeta":"last-but-first","progress":{"percentage":40,"ratio":0.5},"tags":[true,null]}"#);
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn bincode_form_round_trips() {
        let bytes = bincode::serialize(&sample()).unwrap();
        let back: Value = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = serde_json::from_str::<Value>(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key `a`"), "{err}");
        // Wide maps too, in both encodings: found by hashing, not by
        // comparing every key with every other.
        let mut entries: Vec<(String, Value)> = (0..50_000).map(|i| (format!("k{i}"), Value::Int(i))).collect();
        let wide = Value::Map(Map::from_entries(entries.clone()).unwrap());
        let bytes = bincode::serialize(&wide).unwrap();
        assert_eq!(bincode::deserialize::<Value>(&bytes).unwrap(), wide);
        entries.push(("k7".to_owned(), Value::Null));
        assert_eq!(Map::from_entries(entries.clone()), Err("k7".to_owned()));
        let json = serde_json::to_string(&Value::Map(Map(entries))).unwrap();
        let err = serde_json::from_str::<Value>(&json).unwrap_err();
        assert!(err.to_string().contains("duplicate key `k7`"), "{err}");
    }

    #[test]
    fn pointer_follows_maps_and_lists() {
        let v = sample();
        assert_eq!(v.pointer("progress.percentage"), Some(&Value::Int(40)));
        assert_eq!(v.pointer("tags.0"), Some(&Value::Bool(true)));
        assert_eq!(v.pointer("tags.9"), None);
        assert_eq!(v.pointer("missing.path"), None);
    }
}
