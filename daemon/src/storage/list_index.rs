//! `ListIndex`: the file backend's ordered indexes, so that a list page
//! costs what it returns rather than a sort of every document.
//!
//! Every core text field (and `priority`, by rank) keeps its milestones in
//! order, with those that lack the field apart; a milestone's status,
//! priority and category are kept beside, with how many milestones hold
//! each combination of the three. A query ordered by one such field (or by
//! none: newest first), filtered by equality on status, priority and
//! category, and without search text, is answered by walking one order
//! until the page is full; its total is a sum over the combinations. Any
//! other query is left to the reference engine ([`crate::query::run`]),
//! whose answers these must equal (the conformance suite checks).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use milestones_protocol::{FilterOp, Map, Query, Value};

// The fields whose combinations are counted, status first, as the
// database backends count them.
use super::error::StorageResult;
use super::record::COUNTED as FACETS;
use crate::document::PRIORITIES;

/// Fields a list can be ordered by from an index: the core text fields
/// (`priority` among them by rank).
const ORDERED: [&str; 8] = crate::query::TEXT_FIELDS;

type Id = Arc<str>;

#[derive(Default)]
pub struct ListIndex {
    orders: [Order; ORDERED.len()],
    /// Asked for every milestone a list walks past: hashed fast.
    facets: HashMap<Id, Facets, foldhash::fast::RandomState>,
    counts: HashMap<Facets, usize>,
    /// Status, priority and category names, shared by every milestone
    /// that holds them.
    names: HashSet<Arc<str>>,
}

/// One field's order: (sort key, id) of each milestone holding the field,
/// and the ids of those that do not (listed last, whatever the direction).
#[derive(Default)]
struct Order {
    present: BTreeSet<(Arc<str>, Id)>,
    missing: BTreeSet<Id>,
}

/// What the index filters on: a milestone's status, priority and
/// category, where they are text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
struct Facets([Option<Arc<str>>; 3]);

impl Facets {
    fn admits(&self, wanted: &[Option<&str>; 3], archived: bool) -> bool {
        let status = self.0[0].as_deref();
        (archived || status != Some("archived"))
            && self.0.iter().zip(wanted).all(|(held, wanted)| wanted.is_none_or(|w| held.as_deref() == Some(w)))
    }
}

/// `doc`'s core text fields, in [`ORDERED`]'s order, each when it is
/// text (the query rule), read in one pass over the document's keys.
fn core_fields(doc: &Map) -> [Option<&str>; ORDERED.len()] {
    let mut found = [None; ORDERED.len()];
    for (key, value) in doc.iter() {
        if let Some(at) = ORDERED.iter().position(|f| f == key) {
            found[at] = value.as_str();
        }
    }
    found
}

/// The key a milestone sorts by on `field`, whose text is `text`, as
/// text that orders as the reference engine does: the text itself, the
/// rank for `priority` (missing when not one of the four).
fn sort_key<'a>(field: &str, text: &'a str) -> Option<Cow<'a, str>> {
    if field == "priority" {
        let rank = PRIORITIES.iter().position(|p| *p == text)?;
        return Some(Cow::Owned(rank.to_string()));
    }
    Some(Cow::Borrowed(text))
}

/// Where `field`, one of [`ORDERED`], sits in it.
fn place(field: &str) -> usize {
    ORDERED.iter().position(|f| *f == field).expect("one of the core text fields")
}

