//! Plain-text output: aligned-column tables and money, for people at a terminal.
//! Machines read `--json` instead, so this layout may change freely.

use std::fmt;

/// A table with a header row; columns are as wide as their widest cell and separated
/// by two spaces. Numeric columns can be right-aligned so that digits line up.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names, every column left-aligned.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            right: vec![false; header.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns the columns at these positions.
    pub fn right(mut self, columns: &[usize]) -> Table {
        for &column in columns {
            if let Some(flag) = self.right.get_mut(column) {
                *flag = true;
            }
        }
        self
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|column| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                let pad = widths[column] - cell.chars().count();
                if self.right[column] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            // Padding after the last column would only leave trailing spaces.
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `4500` and `"EUR"` as `45.00 EUR`.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", cents / 100, cents % 100)
        .trim_end()
        .to_owned()
}

/// A timestamp for a table cell: UTC to the second.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::{Table, money};

    #[test]
    fn columns_align_and_lines_have_no_trailing_spaces() {
        let mut table = Table::new(&["ID", "STATE", "TOTAL"]).right(&[0, 2]);
        table.row(vec!["1".into(), "pending".into(), "5.00 EUR".into()]);
        table.row(vec!["12".into(), "paid".into(), "125.00 EUR".into()]);
        assert_eq!(
            table.to_string(),
            "ID  STATE         TOTAL\n 1  pending    5.00 EUR\n12  paid     125.00 EUR\n"
        );
        let mut last_empty = Table::new(&["A", "NOTE"]);
        last_empty.row(vec!["x".into()]);
        assert_eq!(last_empty.to_string(), "A  NOTE\nx\n");
    }

    #[test]
    fn money_has_two_decimals() {
        assert_eq!(money(4500, "EUR"), "45.00 EUR");
        assert_eq!(money(7, "EUR"), "0.07 EUR");
        assert_eq!(money(-150, "EUR"), "-1.50 EUR");
        assert_eq!(money(150, ""), "1.50");
    }
}
