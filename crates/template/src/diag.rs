//! Diagnostics: what is wrong, where (JSON path, line and column, and the span inside an expression), and ARM's code.

use std::fmt;

use crate::expr::Span;
use crate::json::Position;

/// ARM's error codes for template problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The document is not JSON.
    InvalidRequestContent,
    /// The template's structure, an expression or the dependency graph is wrong.
    InvalidTemplate,
    /// A parameter is missing, of the wrong type or out of range.
    InvalidParameter,
    /// Evaluation failed while deploying (a `reference()` target is missing, ...).
    DeploymentFailed,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequestContent => "InvalidRequestContent",
            Code::InvalidTemplate => "InvalidTemplate",
            Code::InvalidParameter => "InvalidTemplateParameter",
            Code::DeploymentFailed => "DeploymentFailed",
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    /// JSON path in the template (`resources[1].properties.principalId`); empty for the whole document.
    pub path: String,
    /// Line and column in the source text, when the template was parsed from text.
    pub position: Option<Position>,
    /// The byte range inside the expression string at `path`, for expression errors.
    pub span: Option<Span>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(code: Code, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { code, path: path.into(), position: None, span: None, message: message.into() }
    }

    pub fn with_span(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}", self.path)?;
        } else {
            write!(f, "template")?;
        }
        match (self.position, self.span) {
            (Some(pos), Some(span)) => write!(f, " ({pos}, characters {span})")?,
            (Some(pos), None) => write!(f, " ({pos})")?,
            (None, Some(span)) => write!(f, " (characters {span})")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn one(diagnostic: Diagnostic) -> Diagnostics {
        Diagnostics(vec![diagnostic])
    }

    /// ARM's error code for the whole set (the first problem's).
    pub fn code(&self) -> &'static str {
        self.0.first().map_or(Code::InvalidTemplate.as_str(), |d| d.code.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Replaces every occurrence of a secret in the messages with `***` (secure parameter values must never be
    /// shown, even when an expression fails on one). Secrets shorter than 3 characters are left alone: replacing
    /// every `a` would make the message useless and hide nothing worth hiding.
    pub fn redact(mut self, secrets: &[String]) -> Diagnostics {
        for d in &mut self.0 {
            for secret in secrets.iter().filter(|s| s.chars().count() >= 3) {
                if d.message.contains(secret.as_str()) {
                    d.message = d.message.replace(secret.as_str(), "***");
                }
            }
        }
        self
    }

    /// Fills in line and column from a source map.
    pub fn locate(mut self, map: &crate::json::SourceMap) -> Diagnostics {
        for d in &mut self.0 {
            if d.position.is_none() {
                d.position = map.nearest(&d.path);
            }
        }
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
