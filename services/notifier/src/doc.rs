//! The body of an e-mail, written once and rendered twice: as plain text and as HTML.
//!
//! Writing each notice as a list of blocks (paragraphs, headings, fields, tables, lists) keeps the
//! two parts saying the same thing. Every string is treated as data: the HTML renderer escapes
//! all of it, so a reason, a cause or a file name can never inject markup.

use std::fmt::Write as _;

/// A column of a [`Block::Table`].
#[derive(Debug, Clone)]
pub struct Column {
    pub title: String,
    /// Right-aligned (numbers line up on their last digit).
    pub numeric: bool,
}

impl Column {
    pub fn text(title: &str) -> Self {
        Column {
            title: title.to_string(),
            numeric: false,
        }
    }
    pub fn number(title: &str) -> Self {
        Column {
            title: title.to_string(),
            numeric: true,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Block {
    Para(String),
    Heading(String),
    /// Label / value pairs (`Run id: ...`).
    Fields(Vec<(String, String)>),
    Table {
        columns: Vec<Column>,
        rows: Vec<Vec<String>>,
    },
    /// A bulleted list, introduced by a line of its own (`Charts (2):`).
    List {
        intro: String,
        items: Vec<String>,
    },
    /// Small print at the end.
    Footer(String),
}

#[derive(Debug, Clone, Default)]
pub struct Doc {
    blocks: Vec<Block>,
}

impl Doc {
    pub fn para(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Para(text.into()));
        self
    }
    pub fn heading(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Heading(text.into()));
        self
    }
    pub fn fields(&mut self, fields: Vec<(String, String)>) -> &mut Self {
        self.blocks.push(Block::Fields(fields));
        self
    }
    pub fn table(&mut self, columns: Vec<Column>, rows: Vec<Vec<String>>) -> &mut Self {
        self.blocks.push(Block::Table { columns, rows });
        self
    }
    pub fn list(&mut self, intro: impl Into<String>, items: Vec<String>) -> &mut Self {
        self.blocks.push(Block::List {
            intro: intro.into(),
            items,
        });
        self
    }
    pub fn footer(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Footer(text.into()));
        self
    }

