//! Diagnostics: Bicep's numbered codes (BCPnnn) and linter rule names, their levels and spans, and
//! the three renderings: source snippets for a terminal (rustc style), the one-line form the real
//! `bicep` CLI prints (`file(line,col) : Error BCP036: ...`), and JSON.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::span::{LineIndex, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Error,
    Warning,
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "Error",
            Level::Warning => "Warning",
            Level::Info => "Info",
        }
    }
}

/// Who raised a diagnostic: the compiler (BCP codes) or the linter (rule names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Compiler,
    Linter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Cow<'static, str>,
    pub level: Level,
    pub message: String,
    pub span: Span,
    pub origin: Origin,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Self {
            code: Cow::Borrowed(code),
            level: Level::Error,
            message: message.into(),
            span,
            origin: Origin::Compiler,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Self {
            code: Cow::Borrowed(code),
            level: Level::Warning,
            message: message.into(),
            span,
            origin: Origin::Compiler,
        }
    }

    pub fn linter(rule: &'static str, message: impl Into<String>, span: Span) -> Self {
        Self {
            code: Cow::Borrowed(rule),
            level: Level::Warning,
            message: message.into(),
            span,
            origin: Origin::Linter,
        }
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    /// The documentation link the real compiler attaches.
    pub fn url(&self) -> String {
        match self.origin {
            Origin::Compiler => format!("https://aka.ms/bicep/core-diagnostics#{}", self.code),
            Origin::Linter => format!("https://aka.ms/bicep/linter-diagnostics#{}", self.code),
        }
    }
}

/// One source file's text and display path, for rendering.
pub struct SourceView<'a> {
    pub path: &'a str,
    pub text: &'a str,
    pub lines: &'a LineIndex,
}

impl SourceView<'_> {
    fn position(&self, offset: u32) -> (usize, usize) {
        self.lines.position(self.text, offset as usize)
    }

    /// `main.bicep(12,3) : Error BCP036: message [url]`, the real `bicep build` stderr line.
    pub fn bicep_line(&self, d: &Diagnostic) -> String {
        let (line, column) = self.position(d.span.start);
        format!(
            "{}({},{}) : {} {}: {} [{}]",
            self.path,
            line,
            column,
            d.level.as_str(),
            d.code,
            d.message,
            d.url()
        )
    }

    /// A rustc-style block: header, location, the source line(s) with carets under the span, and the link.
    pub fn snippet(&self, d: &Diagnostic, color: bool) -> String {
        let (style_level, style_bold, style_blue, reset) = if color {
            (
                if d.is_error() { "\x1b[1;31m" } else { "\x1b[1;33m" },
                "\x1b[1m",
                "\x1b[1;34m",
                "\x1b[0m",
            )
        } else {
            ("", "", "", "")
        };
        let (line, column) = self.position(d.span.start);
        let level = match d.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{style_level}{level}[{}]{reset}{style_bold}: {}{reset}",
            d.code, d.message
        );
        let gutter = (line + 1).to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}{style_blue}-->{reset} {}:{}:{}", self.path, line, column);
        let _ = writeln!(out, "{pad} {style_blue}|{reset}");
        let first = self.lines.line_of(d.span.start as usize);
        let last =
            self.lines.line_of((d.span.end as usize).max(d.span.start as usize + 1) - 1).max(first);
        let shown_last = last.min(first + 2);
        for l in first..=shown_last {
            let text = self.lines.line_text(self.text, l);
            let _ = writeln!(
                out,
                "{style_blue}{:>gutter$} |{reset} {}",
                l + 1,
                text.replace('\t', " ")
            );
            let line_start = self.lines.line_start(l);
            let from = if l == first {
                d.span.start as usize - line_start
            } else {
                text.len() - text.trim_start().len()
            };
            let to = if l == last {
                (d.span.end as usize).saturating_sub(line_start).min(text.len())
            } else {
                text.len()
            };
            let from_col = text.get(..from.min(text.len())).map_or(from, |s| s.chars().count());
            let width = text
                .get(from.min(text.len())..to.max(from).min(text.len()))
                .map_or(1, |s| s.chars().count())
                .max(1);
            let _ = writeln!(
                out,
                "{pad} {style_blue}|{reset} {}{style_level}{}{reset}",
                " ".repeat(from_col),
                "^".repeat(width)
            );
        }
        if shown_last < last {
            let _ = writeln!(out, "{pad} {style_blue}|{reset} ...");
        }
        let _ = writeln!(out, "{pad} {style_blue}={reset} see {}", d.url());
        out
    }

    /// One diagnostic as a JSON object (for `--diagnostics-format json`).
    pub fn json(&self, d: &Diagnostic) -> Value {
        let (line, column) = self.position(d.span.start);
        let (end_line, end_column) = self.position(d.span.end);
        json!({
            "path": self.path,
            "line": line,
            "column": column,
            "endLine": end_line,
            "endColumn": end_column,
            "level": d.level.as_str(),
            "code": d.code,
            "message": d.message,
            "source": match d.origin { Origin::Compiler => "bicep", Origin::Linter => "bicep core linter" },
            "url": d.url(),
        })
    }
}

/// `"a", "b"`: how Bicep quotes lists of names in its messages.
pub fn quoted_list<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items.into_iter().map(|s| format!("\"{}\"", s.as_ref())).collect::<Vec<_>>().join(", ")
}
