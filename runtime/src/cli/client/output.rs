//! Human output: aligned plain-text tables and `key: value` lines.

use std::fmt;

/// A table with a header row; columns are padded to their widest cell.
pub(crate) struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers (all left-aligned).
    pub(crate) fn new(headers: &[&str]) -> Self {
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        Self { right: vec![false; headers.len()], headers, rows: Vec::new() }
    }

    /// Right-aligns these columns (numbers).
    pub(crate) fn right_align(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            self.right[c] = true;
        }
        self
    }

    /// Adds a row (missing cells are empty, extra cells are dropped).
    pub(crate) fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut cells: Vec<String> = cells.into_iter().take(self.headers.len()).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// Prints the table on stdout: on a terminal (unless `NO_COLOR`) with a
    /// bold header and the job statuses of its `STATUS` column coloured;
    /// plain on a pipe.
    pub(crate) fn print(&self) {
        let colour = std::io::IsTerminal::is_terminal(&std::io::stdout()) && colour_wanted();
        print!("{}", Painted(self, colour));
    }
}

/// Whether colour is welcome: `NO_COLOR` unset or empty (no-color.org), and
/// not a `dumb` terminal.
pub(crate) fn colour_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// A job status in its colour (one palette for tables and `jobs watch`):
/// green succeeded, yellow failed (retrying), red dead or cancelled, blue
/// running, magenta waiting. Every status is painted, so cells carry the same
/// escape bytes and columns stay aligned.
pub(crate) fn paint_status(status: &str, colour: bool) -> String {
    let code = match status {
        "succeeded" => "32",
        "failed" => "33",
        "dead" | "cancelled" => "31",
        "running" => "34",
        _ => "35",
    };
    if colour { format!("\x1b[{code}m{status}\x1b[0m") } else { status.to_string() }
}

/// A table rendered with or without colour.
struct Painted<'a>(&'a Table, bool);

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Painted(self, false).fmt(f)
    }
}

impl fmt::Display for Painted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Painted(table, colour) = *self;
        let status_column = table.headers.iter().position(|h| h == "STATUS");
        let width = |c: usize| {
            std::iter::once(&table.headers[c])
                .chain(table.rows.iter().map(|r| &r[c]))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..table.headers.len()).map(width).collect();
        for (r, row) in std::iter::once(&table.headers).chain(&table.rows).enumerate() {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                // Padding counts the text; the escapes around it take no room.
                let pad = widths[c] - cell.chars().count();
                let shown = match (r, colour) {
                    (0, true) => format!("\x1b[1m{cell}\x1b[0m"),
                    (_, true)
                        if Some(c) == status_column && crate::domain::JobStatus::parse(cell).is_some() =>
                    {
                        paint_status(cell, true)
                    }
                    _ => cell.clone(),
                };
                if table.right[c] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(&shown);
                } else {
                    line.push_str(&shown);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `key: value` lines with the values aligned; absent values are skipped.
#[derive(Default)]
pub(crate) struct Fields {
    pairs: Vec<(&'static str, String)>,
}

impl Fields {
    /// No fields yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a field.
    pub(crate) fn add(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.pairs.push((key, value.to_string()));
        self
    }

    /// Adds a field when the value is present.
    pub(crate) fn opt(self, key: &'static str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(v) => self.add(key, v),
            None => self,
        }
    }

    /// Prints the fields on stdout.
    pub(crate) fn print(&self) {
        print!("{self}");
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.pairs {
            writeln!(f, "{:<w$} {value}", format!("{key}:"), w = width + 1)?;
        }
        Ok(())
    }
}

/// `blake3:0123456789ab`: enough of a digest to tell modules apart in a table.
pub(crate) fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.to_string(),
    }
}

/// `-` for an absent cell.
pub(crate) fn or_dash(value: Option<impl fmt::Display>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["NAME", "N", "NOTE"]).right_align(&[1]);
        t.row(["alpha".to_string(), "7".into(), "x".into()]);
        t.row(["b".to_string(), "1234".into()]);
        assert_eq!(t.to_string(), "NAME      N  NOTE\nalpha     7  x\nb      1234\n");
    }

    #[test]
    fn fields_align_values() {
        let f = Fields::new().add("id", 1).opt("none", None::<u8>).add("status", "queued");
        assert_eq!(f.to_string(), "id:     1\nstatus: queued\n");
        assert_eq!(short_digest("blake3:0123456789abcdef"), "blake3:0123456789ab");
    }
}
