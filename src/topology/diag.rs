//! Diagnostics for topology files: every error and warning names the file, the
//! line and column, the object (`nic spoke11-vm`) and, where there is one, the
//! field. Setup-time errors are structured values with `Display` and
//! `std::error::Error`; only the CLI turns them into process exit codes.

use std::fmt;

/// A position in a topology file, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    /// The line and column of byte offset `offset` in `src` (clamped to the text).
    pub fn from_offset(src: &str, offset: usize) -> Loc {
        let offset = offset.min(src.len());
        // Step back to a char boundary so slicing never panics.
        let mut cut = offset;
        while cut > 0 && !src.is_char_boundary(cut) {
            cut -= 1;
        }
        let before = &src[..cut];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        Loc {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a topology file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub loc: Loc,
    /// The object concerned, e.g. `nic spoke11-vm` or `route_table rt-spoke/route default`.
    pub object: String,
    /// The field concerned, when the problem is in one field.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.loc.line == 0 {
            write!(f, "{}: {}: ", self.file, sev)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}: ",
                self.file, self.loc.line, self.loc.col, sev
            )?;
        }
        if !self.object.is_empty() {
            write!(f, "{}", self.object)?;
            if let Some(field) = &self.field {
                write!(f, ", field `{field}`")?;
            }
            write!(f, ": ")?;
        } else if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Loading failed: one or more errors (and any warnings found on the way).
#[derive(Debug, Clone)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if n > 1 {
            write!(f, "\n{n} errors")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Collects diagnostics while a file is built and validated.
#[derive(Debug)]
pub(crate) struct Sink<'a> {
    pub file: &'a str,
    pub src: &'a str,
    pub out: Vec<Diagnostic>,
    /// Byte offset where each line starts, for O(log n) positions.
    line_starts: Vec<usize>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &'a str, src: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            src.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Sink {
            file,
            src,
            out: Vec::new(),
            line_starts,
        }
    }

    pub fn loc(&self, span: &std::ops::Range<usize>) -> Loc {
        let offset = span.start.min(self.src.len());
        let line = self.line_starts.partition_point(|&s| s <= offset); // 1-based
        let start = self.line_starts[line - 1];
        let mut cut = offset;
        while cut > start && !self.src.is_char_boundary(cut) {
            cut -= 1;
        }
        Loc {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(self.src[start..cut].chars().count() + 1).unwrap_or(u32::MAX),
        }
    }

    pub fn push(
        &mut self,
        severity: Severity,
        loc: Loc,
        object: &str,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.out.push(Diagnostic {
            severity,
            file: self.file.to_string(),
            loc,
            object: object.to_string(),
            field: field.map(str::to_string),
            message: message.into(),
        });
    }

    pub fn error(
        &mut self,
        loc: Loc,
        object: &str,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, loc, object, field, message);
    }

    pub fn warn(
        &mut self,
        loc: Loc,
        object: &str,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, loc, object, field, message);
    }

    pub fn has_errors(&self) -> bool {
        self.out.iter().any(|d| d.severity == Severity::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_positions_agree_with_from_offset() {
        let src = "a = 1\nbé = 2\n\nlast";
        let sink = Sink::new("f", src);
        for off in 0..=src.len() + 3 {
            assert_eq!(
                sink.loc(&(off..off)),
                Loc::from_offset(src, off),
                "offset {off}"
            );
        }
    }

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(Loc::from_offset(src, 0), Loc { line: 1, col: 1 });
        assert_eq!(Loc::from_offset(src, 6), Loc { line: 2, col: 1 });
        // Inside the two-byte 'é': clamps back to its start, no panic.
        assert_eq!(Loc::from_offset(src, 8), Loc { line: 2, col: 2 });
        assert_eq!(Loc::from_offset(src, 10_000).line, 3);
    }
}
