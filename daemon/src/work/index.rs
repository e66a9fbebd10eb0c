//! [`WorkIndex`]: a project's open work kept between requests, so that
//! `ready` and `blocked` answer a page without reading every milestone.
//!
//! It holds one [`WorkNode`] per milestone (a few fields, not the document)
//! in a slot, and the dependency edges as pairs of slots, so that a change
//! replaces one node and its edges. The order is worked out again at the
//! first request after a change, over the slots' numbers alone (no text is
//! hashed, compared or copied: milliseconds at 100,000 milestones); every
//! request until the next change is a slice of it, and only the items of
//! the page asked for are spelt out.

use std::collections::{BTreeMap, HashMap};

use milestones_protocol::{WorkItem, WorkPage, WorkReport};

use super::{chain_lengths, rank, task_is_open, WorkNode};

#[derive(Debug, Default)]
pub struct WorkIndex {
    with_tasks: bool,
    /// Every milestone a document is or an edge names, by id: walking it
    /// gives the id order.
    slots_by_id: BTreeMap<String, u32>,
    slots: Vec<Slot>,
    /// What each slot's milestone is, kept beside the slots so that
    /// working out an order touches nothing else.
    states: Vec<State>,
    /// Slots to reuse.
    free: Vec<u32>,
    /// The slots in id order, until a slot is taken or freed.
    id_order: Option<Vec<u32>>,
    /// The order of milestones, and of tasks, since the last change.
    orders: [Option<Order>; 2],
}

#[derive(Debug, Default)]
struct Slot {
    id: String,
    /// `None`: no document has this id (an edge names it).
    node: Option<WorkNode>,
    /// The node's edges, as (milestone, what it requires) slots.
    edges: Vec<(u32, u32)>,
    /// How many edges (of any node) name this slot; a slot with no node
    /// and no edges is freed.
    named: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum State {
    /// No document has this id.
    #[default]
    Absent,
    /// Open, with its priority's rank.
    Open(u8),
    Completed,
    /// Cancelled or archived.
    Closed,
}

impl State {
    fn of(node: &WorkNode) -> State {
        match node.status.as_deref() {
            Some("completed") => State::Completed,
            _ if node.is_open() => State::Open(rank(node.priority.as_deref())),
            _ => State::Closed,
        }
    }
}

/// The ready and the blocked items, most urgent first.
#[derive(Debug, Default)]
struct Order {
    ready: Vec<Entry>,
    blocked: Vec<Entry>,
    /// Per slot: the milestones it waits on (for a page of milestones).
    waiting: Vec<Vec<u32>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    slot: u32,
    /// The task's position in its milestone's node, for an order of tasks.
    task: u32,
    chain: u64,
}

impl WorkIndex {
    /// The index of every milestone's node; `with_tasks` says whether the
    /// nodes carry their tasks (and so whether tasks can be asked for).
    pub fn new(nodes: Vec<WorkNode>, with_tasks: bool) -> Self {
        let mut index = WorkIndex { with_tasks, ..WorkIndex::default() };
        for node in nodes {
            let id = node.id.clone();
            index.set(&id, Some(node));
        }
        index
    }

    pub fn has_tasks(&self) -> bool {
        self.with_tasks
    }

    /// The milestone `id` is now `node` (`None`: it is gone).
    pub fn set(&mut self, id: &str, node: Option<WorkNode>) {
        self.orders = [None, None];
        let slot = self.slot(id);
        for (from, to) in std::mem::take(&mut self.slots[slot as usize].edges) {
            self.unname(from);
            self.unname(to);
        }
        let edges: Vec<(u32, u32)> =
            node.iter().flat_map(|n| &n.declares).map(|(from, to)| (self.slot(from), self.slot(to))).collect();
        for &(from, to) in &edges {
            self.slots[from as usize].named += 1;
            self.slots[to as usize].named += 1;
        }
        self.states[slot as usize] = node.as_ref().map_or(State::Absent, State::of);
        let entry = &mut self.slots[slot as usize];
        entry.node = node;
        entry.edges = edges;
        self.free_if_unused(slot);
    }

    /// Every ready and blocked item, most urgent first.
    pub fn report(&mut self, tasks: bool) -> WorkReport {
        let ready = self.page(tasks, false, 0, u64::MAX).items;
        let blocked = self.page(tasks, true, 0, u64::MAX).items;
        WorkReport { ready, blocked }
    }

