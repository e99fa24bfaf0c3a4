//! Where each declared column is in a record: read from the header (or, without one, the spec's
//! column order), and the [`Fields`] of a record that the checks and the outputs read.

use std::collections::HashMap;
use std::fmt::Write as _;

use csv::StringRecord;
use sluice_proto::StageError;
use sluice_spec::config::Dataset;

use crate::source::{Source, Start, record_field};

/// The fields of one record, from the [`Source`] itself or from a record it handed over.
pub(crate) trait Fields {
    fn len(&self) -> usize;
    fn field(&self, i: usize) -> &str;
}

impl Fields for Source<'_> {
    fn len(&self) -> usize {
        Source::len(self)
    }
    fn field(&self, i: usize) -> &str {
        Source::field(self, i)
    }
}

/// A record read by a [`Source`] and handed over with [`Source::swap_record`].
pub(crate) struct RecordRow<'r>(pub(crate) &'r StringRecord);

impl Fields for RecordRow<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn field(&self, i: usize) -> &str {
        record_field(self.0, i)
    }
}

/// Where each declared column is in a record.
#[derive(Debug)]
pub(crate) struct Layout {
    /// For each declared column (spec order), its position in the record.
    pub(crate) positions: Vec<usize>,
    /// Fields in a well-formed row.
    pub(crate) width: usize,
    /// Whether each of the `width` positions holds a declared column.
    pub(crate) declared: Vec<bool>,
    /// The end of the wrong-field-count reason: `the header has 6` / `the dataset declares 6 columns`.
    pub(crate) expects: String,
    /// Header names not declared in the spec.
    pub(crate) ignored: Vec<String>,
    pub(crate) header_line: Option<u64>,
}

/// Reads the header (when the dataset has one) and maps the declared columns to positions.
pub(crate) fn read_layout(ds: &Dataset, src: &mut Source) -> Result<Layout, StageError> {
    let width = ds.columns.len();
    if !ds.header {
        return Ok(Layout {
            positions: (0..width).collect(),
            width,
            declared: vec![true; width],
            expects: format!("the dataset declares {width} columns"),
            ignored: Vec::new(),
            header_line: None,
        });
    }
    let Some(at) = src.next_record()? else {
        return Err(StageError::invalid_input(format!(
            "{}: the file has only blank lines; it needs a header line and data rows",
            src.name()
        )));
    };
    header_layout(ds, src, at).map_err(|e| {
        // A quote never closed swallows the rest of the file into the header: report the cause, not
        // the missing columns it leads to.
        if src.has_line_break()
            && let Ok(Some(open)) = src.open_quote_from(at, u64::MAX)
        {
            return src.unclosed_quote_at_eof(open);
        }
        e
    })
}

fn header_layout(ds: &Dataset, src: &Source, at: Start) -> Result<Layout, StageError> {
    let name = src.name();
    let line = at.line;
    // The reader strips a UTF-8 BOM at the start of the file; a second one (or one from a tool that
    // adds it per line) would still hide the first name.
    let names: Vec<&str> = (0..src.len())
        .map(|i| {
            let n = src.field(i);
            if i == 0 {
                n.trim_start_matches('\u{feff}').trim()
            } else {
                n.trim()
            }
        })
        .collect();

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        // Several empty names (`a,b,,`) are common and harmless: they are ignored like any undeclared column.
        if n.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(n, i) {
            return Err(StageError::invalid_input(format!(
                "{name}: line {line}: the header names {n:?} twice (columns {} and {}); give every column a \
                 distinct name",
                first + 1,
                i + 1
            )));
        }
    }

    let mut positions = Vec::with_capacity(ds.columns.len());
    let mut missing = Vec::new();
    for c in &ds.columns {
        match seen.get(c.name.as_str()) {
            Some(&i) => positions.push(i),
            None => missing.push(c.name.as_str()),
        }
    }
    if !missing.is_empty() {
        let case_hint = missing
            .iter()
            .any(|m| names.iter().any(|n| n.eq_ignore_ascii_case(m)));
        let sep = char::from(ds.delimiter);
        let mut msg = format!(
            "{name}: line {line}: the header lacks the declared columns {} (found: {})",
            missing.join(", "),
            names.join(", ")
        );
        if case_hint {
            msg.push_str("; names are case-sensitive");
        }
        let _ = write!(
            msg,
            "; rename the header columns or fix the dataset spec (is {sep:?} the delimiter of this file?)"
        );
        return Err(StageError::invalid_input(msg));
    }

    let mut declared = vec![false; names.len()];
    for &p in &positions {
        declared[p] = true;
    }
    let ignored = names
        .iter()
        .zip(&declared)
        .filter(|(_, d)| !**d)
        .map(|(n, _)| n.to_string())
        .collect();
    Ok(Layout {
        width: names.len(),
        expects: format!("the header has {}", names.len()),
        positions,
        declared,
        ignored,
        header_line: Some(line),
    })
}
