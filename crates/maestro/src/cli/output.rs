//! How the client shows hub objects: aligned tables for people, JSON or YAML for scripts.
//!
//! Tables pick a few columns a person scans for (what, where, how it is doing); the machine
//! formats print the API objects unchanged, so a script sees exactly what the REST API returns.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// What `-o` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// Rows of text under upper-case headers, padded so columns line up in a terminal.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = String::new();
        for row in std::iter::once(&headers).chain(&self.rows) {
            out.push_str(&line(row, &widths));
            out.push('\n');
        }
        out
    }
}

/// The last column is not padded, so lines carry no trailing blanks.
fn line(cells: &[String], widths: &[usize]) -> String {
    let mut text = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            text.push_str(cell);
        } else {
            text.push_str(&format!("{cell:<width$}   "));
        }
    }
    text.trim_end().to_string()
}

/// Writes to stdout. A reader that went away (`maestro ... | head`) is not an error.
pub fn emit(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// JSON (pretty, newline-terminated) or YAML text of a value.
pub fn machine(format: Format, value: &Value) -> anyhow::Result<String> {
    Ok(match format {
        Format::Yaml => serde_yaml::to_string(value)?,
        Format::Json | Format::Table => format!("{}\n", serde_json::to_string_pretty(value)?),
    })
}

/// Objects of one kind as a table.
pub fn table(items: &[Value], columns: Columns) -> String {
    let mut table = Table::new(columns.headers());
    for item in items {
        table.push(columns.row(item));
    }
    table.render()
}

/// Which columns a kind of object shows.
#[derive(Debug, Clone, Copy)]
pub enum Columns {
    Consumer,
    Resource,
    Bundle,
}

impl Columns {
    fn headers(self) -> &'static [&'static str] {
        match self {
            Columns::Consumer => &["NAME", "ID", "LABELS", "AGE"],
            Columns::Resource => &["ID", "CONSUMER", "KIND", "NAME", "VERSION", "STATUS", "AGE"],
            Columns::Bundle => &["ID", "NAME", "CONSUMER", "MANIFESTS", "VERSION", "STATUS", "AGE"],
        }
    }

    fn row(self, item: &Value) -> Vec<String> {
        let age = age(item, Utc::now());
        match self {
            Columns::Consumer => vec![text(item, "name"), text(item, "id"), labels(item.get("labels")), age],
            Columns::Resource => {
                let manifest = item.get("manifest").unwrap_or(&Value::Null);
                let conditions = item.pointer("/status/ReconcileStatus/Conditions");
                vec![
                    text(item, "id"),
                    text(item, "consumer_name"),
                    text(manifest, "kind"),
                    object_name(manifest),
                    text(item, "version"),
                    status(item, conditions),
                    age,
                ]
            }
            Columns::Bundle => {
                let count = item.get("manifests").and_then(Value::as_array).map_or(0, Vec::len);
                let conditions = item.pointer("/status/conditions");
                vec![
                    text(item, "id"),
                    text(item, "name"),
                    text(item, "consumer_name"),
                    count.to_string(),
                    text(item, "version"),
                    status(item, conditions),
                    age,
                ]
            }
        }
    }
}

/// A field as a cell: strings bare, numbers as written, absence as `<none>`.
fn text(item: &Value, field: &str) -> String {
    match item.get(field) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "<none>".to_string(),
    }
}

/// `namespace/name`, as kubectl names namespaced objects, or just `name` when cluster-scoped.
fn object_name(manifest: &Value) -> String {
    let metadata = manifest.get("metadata").unwrap_or(&Value::Null);
    let name = text(metadata, "name");
    match metadata.get("namespace").and_then(Value::as_str).filter(|ns| !ns.is_empty()) {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name,
    }
}

fn labels(labels: Option<&Value>) -> String {
    let Some(Value::Object(labels)) = labels else {
        return "<none>".to_string();
    };
    if labels.is_empty() {
        return "<none>".to_string();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| match value {
            Value::String(s) => format!("{key}={s}"),
            other => format!("{key}={other}"),
        })
        .collect();
    pairs.join(",")
}

/// One word on how an object is doing: `Deleting` once a delete was asked for, `Pending` until
/// its agent reports, then the condition types that hold (`Applied,Available`), or the first
/// one that does not (`NotApplied`) when none holds.
fn status(item: &Value, conditions: Option<&Value>) -> String {
    if item.get("deleted_at").is_some_and(|d| !d.is_null()) {
        return "Deleting".to_string();
    }
    let conditions = conditions.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let kind = |c: &Value| c.get("type").and_then(Value::as_str).map(str::to_string);
    let holding: Vec<String> = conditions
        .iter()
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        .filter_map(kind)
        .collect();
    if !holding.is_empty() {
        return holding.join(",");
    }
    match conditions.iter().find_map(kind) {
        Some(first) => format!("Not{first}"),
        None => "Pending".to_string(),
    }
}

/// Time since `created_at` in the largest whole unit, the way kubectl shows AGE.
fn age(item: &Value, now: DateTime<Utc>) -> String {
    let created = item.get("created_at").and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let Some(created) = created else {
        return "<unknown>".to_string();
    };
    let seconds = (now - created.with_timezone(&Utc)).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 730 * 86400 => format!("{}d", s / 86400),
        s => format!("{}y", s / (365 * 86400)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up_without_trailing_blanks() {
        let mut table = Table::new(&["NAME", "ID"]);
        table.push(vec!["a-long-name".into(), "1".into()]);
        table.push(vec!["b".into(), "".into()]);
        assert_eq!(table.render(), "NAME          ID\na-long-name   1\nb\n");
    }

    #[test]
    fn resource_row_names_the_object_and_its_state() {
        let item = json!({
            "id": "r1", "consumer_name": "c1", "version": 2, "created_at": "2020-01-01T00:00:00Z",
            "manifest": {"kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}},
            "status": {"ReconcileStatus": {"Conditions": [
                {"type": "Applied", "status": "True"}, {"type": "Available", "status": "True"}]}}
        });
        let row = Columns::Resource.row(&item);
        assert_eq!(row[..6], ["r1", "c1", "Deployment", "default/web", "2", "Applied,Available"]);
    }

    #[test]
    fn status_is_deleting_then_pending_then_failing_condition() {
        assert_eq!(status(&json!({"deleted_at": "2020-01-01T00:00:00Z"}), None), "Deleting");
        assert_eq!(status(&json!({}), Some(&json!([]))), "Pending");
        assert_eq!(status(&json!({}), Some(&json!([{"type": "Applied", "status": "False"}]))), "NotApplied");
    }

    #[test]
    fn age_uses_the_largest_whole_unit() {
        let now = Utc::now();
        let at = |seconds: i64| json!({"created_at": (now - chrono::Duration::seconds(seconds)).to_rfc3339()});
        assert_eq!(age(&at(5), now), "5s");
        assert_eq!(age(&at(600), now), "10m");
        assert_eq!(age(&at(3 * 86400), now), "3d");
        assert_eq!(age(&json!({}), now), "<unknown>");
    }

    #[test]
    fn labels_read_as_selectors() {
        assert_eq!(labels(Some(&json!({"env": "prod", "tier": "web"}))), "env=prod,tier=web");
        assert_eq!(labels(Some(&json!({}))), "<none>");
    }
}