    /// `limit` items from `offset` on of the ready (or the blocked) ones.
    pub fn page(&mut self, tasks: bool, blocked: bool, offset: u64, limit: u64) -> WorkPage {
        debug_assert!(!tasks || self.with_tasks, "tasks asked of an index built without them");
        if self.orders[usize::from(tasks)].is_none() {
            let order = if tasks { self.task_order() } else { self.milestone_order() };
            self.orders[usize::from(tasks)] = Some(order);
        }
        let Some(order) = &self.orders[usize::from(tasks)] else { unreachable!("worked out above") };
        let entries = if blocked { &order.blocked } else { &order.ready };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(entries.len());
        let end = start.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX)).min(entries.len());
        let items = entries[start..end].iter().filter_map(|e| self.item(e, tasks, order)).collect();
        WorkPage { items, total: entries.len() as u64 }
    }

    fn slot(&mut self, id: &str) -> u32 {
        if let Some(&slot) = self.slots_by_id.get(id) {
            return slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot::default());
                self.states.push(State::Absent);
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.slots[slot as usize] = Slot { id: id.to_owned(), ..Slot::default() };
        self.slots_by_id.insert(id.to_owned(), slot);
        self.id_order = None;
        slot
    }

    fn unname(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        entry.named = entry.named.saturating_sub(1);
        self.free_if_unused(slot);
    }

    /// Frees `slot` when nothing is left of it.
    fn free_if_unused(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        if entry.node.is_none() && entry.named == 0 && !entry.id.is_empty() {
            self.slots_by_id.remove(&entry.id);
            *entry = Slot::default();
            self.states[slot as usize] = State::Absent;
            self.free.push(slot);
            self.id_order = None;
        }
    }

    fn open(&self, slot: u32) -> Option<&WorkNode> {
        self.slots[slot as usize].node.as_ref().filter(|n| n.is_open())
    }

    fn is_open(&self, slot: u32) -> bool {
        matches!(self.states[slot as usize], State::Open(_))
    }

    /// Lists the taken slots in id order, unless they are listed.
    fn list_id_order(&mut self) {
        if self.id_order.is_none() {
            self.id_order = Some(self.slots_by_id.values().copied().collect());
        }
    }

    /// Open milestones, most urgent first: a stable sort of the id order.
    fn milestone_order(&mut self) -> Order {
        let n = self.slots.len();
        let mut waiting: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (from, to) in self.slots.iter().flat_map(|s| &s.edges) {
            if self.states[*to as usize] != State::Completed && self.is_open(*from) {
                waiting[*from as usize].push(*to);
            }
        }
        let mut waiting_on_me: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (slot, waits) in waiting.iter_mut().enumerate().filter(|(_, w)| !w.is_empty()) {
            waits.sort_unstable();
            waits.dedup();
            for &w in waits.iter().filter(|&&w| self.is_open(w)) {
                waiting_on_me[w as usize].push(slot as u32);
            }
        }
        let chains = chain_lengths(&waiting_on_me);
        self.list_id_order();
        let mut entries: Vec<(u8, Entry)> = (self.id_order.as_deref().unwrap_or_default().iter())
            .filter_map(|&slot| match self.states[slot as usize] {
                State::Open(rank) => Some((rank, Entry { slot, task: 0, chain: chains[slot as usize] })),
                _ => None,
            })
            .collect();
        entries.sort_by_key(|(rank, e)| (*rank, std::cmp::Reverse(e.chain)));
        let (ready, blocked) = entries.into_iter().map(|(_, e)| e).partition(|e| waiting[e.slot as usize].is_empty());
        Order { ready, blocked, waiting }
    }

    /// Open tasks of open milestones, most urgent first (by their
    /// milestone's priority, their chain in it, their milestone's id, then
    /// their own id).
    fn task_order(&mut self) -> Order {
        let mut entries: Vec<(u8, bool, Entry)> = Vec::new();
        self.list_id_order();
        for &slot in self.id_order.as_deref().unwrap_or_default() {
            let Some(node) = self.open(slot) else { continue };
            let tasks = open_tasks(node);
            let position: HashMap<&str, u32> =
                tasks.iter().enumerate().map(|(i, (t, _))| (t.as_str(), i as u32)).collect();
            let mut waiting_on_me = vec![Vec::new(); tasks.len()];
            for (i, (_, waits)) in tasks.iter().enumerate() {
                for w in waits.iter().filter_map(|w| position.get(w.as_str())) {
                    waiting_on_me[*w as usize].push(i as u32);
                }
            }
            let chains = chain_lengths(&waiting_on_me);
            let mut mine: Vec<(&str, bool, Entry)> = tasks
                .iter()
                .zip(chains)
                .map(|((_, waits), chain)| (waits.is_empty(), chain))
                .zip(node.tasks.iter().enumerate().filter(|(_, t)| task_is_open(&t.status)))
                .map(|((ready, chain), (task, state))| {
                    (state.id.as_str(), ready, Entry { slot, task: task as u32, chain })
                })
                .collect();
            mine.sort_by(|a, b| a.0.cmp(b.0));
            let rank = rank(node.priority.as_deref());
            entries.extend(mine.into_iter().map(|(_, ready, e)| (rank, ready, e)));
        }
        entries.sort_by_key(|(rank, _, e)| (*rank, std::cmp::Reverse(e.chain)));
        let (ready, blocked): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, ready, _)| *ready);
        let entries = |list: Vec<(u8, bool, Entry)>| list.into_iter().map(|(_, _, e)| e).collect();
        Order { ready: entries(ready), blocked: entries(blocked), waiting: Vec::new() }
    }

    /// One entry spelt out.
    fn item(&self, entry: &Entry, tasks: bool, order: &Order) -> Option<WorkItem> {
        let node = self.slots[entry.slot as usize].node.as_ref()?;
        let (task, title, status, waiting_on) = if tasks {
            let task = node.tasks.get(entry.task as usize)?;
            let waits =
                open_tasks(node).into_iter().find(|(id, _)| **id == task.id).map(|(_, w)| w).unwrap_or_default();
            (Some(task.id.clone()), task.title.clone(), task.status.clone(), waits)
        } else {
            let mut waits: Vec<String> =
                order.waiting[entry.slot as usize].iter().map(|&w| self.slots[w as usize].id.clone()).collect();
            waits.sort();
            (None, node.title.clone(), node.status.clone().unwrap_or_else(|| "planning".to_owned()), waits)
        };
        Some(WorkItem {
            milestone: node.id.clone(),
            task,
            title,
            status,
            priority: node.priority.clone(),
            chain: entry.chain,
            waiting_on,
        })
    }
}

