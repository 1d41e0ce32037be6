//! How every `list` command prints: for people, a header row and aligned
//! columns (cells on one line each, the last column not padded); for
//! scripts, `--json` prints the same document the HTTP API answers for that
//! listing. An empty listing says so in words.

use serde::Serialize;

/// Rows under a header, printed aligned.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// One row; a missing cell prints as `-`, tabs and newlines as spaces.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells
            .into_iter()
            .map(|c| {
                let c: String = c.into();
                let c = c.replace(['\t', '\n', '\r'], " ");
                if c.is_empty() { "-".to_owned() } else { c }
            })
            .collect();
        row.resize(self.header.len(), "-".to_owned());
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text: the header, then the rows; `empty` alone when
    /// there is no row.
    pub fn render(&self, empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                out.push_str(c);
                if i < last {
                    let pad = widths[i] + 2 - c.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
            out
        };
        let mut out = line(self.header.clone());
        for r in &self.rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        out
    }

    /// Print [`Table::render`].
    pub fn print(&self, empty: &str) {
        crate::out!("{}", self.render(empty));
    }
}

/// Print `value` as one JSON document (the `--json` of a listing).
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    crate::outln!("{}", serde_json::to_string(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_under_a_header_and_empty_says_so() {
        let mut t = Table::new(&["ID", "MODEL", "NAME"]);
        t.row(["default", "", "exoclaw"]);
        t.row(["research-bot", "gpt-4o", "Research\tteam"]);
        assert_eq!(
            t.render("no agents"),
            "ID            MODEL   NAME\n\
             default       -       exoclaw\n\
             research-bot  gpt-4o  Research team\n"
        );
        assert_eq!(Table::new(&["ID"]).render("no agents"), "no agents\n");
    }
}