    /// The plain-text part: blocks separated by blank lines, tables aligned with spaces.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, block) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            match block {
                Block::Para(text) => {
                    let _ = writeln!(out, "{}", one_line(text));
                }
                Block::Footer(text) => {
                    let _ = writeln!(out, "-- \n{}", one_line(text));
                }
                Block::Heading(text) => {
                    let text = one_line(text);
                    let _ = writeln!(out, "{text}\n{}", "-".repeat(text.chars().count()));
                }
                Block::Fields(fields) => {
                    let width = fields
                        .iter()
                        .map(|(k, _)| k.chars().count() + 1)
                        .max()
                        .unwrap_or(0);
                    for (key, value) in fields {
                        let label = format!("{}:", one_line(key));
                        // Continuation lines of a multi-line value line up under its first line.
                        let mut lines = value.lines();
                        let first = lines.next().unwrap_or("");
                        let _ = writeln!(out, "{label:<width$}  {}", one_line(first));
                        for line in lines {
                            let _ = writeln!(out, "{:width$}  {}", "", one_line(line));
                        }
                    }
                }
                Block::Table { columns, rows } => {
                    let cell = |s: &str| one_line(s);
                    let mut widths: Vec<usize> =
                        columns.iter().map(|c| c.title.chars().count()).collect();
                    for row in rows {
                        for (w, value) in widths.iter_mut().zip(row) {
                            *w = (*w).max(cell(value).chars().count());
                        }
                    }
                    let line = |values: &mut dyn Iterator<Item = String>| {
                        let mut s = String::from(" ");
                        for ((value, c), &w) in values.zip(columns).zip(&widths) {
                            if c.numeric {
                                let _ = write!(s, " {value:>w$}");
                            } else {
                                let _ = write!(s, " {value:<w$}");
                            }
                            s.push(' ');
                        }
                        s.trim_end().to_string()
                    };
                    let _ = writeln!(out, "{}", line(&mut columns.iter().map(|c| cell(&c.title))));
                    let _ = writeln!(out, "{}", line(&mut widths.iter().map(|&w| "-".repeat(w))));
                    for row in rows {
                        let _ = writeln!(out, "{}", line(&mut row.iter().map(|v| cell(v))));
                    }
                }
                Block::List { intro, items } => {
                    let _ = writeln!(out, "{}", one_line(intro));
                    for item in items {
                        let _ = writeln!(out, "  - {}", one_line(item));
                    }
                }
            }
        }
        out
    }

    /// The HTML part: a complete document with inline styles (mail clients drop style sheets).
    pub fn to_html(&self, title: &str) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n\
             <body style=\"{BODY}\">\n",
            escape_html(title)
        );
        for block in &self.blocks {
            match block {
                Block::Para(text) => {
                    let _ = writeln!(
                        out,
                        "<p style=\"margin:0 0 12px\">{}</p>",
                        escape_lines(text)
                    );
                }
                Block::Footer(text) => {
                    let _ = writeln!(
                        out,
                        "<p style=\"margin:20px 0 0;color:#777;font-size:12px\">{}</p>",
                        escape_lines(text)
                    );
                }
                Block::Heading(text) => {
                    let _ = writeln!(
                        out,
                        "<h3 style=\"margin:20px 0 8px;font-size:15px\">{}</h3>",
                        escape_html(text)
                    );
                }
                Block::Fields(fields) => {
                    out.push_str("<table style=\"border-collapse:collapse;margin:0 0 12px\">\n");
                    for (key, value) in fields {
                        let _ = writeln!(
                            out,
                            "<tr><th style=\"{CELL}text-align:left;color:#555;font-weight:600\">{}</th>\
                             <td style=\"{CELL}\">{}</td></tr>",
                            escape_html(key),
                            escape_lines(value)
                        );
                    }
                    out.push_str("</table>\n");
                }
                Block::Table { columns, rows } => {
                    out.push_str(
                        "<table style=\"border-collapse:collapse;margin:0 0 12px\">\n<tr>",
                    );
                    for c in columns {
                        let _ = write!(
                            out,
                            "<th style=\"{CELL}{}border-bottom:2px solid #ccc\">{}</th>",
                            align(c),
                            escape_html(&c.title)
                        );
                    }
                    out.push_str("</tr>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for (value, c) in row.iter().zip(columns) {
                            let _ = write!(
                                out,
                                "<td style=\"{CELL}{}border-bottom:1px solid #eee\">{}</td>",
                                align(c),
                                escape_html(value)
                            );
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</table>\n");
                }
                Block::List { intro, items } => {
                    let _ = writeln!(
                        out,
                        "<p style=\"margin:0 0 4px\">{}</p>",
                        escape_html(intro)
                    );
                    out.push_str("<ul style=\"margin:0 0 12px;padding-left:20px\">\n");
                    for item in items {
                        let _ = writeln!(out, "<li>{}</li>", escape_html(item));
                    }
                    out.push_str("</ul>\n");
                }
            }
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

const BODY: &str = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;\
                    line-height:1.45;color:#222";
const CELL: &str = "padding:3px 12px 3px 0;vertical-align:top;";

fn align(c: &Column) -> &'static str {
    if c.numeric {
        "text-align:right;"
    } else {
        "text-align:left;"
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text and keeps its line breaks.
fn escape_lines(s: &str) -> String {
    s.lines()
        .map(escape_html)
        .collect::<Vec<_>>()
        .join("<br>\n")
}

/// Text on one line: control characters (a newline in a reason, say) become spaces, so they
/// cannot break the layout of the plain-text part.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Doc {
        let mut d = Doc::default();
        d.para("Hello <world> & \"friends\"")
            .heading("Reasons")
            .table(
                vec![Column::number("rows"), Column::text("reason")],
                vec![
                    vec!["1,200".into(), "volume: below 0".into()],
                    vec!["3".into(), "<script>".into()],
                ],
            )
            .fields(vec![
                ("Run id".into(), "abc".into()),
                ("Cause".into(), "line one\nline two".into()),
            ])
            .list("Items:", vec!["a".into()])
            .footer("Sent by Sluice.");
        d
    }

    #[test]
    fn text_aligns_tables_and_fields() {
        let text = sample().to_text();
        assert!(text.contains("Reasons\n-------\n"), "{text}");
        assert!(text.contains("   rows  reason\n  -----  ---------------\n  1,200  volume: below 0\n      3  <script>\n"), "{text}");
        assert!(
            text.contains("Run id:  abc\nCause:   line one\n         line two\n"),
            "{text}"
        );
        assert!(text.contains("\nItems:\n  - a\n"), "{text}");
    }

    #[test]
    fn html_escapes_everything() {
        let html = sample().to_html("Title <b>");
        assert!(
            html.contains("Hello &lt;world&gt; &amp; &quot;friends&quot;"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<title>Title &lt;b&gt;</title>"));
        assert!(html.contains("line one<br>\nline two"));
        assert_eq!(escape_html("it's"), "it&#39;s");
    }

    #[test]
    fn control_characters_do_not_break_lines() {
        assert_eq!(one_line("a\nb\tc\r"), "a b c ");
    }
}
