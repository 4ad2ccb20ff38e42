//! Printing what the hub answered: tables, YAML or JSON, and outcomes.

use super::*;

/// What a command prints: rows for the table, the objects for JSON and YAML.
pub(super) struct Printer {
    pub(super) format: Format,
}

impl Printer {
    pub(super) fn list(&self, listing: &Listing, columns: Columns, plural: &str, all: bool) -> anyhow::Result<()> {
        if self.format != Format::Table {
            return Ok(output::emit(&output::machine(self.format, &Value::Array(listing.items.clone()))?)?);
        }
        if listing.items.is_empty() {
            eprintln!("no {plural} found");
            return Ok(());
        }
        output::emit(&output::table(&listing.items, columns))?;
        if !all && (listing.items.len() as i64) < listing.total {
            eprintln!(
                "{} of {} {plural} shown; see --page and --size, or --all for every page",
                listing.items.len(),
                listing.total
            );
        }
        Ok(())
    }

    pub(super) fn one(&self, item: &Value, columns: Columns) -> anyhow::Result<()> {
        match self.format {
            Format::Table => output::emit(&output::table(std::slice::from_ref(item), columns))?,
            format => output::emit(&output::machine(format, item)?)?,
        }
        Ok(())
    }

    /// What changed: a line for people; the objects for machines, where the line goes to
    /// stderr so stdout stays parseable.
    pub(super) fn outcome(&self, line: &str) -> anyhow::Result<()> {
        match self.format {
            Format::Table => output::emit(&format!("{line}\n"))?,
            _ => eprintln!("{line}"),
        }
        Ok(())
    }

    /// Objects written: the one object, or an array of several.
    pub(super) fn written(&self, objects: Vec<Value>) -> anyhow::Result<()> {
        if self.format == Format::Table {
            return Ok(());
        }
        let value = match <[Value; 1]>::try_from(objects) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        Ok(output::emit(&output::machine(self.format, &value)?)?)
    }
}