impl ListIndex {
    /// Every milestone's id, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.orders[place("id")].present.iter().map(|(_, id)| &**id)
    }

    /// Takes in a milestone whose id is not held.
    fn insert(&mut self, doc: &Map) {
        let Some((id, keys)) = self.take_in(doc) else { return };
        for (order, key) in self.orders.iter_mut().zip(keys) {
            match key {
                Some(key) => order.present.insert((key, id.clone())),
                None => order.missing.insert(id.clone()),
            };
        }
    }

    /// Notes and counts `doc`'s status, priority and category; returns
    /// its id and its key in each order (`None`: the field is missing).
    fn take_in(&mut self, doc: &Map) -> Option<(Id, [Option<Arc<str>>; ORDERED.len()])> {
        let fields = core_fields(doc);
        let id: Id = Arc::from(fields[place("id")]?);
        let facets = Facets(FACETS.map(|f| fields[place(f)].map(|name| self.intern(name))));
        *self.counts.entry(facets.clone()).or_default() += 1;
        self.facets.insert(id.clone(), facets);
        let mut keys: [Option<Arc<str>>; ORDERED.len()] = Default::default();
        for (at, field) in ORDERED.into_iter().enumerate() {
            keys[at] = match fields[at].and_then(|text| sort_key(field, text)) {
                None => None,
                Some(_) if field == "id" => Some(id.clone()),
                // Few distinct values: their keys are shared.
                Some(key) if FACETS.contains(&field) => Some(self.intern(&key)),
                Some(key) => Some(Arc::from(key.as_ref())),
            };
        }
        Some((id, keys))
    }

    /// Replaces `old` (when there was one) by `new`.
    pub fn insert_after(&mut self, old: Option<&Map>, new: &Map) {
        if let Some(old) = old {
            self.remove(old);
        }
        self.insert(new);
    }

    /// Forgets a milestone as [`ListIndex::insert`] took it in.
    pub fn remove(&mut self, doc: &Map) {
        let fields = core_fields(doc);
        let Some(id) = fields[place("id")] else { return };
        let held: Id = Arc::from(id);
        for ((order, field), text) in self.orders.iter_mut().zip(ORDERED).zip(fields) {
            match text.and_then(|text| sort_key(field, text)) {
                Some(key) => order.present.remove(&(Arc::from(key.as_ref()), held.clone())),
                None => order.missing.remove(id),
            };
        }
        if let Some(facets) = self.facets.remove(id) {
            if let Some(n) = self.counts.get_mut(&facets) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&facets);
                }
            }
        }
    }

    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(held) = self.names.get(name) {
            return held.clone();
        }
        let name: Arc<str> = Arc::from(name);
        self.names.insert(name.clone());
        name
    }

    /// The page `query` asks for, when this index can answer it (see the
    /// module's documentation); `doc` reads a milestone by id, and
    /// `searched`, when given, says whether one matches the query's search
    /// text (a search is answered only with it: every milestone is asked,
    /// for the total). Every query it answers is well formed (known
    /// fields, text values), so only those it leaves to the reference
    /// engine need checking.
    pub fn answer(
        &self,
        query: &Query,
        mut searched: Option<&mut Searched<'_>>,
        mut doc: impl FnMut(&str) -> StorageResult<Option<Map>>,
    ) -> Option<StorageResult<milestones_protocol::Page>> {
        if query.text.is_some() && searched.is_none() {
            return None;
        }
        let default_sort = crate::query::default_sort();
        let key = match query.sort.as_slice() {
            [] => &default_sort[0],
            [key] => key,
            _ => return None,
        };
        let (field, descending) = (ORDERED.iter().position(|f| *f == key.path)?, key.descending);
        let mut wanted: [Option<&str>; 3] = [None; 3];
        for filter in &query.filters {
            let at = FACETS.iter().position(|f| *f == filter.path)?;
            match (filter.op, &filter.value, wanted[at]) {
                (FilterOp::Eq, Value::String(value), None) => wanted[at] = Some(value),
                // Two values for one field: nothing matches both unless they agree.
                (FilterOp::Eq, Value::String(value), Some(other)) if other == value => {}
                _ => return None,
            }
        }
        let archived = crate::query::wants_archived(query);
        let mut found = |id: &str| searched.as_mut().map_or(Ok(true), |searched| searched(id));
        let total = if query.text.is_some() {
            let mut total = 0;
            for (id, facets) in &self.facets {
                if facets.admits(&wanted, archived) {
                    match found(id) {
                        Ok(true) => total += 1,
                        Ok(false) => {}
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
            total
        } else {
            self.counts.iter().filter(|(f, _)| f.admits(&wanted, archived)).map(|(_, n)| n).sum::<usize>()
        };
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let limit = query.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        if total <= offset {
            // Nothing to walk to (a status no milestone has, say).
            return Some(Ok(milestones_protocol::Page { items: Vec::new(), total: total as u64 }));
        }
        let mut items = Vec::new();
        let mut skipped = 0;
        let mut failed = None;
        self.orders[field].walk(descending, &mut |id| {
            if items.len() >= limit {
                return false;
            }
            if !self.facets.get(id).is_some_and(|f| f.admits(&wanted, archived)) {
                return true;
            }
            match found(id) {
                Ok(true) => {}
                Ok(false) => return true,
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
            if skipped < offset {
                skipped += 1;
                return true;
            }
            match doc(id) {
                Ok(Some(doc)) => items.push(Value::Map(doc)),
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
            true
        });
        Some(match failed {
            Some(e) => Err(e),
            None => Ok(milestones_protocol::Page { items, total: total as u64 }),
        })
    }
}

/// Whether a milestone, by id, matches a search.
pub type Searched<'a> = dyn FnMut(&str) -> StorageResult<bool> + 'a;

/// A [`ListIndex`] built in bulk (a start-up at 100,000 milestones): each
/// order is sorted once at the end rather than grown entry by entry.
#[derive(Default)]
pub struct ListIndexBuilder {
    index: ListIndex,
    present: [Vec<(Arc<str>, Id)>; ORDERED.len()],
    missing: [Vec<Id>; ORDERED.len()],
}

impl ListIndexBuilder {
    pub fn add(&mut self, doc: &Map) {
        let Some((id, keys)) = self.index.take_in(doc) else { return };
        for (at, key) in keys.into_iter().enumerate() {
            match key {
                Some(key) => self.present[at].push((key, id.clone())),
                None => self.missing[at].push(id.clone()),
            }
        }
    }

    pub fn finish(self) -> ListIndex {
        let mut index = self.index;
        for ((order, present), missing) in index.orders.iter_mut().zip(self.present).zip(self.missing) {
            *order = Order { present: present.into_iter().collect(), missing: missing.into_iter().collect() };
        }
        index
    }
}

impl Order {
    /// Visits the ids in order (ties by id ascending, missing values last)
    /// until `visit` says stop.
    fn walk(&self, descending: bool, visit: &mut dyn FnMut(&Id) -> bool) {
        if descending {
            // Key by key from the largest, each key's ids ascending: the
            // entries backwards, each key's gathered and given in reverse.
            let mut key: Option<&Arc<str>> = None;
            let mut ids: Vec<&Id> = Vec::new();
            for (k, id) in self.present.iter().rev() {
                if key != Some(k) {
                    if ids.drain(..).rev().any(|id| !visit(id)) {
                        return;
                    }
                    key = Some(k);
                }
                ids.push(id);
            }
            if ids.drain(..).rev().any(|id| !visit(id)) {
                return;
            }
        } else {
            for (_, id) in &self.present {
                if !visit(id) {
                    return;
                }
            }
        }
        for id in &self.missing {
            if !visit(id) {
                return;
            }
        }
    }
}
