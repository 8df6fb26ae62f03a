//! Plain aligned tables: columns padded by display width, a header, no borders, so the output
//! reads well on a terminal and stays easy to `grep`, `cut` and `awk`.

use std::borrow::Cow;

use anstyle::Style;
use unicode_width::UnicodeWidthStr;

use crate::ui::{BOLD, paint};

/// One cell: its text and an optional style (applied after padding, so escape codes never
/// disturb the alignment).
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    style: Option<Style>,
}

impl Cell {
    /// A styled cell.
    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            style: Some(style),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, style: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table built row by row.
#[derive(Debug)]
pub struct Table {
    headers: Vec<(&'static str, Align)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[(&'static str, Align)]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra ones are dropped.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, ending with a newline.
    pub fn render(&self, colour: bool) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|(header, _)| header.width())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell_text(cell).width());
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|(header, _)| Cell::styled(*header, BOLD))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (column, ((_, align), width)) in self.headers.iter().zip(&widths).enumerate() {
                let (text, style) = row.get(column).map_or((Cow::Borrowed(""), None), |cell| {
                    (cell_text(cell), cell.style)
                });
                let pad = " ".repeat(width.saturating_sub(text.width()));
                let last = column + 1 == columns;
                let padded = match align {
                    Align::Right => format!("{pad}{text}"),
                    // The last column needs no trailing blanks.
                    Align::Left if last => text.into_owned(),
                    Align::Left => format!("{text}{pad}"),
                };
                line.push_str(&match style {
                    Some(style) => paint(colour, style, &padded),
                    None => padded,
                });
                if !last {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Cell text on one line: line breaks (which would break the table) become spaces.
fn cell_text(cell: &Cell) -> Cow<'_, str> {
    if cell.text.contains(['\n', '\r']) {
        Cow::Owned(cell.text.replace("\r\n", " ").replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(&cell.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_by_display_width_and_styles_after_padding() {
        let mut table = Table::new(&[("NAME", Align::Left), ("N", Align::Right)]);
        table.row(vec!["日本".into(), "7".into()]);
        table.row(vec![Cell::styled("ab", BOLD), "123".into()]);
        assert_eq!(table.render(false), "NAME    N\n日本    7\nab    123\n");
        let coloured = table.render(true);
        assert!(coloured.contains(&format!("{BOLD}ab  {BOLD:#}")));
    }

    #[test]
    fn line_breaks_in_cells_become_spaces() {
        let mut table = Table::new(&[("A", Align::Left)]);
        table.row(vec!["one\ntwo\r\nthree".into()]);
        assert_eq!(table.render(false), "A\none two three\n");
    }
}