/// A milestone's open tasks, each with the tasks it depends on that are
/// not completed.
fn open_tasks(node: &WorkNode) -> Vec<(&String, Vec<String>)> {
    let done: std::collections::HashSet<&str> =
        node.tasks.iter().filter(|t| t.status == "completed").map(|t| t.id.as_str()).collect();
    node.tasks
        .iter()
        .filter(|t| task_is_open(&t.status))
        .map(|t| {
            let mut waiting: Vec<String> =
                t.depends_on.iter().filter(|d| !done.contains(d.as_str())).cloned().collect();
            waiting.dedup();
            (&t.id, waiting)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, status: &str, requires: &[&str]) -> WorkNode {
        WorkNode {
            id: id.to_owned(),
            title: id.to_uppercase(),
            status: Some(status.to_owned()),
            priority: None,
            declares: requires.iter().map(|r| (id.to_owned(), (*r).to_owned())).collect(),
            tasks: Vec::new(),
        }
    }

    fn ids(page: &WorkPage) -> Vec<&str> {
        page.items.iter().map(|i| i.milestone.as_str()).collect()
    }

    #[test]
    fn a_change_is_seen_by_the_next_page() {
        let mut index = WorkIndex::new(vec![node("a", "planning", &[]), node("b", "planning", &["a"])], false);
        assert_eq!(ids(&index.page(false, false, 0, 10)), ["a"]);
        assert_eq!(ids(&index.page(false, true, 0, 10)), ["b"]);
        index.set("a", Some(node("a", "completed", &[])));
        assert_eq!(ids(&index.page(false, false, 0, 10)), ["b"], "b is ready once a is completed");
        index.set("a", None);
        let blocked = index.page(false, true, 0, 10);
        assert_eq!(blocked.items[0].waiting_on, ["a"], "a requirement that is gone blocks again");
        index.set("b", Some(node("b", "planning", &[])));
        assert_eq!(ids(&index.page(false, false, 0, 10)), ["b"], "b no longer requires a");
        assert_eq!(index.slots_by_id.len(), 1, "nothing names a any more: its slot is freed");
    }

    #[test]
    fn pages_cut_the_order_and_count_all() {
        let nodes = (0..10).map(|i| node(&format!("m{i}"), "planning", &[])).collect();
        let mut index = WorkIndex::new(nodes, false);
        let page = index.page(false, false, 8, 5);
        assert_eq!((ids(&page), page.total), (vec!["m8", "m9"], 10));
        assert!(index.page(false, false, 50, 5).items.is_empty());
    }
}
