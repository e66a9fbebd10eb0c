//! The hash chain of an immutable audit log (`storage.audit.immutable_logs`):
//! how an entry is sealed, and how a log is checked.
//!
//! Each sealed entry is the event's JSON object with two fields appended:
//! `seq`, its number (1, 2, ...), and `chain`, the SHA-256 of the previous
//! entry's `chain` and this entry's own text up to (not including) the
//! `chain` field. Editing an entry breaks its hash; removing or reordering
//! entries breaks the numbering; removing the last entries shows against
//! the head (the last `seq` and `chain`), which the daemon keeps beside the
//! log. The check works on the exact bytes of each line, never on a
//! re-serialisation, so nothing in the JSON needs a canonical form.

use serde::{Deserialize, Serialize};

use crate::document::sha256_hex;

/// The end of the chain: the last entry's number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub chain: String,
}

const CHAIN_FIELD: &str = ",\"chain\":\"";

/// Seals `body` (an event as a JSON object) as the entry after `previous`;
/// returns the line (without its newline) and the new head.
pub fn seal(body: &[u8], previous: Option<&Head>) -> (Vec<u8>, Head) {
    let seq = previous.map_or(1, |h| h.seq + 1);
    // The object without its closing brace, then the number.
    let open = body.strip_suffix(b"}").unwrap_or(body);
    let mut line = Vec::with_capacity(body.len() + 96);
    line.extend_from_slice(open);
    line.extend_from_slice(format!(",\"seq\":{seq}").as_bytes());
    let chain = link(previous.map_or("", |h| h.chain.as_str()), &line);
    line.extend_from_slice(CHAIN_FIELD.as_bytes());
    line.extend_from_slice(chain.as_bytes());
    line.extend_from_slice(b"\"}");
    (line, Head { seq, chain })
}

fn link(previous: &str, sealed_part: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(previous.len() + 1 + sealed_part.len());
    bytes.extend_from_slice(previous.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(sealed_part);
    sha256_hex(&bytes)
}

/// A sealed entry read back.
struct Sealed<'a> {
    seq: u64,
    chain: &'a str,
    /// What the hash covers.
    sealed_part: &'a str,
    /// "event X for milestone Y at T", for messages.
    what: String,
}

fn read_sealed(line: &str) -> Option<Sealed<'_>> {
    let body = line.strip_suffix("\"}")?;
    let at = body.rfind(CHAIN_FIELD)?;
    let chain = &body[at + CHAIN_FIELD.len()..];
    if chain.len() != 64 || !chain.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let fields: serde_json::Value = serde_json::from_str(line).ok()?;
    let seq = fields.get("seq")?.as_u64()?;
    let text = |key: &str| fields.get(key).and_then(serde_json::Value::as_str).unwrap_or("?").to_owned();
    let what = format!("{} of `{}` at {}", text("event"), text("milestone_id"), text("timestamp"));
    Some(Sealed { seq, chain, sealed_part: &line[..at], what })
}

/// The head a log ends with, from its last line.
pub fn head_of(last_line: &str) -> Option<Head> {
    read_sealed(last_line).map(|s| Head { seq: s.seq, chain: s.chain.to_owned() })
}

/// One thing wrong with the log, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The line, from 1; 0 for the end of the log.
    pub line: u64,
    pub seq: Option<u64>,
    pub message: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Lines in the log.
    pub entries: u64,
    /// Sealed entries among them.
    pub sealed: u64,
    /// Unsealed lines before the first sealed one (written before the log
    /// became immutable): not checked, and not faults.
    pub before_sealing: u64,
    pub findings: Vec<Finding>,
}

