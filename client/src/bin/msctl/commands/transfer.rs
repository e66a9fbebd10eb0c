//! `msctl export`: milestones out of the project, streamed page by page so
//! that a project of any size goes out in bounded memory: a YAML or JSON
//! list of whole documents, or CSV of the core fields.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use milestones_client::protocol::{Filter, FilterOp, Map, Query, SortKey, Value};
use milestones_client::Client;

use crate::{exit, Failure};

/// Milestones asked for per request.
const PAGE: u64 = 2_000;

/// The columns of CSV, export and import alike: the core fields.
const CSV_FIELDS: [&str; 9] =
    ["id", "title", "description", "status", "priority", "category", "created_at", "updated_at", "completed_at"];

/// Writes every milestone `filters` select (archived ones with `all`), in
/// id order, to `out` or standard output.
pub fn export(
    client: &mut Client,
    format: &str,
    out: Option<PathBuf>,
    filters: Vec<Filter>,
    all: bool,
) -> Result<u8, Failure> {
    let written = match &out {
        Some(path) => {
            // Written beside and renamed when complete: an export cut short
            // never passes for a whole one.
            let temporary = temporary_beside(path);
            let file = File::create(&temporary)
                .map_err(|e| Failure::new(exit::FAILURE, format!("cannot create {}: {e}", temporary.display())))?;
            let written = write_all(client, format, filters, all, &mut BufWriter::new(file));
            match written {
                Ok(count) => std::fs::rename(&temporary, path).map(|()| count).map_err(|e| {
                    Failure::new(exit::FAILURE, format!("cannot move the export to {}: {e}", path.display()))
                }),
                Err(e) => {
                    let _ = std::fs::remove_file(&temporary);
                    Err(e)
                }
            }
        }
        None => write_all(client, format, filters, all, &mut BufWriter::new(std::io::stdout().lock())),
    }?;
    if let Some(path) = out {
        eprintln!("msctl: exported {written} milestone(s) to {}", path.display());
    }
    Ok(0)
}

