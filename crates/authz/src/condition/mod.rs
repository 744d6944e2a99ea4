//! Role assignment conditions (Azure ABAC, `conditionVersion` "2.0"): parse once, evaluate per request.
//!
//! The language (reference §4, and Azure's "condition format and syntax" page):
//!
//! ```text
//! cond     := unary { ("AND" | "&&") unary } | unary { ("OR" | "||") unary }   (no mixing without parentheses)
//! unary    := ("NOT" | "!") unary | "(" cond ")" | primary
//! primary  := "ActionMatches" "{" 'pattern' "}" | "SubOperationMatches" "{" 'pattern' "}"
//!           | "Exists" attribute | operand OPERATOR operand
//! operand  := attribute | literal | "{" literal { "," literal } "}"
//! attribute:= "@" ("Resource" | "Request" | "Principal" | "Environment") "[" name "]"
//! literal  := 'string' | integer | true | false | bare GUID        (date-times are quoted strings)
//! ```
//!
//! Operators: `StringEquals`, `StringNotEquals`, `StringStartsWith`, `StringNotStartsWith`, `StringLike`,
//! `StringNotLike` (each also `…IgnoreCase`); `NumericEquals`, `NumericNotEquals`, `NumericGreaterThan[Equals]`,
//! `NumericLessThan[Equals]` (integers only); the same six for `DateTime…` (`yyyy-mm-ddThh:mm:ss[.fffffff]Z`);
//! `GuidEquals`, `GuidNotEquals`; `BoolEquals`, `BoolNotEquals`; `ListContains`, `ListNotContains`; and the
//! cross-product forms `ForAnyOfAnyValues:`, `ForAllOfAnyValues:`, `ForAnyOfAllValues:`, `ForAllOfAllValues:`
//! before the string Equals/Like operators (and their negations and IgnoreCase forms), the numeric ones and the GUID
//! ones — exactly the list Azure documents. A `{…}` set needs a cross-product operator.
//!
//! Case: keywords, function and operator names, attribute sources and `true`/`false` are read case-insensitively;
//! attribute names compare ASCII case-insensitively (except names carrying `<$key_case_sensitive$>`, which compare
//! exactly); `ActionMatches` and `SubOperationMatches` use ARM's action matcher (case-insensitive, `*` wildcards);
//! string values compare as their operator says (`…IgnoreCase` or not); GUIDs compare case-insensitively.
//! Azure documents the operator names in one casing and does not say whether others are refused; berth accepts
//! any casing.

mod ast;
mod eval;
mod lexer;
mod like;
mod parser;
mod value;

pub use value::{AttributeSource, Attributes, DateTime, Value, CASE_SENSITIVE_KEY_MARKER};

use std::fmt;

/// The only `conditionVersion` Azure accepts ("Currently the only accepted value is '2.0'").
pub const SUPPORTED_VERSION: &str = "2.0";

/// What ARM answers (HTTP 400) for a condition it cannot accept, whatever the reason (a syntax error, or a
/// `conditionVersion` other than 2.0). The reference names no error code for it; the detail of a
/// [`ConditionError`] can follow this sentence.
pub const ARM_INVALID_CONDITION_MESSAGE: &str = "The given role assignment condition is invalid.";

/// The attribute that carries a repository name in a registry's data-plane requests:
/// `@Request[Microsoft.ContainerRegistry/registries/repositories:name]`.
pub const REPOSITORY_NAME_ATTRIBUTE: &str =
    "Microsoft.ContainerRegistry/registries/repositories:name";

/// A condition that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// The text does not parse. `offset` is a byte offset; `line` and `column` count from 1 (columns in characters).
    #[error("invalid condition at line {line}, column {column}: {message}")]
    Syntax { offset: usize, line: usize, column: usize, message: String },
    #[error("unsupported conditionVersion '{0}': the only accepted value is '2.0'")]
    UnsupportedVersion(String),
}

impl ConditionError {
    pub(crate) fn new(text: &str, offset: usize, message: impl Into<String>) -> ConditionError {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        ConditionError::Syntax { offset, line, column, message: message.into() }
    }

    /// `(line, column)` of a syntax error, both from 1.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConditionError::Syntax { line, column, .. } => Some((*line, *column)),
            ConditionError::UnsupportedVersion(_) => None,
        }
    }
}

/// What a condition is evaluated against: the action being checked and the request's attributes (and its
/// sub-operation, which [`Attributes`] carries).
#[derive(Debug, Clone, Copy)]
pub struct ConditionContext<'a> {
    pub action: &'a str,
    pub attributes: &'a Attributes,
}

/// A parsed condition. Parse it once (when the role assignment is written or loaded) and keep it with the
/// assignment; [`evaluate`](Condition::evaluate) then does no parsing and allocates only for `StringLike` tests.
///
/// **A missing attribute.** Azure's documentation does not say what a comparison with an attribute the request
/// does not carry yields (it offers `Exists` to test for presence). berth makes every comparison that involves a
/// missing attribute **false**, whatever the operator, negated ones (`StringNotEquals`, …) included; `NOT` around
/// such a comparison is then true. So `!(ActionMatches{'…/content/read'}) OR @Request[…:name] StringStartsWith
/// 'team-a/'` denies reads when no repository name is known. Likewise a value that is not of the operator's type
/// (a string that is no integer under `NumericEquals`) makes that one test false, and a plain (non-cross-product)
/// operator applied to a multi-valued attribute is false unless the attribute has exactly one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    text: String,
    expr: ast::Expr,
}

impl Condition {
    /// Parse a version 2.0 condition.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        Ok(Condition { text: text.to_string(), expr: parser::parse(text)? })
    }

    /// Parse a condition with the assignment's `conditionVersion`. An absent version is taken as 2.0 (what `az`
    /// sends with `--condition` alone); any other value is refused, as ARM refuses it.
    pub fn parse_versioned(text: &str, version: Option<&str>) -> Result<Condition, ConditionError> {
        match version.map(str::trim) {
            None | Some(SUPPORTED_VERSION) => Condition::parse(text),
            Some(other) => Err(ConditionError::UnsupportedVersion(other.to_string())),
        }
    }

    /// Whether the condition holds for this request.
    pub fn evaluate(&self, ctx: &ConditionContext<'_>) -> bool {
        eval::eval(&self.expr, ctx)
    }

    /// The condition as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The action patterns of its `ActionMatches{…}` (the actions it targets), in order of appearance.
    pub fn targeted_actions(&self) -> Vec<&str> {
        fn walk<'e>(e: &'e ast::Expr, out: &mut Vec<&'e str>) {
            match e {
                ast::Expr::And(items) | ast::Expr::Or(items) => {
                    items.iter().for_each(|i| walk(i, out))
                }
                ast::Expr::Not(inner) => walk(inner, out),
                ast::Expr::ActionMatches(p) => out.push(p),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Condition {
    type Err = ConditionError;
    fn from_str(s: &str) -> Result<Condition, ConditionError> {
        Condition::parse(s)
    }
}

#[cfg(test)]
mod tests;