/// Checks every line of `log` against the chain, and its end against
/// `head` (what the daemon last sealed). Each fault is named once, and the
/// check goes on from the faulty entry, so one edit is one finding.
pub fn verify(log: &str, head: Option<&Head>) -> Verification {
    let mut report = Verification::default();
    let mut previous: Option<Head> = None;
    for (index, line) in log.lines().enumerate() {
        let number = index as u64 + 1;
        report.entries += 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some(entry) = read_sealed(line) else {
            if previous.is_none() {
                report.before_sealing += 1;
            } else {
                report.findings.push(Finding {
                    line: number,
                    seq: None,
                    message: format!(
                        "line {number} is not sealed: it was added by another program (or by hand) after the log \
                         became immutable"
                    ),
                });
            }
            continue;
        };
        report.sealed += 1;
        let expected = previous.as_ref().map_or(entry.seq, |h| h.seq + 1);
        let finding = if entry.seq > expected {
            let missing = if entry.seq - expected == 1 {
                format!("entry {expected} is")
            } else {
                format!("entries {expected} to {} are", entry.seq - 1)
            };
            Some(format!("{missing} missing before line {number} ({}): removed", entry.what))
        } else if entry.seq < expected {
            Some(format!("line {number} (entry {}, {}) is out of order: moved, or copied", entry.seq, entry.what))
        } else if previous.is_none() && entry.seq != 1 {
            Some(format!(
                "the chain starts at entry {} on line {number}: the entries before it were removed",
                entry.seq
            ))
        } else if link(previous.as_ref().map_or("", |h| h.chain.as_str()), entry.sealed_part.as_bytes()) != entry.chain
        {
            Some(format!("line {number} (entry {}, {}) was edited: its hash does not match", entry.seq, entry.what))
        } else {
            None
        };
        if let Some(message) = finding {
            report.findings.push(Finding { line: number, seq: Some(entry.seq), message });
        }
        // Go on from this entry as written: the next is checked against it.
        previous = Some(Head { seq: entry.seq.max(expected), chain: entry.chain.to_owned() });
    }
    if let Some(head) = head {
        let last = previous.as_ref().map_or(0, |h| h.seq);
        if head.seq > last {
            let which = if head.seq - last == 1 {
                format!("entry {}", head.seq)
            } else {
                format!("entries {} to {}", last + 1, head.seq)
            };
            report.findings.push(Finding {
                line: 0,
                seq: Some(last + 1),
                message: format!("{which} at the end of the log are missing: removed"),
            });
        } else if previous.as_ref().is_some_and(|p| p.seq == head.seq && p.chain != head.chain) {
            report.findings.push(Finding {
                line: 0,
                seq: Some(head.seq),
                message: format!("the last entry ({}) is not the one milestoned sealed: replaced", head.seq),
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: u64) -> (Vec<String>, Head) {
        let mut head = None;
        let mut lines = Vec::new();
        for i in 1..=n {
            let body = format!(
                r#"{{"timestamp":"2026-11-30T00:00:0{i}Z","event":"milestone_updated","milestone_id":"m-{i}","user":"ann"}}"#
            );
            let (line, next) = seal(body.as_bytes(), head.as_ref());
            lines.push(String::from_utf8(line).unwrap());
            head = Some(next);
        }
        (lines, head.unwrap())
    }

    fn messages(lines: &[String], head: &Head) -> Vec<String> {
        verify(&lines.join("\n"), Some(head)).findings.into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn an_untouched_log_verifies_and_every_tampering_is_named() {
        let (lines, head) = log_of(5);
        assert_eq!(messages(&lines, &head), Vec::<String>::new());
        assert!(lines[0].ends_with(&format!("\"seq\":1,\"chain\":\"{}\"}}", head_of(&lines[0]).unwrap().chain)));

        let mut edited = lines.clone();
        edited[2] = edited[2].replace("ann", "bob");
        assert_eq!(messages(&edited, &head), ["line 3 (entry 3, milestone_updated of `m-3` at 2026-11-30T00:00:03Z) was edited: its hash does not match"]);

        let mut removed = lines.clone();
        removed.remove(1);
        assert_eq!(
            messages(&removed, &head),
            ["entry 2 is missing before line 2 (milestone_updated of `m-3` at 2026-11-30T00:00:03Z): removed"]
        );

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        let found = messages(&swapped, &head);
        assert!(found.iter().any(|m| m.contains("line 3 (entry 2") && m.contains("out of order")), "{found:?}");

        let truncated = lines[..3].to_vec();
        assert_eq!(messages(&truncated, &head), ["entries 4 to 5 at the end of the log are missing: removed"]);

        let mut foreign = lines.clone();
        foreign.insert(3, r#"{"event":"milestone_created","milestone_id":"x"}"#.to_owned());
        assert_eq!(messages(&foreign, &head).len(), 1);
    }

    #[test]
    fn lines_from_before_the_log_was_sealed_are_not_faults() {
        let (mut lines, head) = log_of(2);
        lines.insert(0, r#"{"event":"milestone_created","milestone_id":"old"}"#.to_owned());
        let report = verify(&lines.join("\n"), Some(&head));
        assert_eq!((report.entries, report.sealed, report.before_sealing), (3, 2, 1));
        assert!(report.findings.is_empty(), "{:?}", report.findings);
    }
}