fn temporary_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Pages through the milestones by id (each page starts after the last id
/// of the one before, so no page costs more as the export goes on) and
/// writes each as it comes. Returns how many were written.
fn write_all(
    client: &mut Client,
    format: &str,
    filters: Vec<Filter>,
    all: bool,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    let failed = |e: std::io::Error| Failure::new(exit::FAILURE, format!("cannot write the export: {e}"));
    if format == "csv" {
        out.write_all(&csv_line(CSV_FIELDS)?).map_err(failed)?;
    }
    if format == "json" {
        out.write_all(b"[").map_err(failed)?;
    }
    let mut after: Option<String> = None;
    let mut written = 0u64;
    let progress = crate::progress::counter(None, "exporting");
    loop {
        let mut page_filters = filters.clone();
        if let Some(last) = &after {
            page_filters.push(Filter { path: "id".into(), op: FilterOp::Gt, value: Value::String(last.clone()) });
        }
        let query = Query {
            filters: page_filters,
            sort: vec![SortKey { path: "id".into(), descending: false }],
            include_archived: all,
            limit: Some(PAGE),
            ..Query::default()
        };
        let page = client.list(query)?;
        if after.is_none() {
            progress.set_length(page.total);
            progress.set_style(crate::progress::counter_style(true));
        }
        progress.inc(page.items.len() as u64);
        for doc in page.items.iter().filter_map(Value::as_map) {
            match format {
                "json" => {
                    let separator: &[u8] = if written == 0 { b"\n" } else { b",\n" };
                    out.write_all(separator).map_err(failed)?;
                    serde_json::to_writer(&mut *out, doc).map_err(|e| failed(e.into()))?;
                }
                "csv" => out.write_all(&csv_line(CSV_FIELDS.map(|f| cell(doc, f)))?).map_err(failed)?,
                _ => out.write_all(yaml_item(doc).as_bytes()).map_err(failed)?,
            }
            written += 1;
        }
        let last = page.items.last().and_then(|d| d.pointer("id")).and_then(Value::as_str).map(str::to_owned);
        if (page.items.len() as u64) < PAGE || last.is_none() {
            break;
        }
        after = last;
    }
    progress.finish_and_clear();
    match format {
        "json" => out.write_all(if written == 0 { b"]\n" } else { b"\n]\n" }).map_err(failed)?,
        "yaml" if written == 0 => out.write_all(b"[]\n").map_err(failed)?,
        _ => {}
    }
    out.flush().map_err(failed)?;
    Ok(written)
}

/// One CSV record, quoted where it needs to be.
fn csv_line<T: AsRef<[u8]>>(fields: impl IntoIterator<Item = T>) -> Result<Vec<u8>, Failure> {
    let mut line = csv::WriterBuilder::new().buffer_capacity(1024).from_writer(Vec::new());
    line.write_record(fields).map_err(|e| Failure::new(exit::FAILURE, format!("cannot write CSV: {e}")))?;
    line.into_inner().map_err(|e| Failure::new(exit::FAILURE, format!("cannot write CSV: {e}")))
}

/// One document as an item of a YAML list.
fn yaml_item(doc: &Map) -> String {
    let text = serde_norway::to_string(doc).unwrap_or_default();
    let mut item = String::with_capacity(text.len() + 64);
    for (i, line) in text.lines().enumerate() {
        item.push_str(if i == 0 {
            "- "
        } else if line.is_empty() {
            ""
        } else {
            "  "
        });
        item.push_str(line);
        item.push('\n');
    }
    item
}

/// A core field as CSV text: empty when absent, JSON for anything that is
/// not text.
fn cell(doc: &Map, field: &str) -> String {
    match doc.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Documents sent per `Import` request, at most...
const BATCH_DOCUMENTS: usize = 200;
/// ...and at most about this much JSON, well inside a frame.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One refused record of the file.
#[derive(serde::Serialize)]
struct Refused {
    /// Its position in the file, from 1.
    record: u64,
    id: Option<String>,
    message: String,
}

/// `msctl import FILE`: every record is checked first, by the daemon's own
/// rules; if any is refused, each is named with its position and nothing
/// is imported (`partial`: the others are). Ids that exist are refused
/// unless `replace`. The file is read twice, record by record (YAML is
/// read whole), so JSON and CSV import in bounded memory.
pub fn import(
    client: &mut Client,
    out: &crate::render::Output,
    path: &Path,
    partial: bool,
    replace: bool,
) -> Result<u8, Failure> {
    let source = Source::open(path)?;
    // First pass: check everything, store nothing.
    let mut refused: Vec<Refused> = Vec::new();
    let mut first_seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut records = 0u64;
    let mut batch = Batch::default();
    let checking = crate::progress::counter(None, "checking");
    source.each(&mut |record, doc| {
        records = record;
        checking.inc(1);
        if let Some(id) = doc.pointer("id").and_then(Value::as_str) {
            if let Some(first) = first_seen.insert(id.to_owned(), record) {
                let message = format!("the id `{id}` is also record {first}'s");
                refused.push(Refused { record, id: Some(id.to_owned()), message });
                return Ok(());
            }
        }
        if batch.add(record, doc) {
            refused.extend(batch.send(client, replace, true)?.1);
        }
        Ok(())
    })?;
    refused.extend(batch.send(client, replace, true)?.1);
    refused.sort_by_key(|r| r.record);
    checking.finish_and_clear();

    if !refused.is_empty() && !partial {
        if out.json {
            let report = serde_json::json!({ "imported": 0, "records": records, "refused": refused });
            out.print_json_or(&report, String::new);
        } else {
            for r in &refused {
                let id = r.id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
                eprintln!("msctl: record {}{id}: {}", r.record, r.message);
            }
        }
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "nothing imported: {} of {records} record(s) refused; fix them, or --partial imports the others",
                refused.len()
            ),
        ));
    }

    // Second pass: store what passed.
    let left_out: std::collections::HashSet<u64> = refused.iter().map(|r| r.record).collect();
    let mut imported = 0u64;
    let mut batch = Batch::default();
    let importing = crate::progress::counter(Some(records), "importing");
    source.each(&mut |record, doc| {
        importing.inc(1);
        if !left_out.contains(&record) && batch.add(record, doc) {
            let (stored, failed) = batch.send(client, replace, false)?;
            imported += stored;
            refused.extend(failed);
        }
        Ok(())
    })?;
    let (stored, failed) = batch.send(client, replace, false)?;
    imported += stored;
    refused.extend(failed);
    refused.sort_by_key(|r| r.record);
    importing.finish_and_clear();
    let report = serde_json::json!({ "imported": imported, "records": records, "refused": refused });
    out.print_json_or(&report, || {
        let mut lines = vec![format!("imported {imported} of {records} record(s)")];
        for r in &refused {
            let id = r.id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
            lines.push(format!("  left out record {}{id}: {}", r.record, r.message));
        }
        lines.join("\n")
    });
    Ok(if refused.is_empty() { 0 } else { exit::PROBLEMS_FOUND })
}

/// Documents gathered for one `Import` request, with their records.
#[derive(Default)]
struct Batch {
    records: Vec<u64>,
    documents: Vec<milestones_client::protocol::DocumentInput>,
    bytes: usize,
}

impl Batch {
    /// Adds a document; true when the batch is full.
    fn add(&mut self, record: u64, doc: Value) -> bool {
        self.bytes += serde_json::to_string(&doc).map_or(0, |t| t.len());
        self.records.push(record);
        self.documents.push(milestones_client::protocol::DocumentInput::Fields(doc));
        self.documents.len() >= BATCH_DOCUMENTS || self.bytes >= BATCH_BYTES
    }

