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
const PAGE: u64 = 500;

/// The columns of CSV, export and import alike: the core fields.
pub const CSV_FIELDS: [&str; 9] =
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
        item.push_str(if i == 0 { "- " } else if line.is_empty() { "" } else { "  " });
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