    /// Sends and empties the batch: how many were stored, and the refused.
    fn send(&mut self, client: &mut Client, replace: bool, check_only: bool) -> Result<(u64, Vec<Refused>), Failure> {
        if self.documents.is_empty() {
            return Ok((0, Vec::new()));
        }
        let documents = std::mem::take(&mut self.documents);
        let records = std::mem::take(&mut self.records);
        self.bytes = 0;
        let request = milestones_client::protocol::Request::Import { documents, replace, check_only };
        match client.request(request)? {
            milestones_client::protocol::Response::Imported(report) => {
                let refused = report
                    .problems
                    .into_iter()
                    .map(|p| Refused {
                        record: records.get(p.index as usize).copied().unwrap_or_default(),
                        id: p.id,
                        message: if p.message.ends_with("already exists") && !replace {
                            p.message + "; --replace replaces it"
                        } else {
                            p.message
                        },
                    })
                    .collect();
                Ok((report.imported, refused))
            }
            other => Err(crate::unexpected(other)),
        }
    }
}

/// The file to import, and how to read its records.
enum Source {
    Csv(PathBuf),
    Json(PathBuf),
    /// YAML, read whole (standard input is always read whole).
    Whole(Vec<u8>, String),
}

impl Source {
    fn open(path: &Path) -> Result<Source, Failure> {
        let unreadable =
            |e: std::io::Error| Failure::new(exit::FAILURE, format!("cannot read {}: {e}", path.display()));
        if path == Path::new("-") {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(unreadable)?;
            return Ok(Source::Whole(bytes, "standard input".into()));
        }
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Source::Csv(path.to_path_buf())),
            Some("json") => Ok(Source::Json(path.to_path_buf())),
            _ => Ok(Source::Whole(std::fs::read(path).map_err(unreadable)?, path.display().to_string())),
        }
    }

    /// Calls `visit` with each record's position (from 1) and document.
    fn each(&self, visit: &mut dyn FnMut(u64, Value) -> Result<(), Failure>) -> Result<(), Failure> {
        match self {
            Source::Csv(path) => read_csv(path, visit),
            Source::Json(path) => {
                let file = File::open(path)
                    .map_err(|e| Failure::new(exit::FAILURE, format!("cannot read {}: {e}", path.display())))?;
                read_json(std::io::BufReader::new(file), &path.display().to_string(), visit)
            }
            Source::Whole(bytes, name) => {
                let starts = bytes.iter().find(|b| !b.is_ascii_whitespace());
                if matches!(starts, Some(b'[' | b'{')) {
                    return read_json(bytes.as_slice(), name, visit);
                }
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| Failure::new(exit::INVALID, format!("{name} is not UTF-8 text")))?;
                let value = serde_norway::from_str::<Value>(text)
                    .map_err(|e| Failure::new(exit::INVALID, format!("{name} is not valid YAML: {e}")))?;
                match value {
                    Value::List(docs) => {
                        for (i, doc) in docs.into_iter().enumerate() {
                            visit(i as u64 + 1, doc)?;
                        }
                        Ok(())
                    }
                    doc => visit(1, doc),
                }
            }
        }
    }
}

/// A JSON document or list of documents, one element at a time.
fn read_json(
    reader: impl std::io::Read,
    name: &str,
    visit: &mut dyn FnMut(u64, Value) -> Result<(), Failure>,
) -> Result<(), Failure> {
    use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    struct Each<'a> {
        visit: &'a mut dyn FnMut(u64, Value) -> Result<(), Failure>,
        /// The visitor's own failure, kept whole (serde carries only text).
        failure: &'a mut Option<Failure>,
    }
    impl<'de> DeserializeSeed<'de> for Each<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Each<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a milestone document or a list of them")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut record = 0;
            while let Some(doc) = seq.next_element::<Value>()? {
                record += 1;
                if let Err(f) = (self.visit)(record, doc) {
                    *self.failure = Some(f);
                    return Err(A::Error::custom("stopped"));
                }
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
            let doc = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            (self.visit)(1, doc).map_err(|f| {
                *self.failure = Some(f);
                A::Error::custom("stopped")
            })
        }
    }

    let mut failure = None;
    let mut json = serde_json::Deserializer::from_reader(reader);
    let read = Each { visit, failure: &mut failure }.deserialize(&mut json).and_then(|()| json.end());
    match (failure, read) {
        (Some(f), _) => Err(f),
        (None, Err(e)) => Err(Failure::new(exit::INVALID, format!("{name} is not valid JSON: {e}"))),
        (None, Ok(())) => Ok(()),
    }
}

/// CSV with a header row: each row a document of its non-empty cells.
fn read_csv(path: &Path, visit: &mut dyn FnMut(u64, Value) -> Result<(), Failure>) -> Result<(), Failure> {
    let bad = |e: csv::Error| Failure::new(exit::INVALID, format!("{} is not valid CSV: {e}", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(bad)?;
    let header: Vec<String> = reader.headers().map_err(bad)?.iter().map(str::to_owned).collect();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(bad)?;
        let mut doc = Map::new();
        for (field, cell) in header.iter().zip(row.iter()).filter(|(_, cell)| !cell.is_empty()) {
            doc.insert(field.clone(), Value::String(cell.to_owned()));
        }
        visit(i as u64 + 1, Value::Map(doc))?;
    }
    Ok(())
}
