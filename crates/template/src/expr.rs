//! The ARM expression language: template strings (`"[...]"`, `"[[..."` escapes) parsed into an AST with spans.
//!
//! Grammar (no infix operators in ARM):
//! ```text
//! expression := primary accessor*
//! primary    := call | 'string' ('' escapes a quote) | integer | true | false | null
//! call       := name [ '.' name ] '(' [ expression { ',' expression } ] ')'
//! accessor   := '.' name | '[' expression ']'
//! ```
//! Spans are byte offsets into the whole JSON string, so `[` of `"[concat(...)]"` is offset 0.

use std::fmt;

/// A byte range in the template string an expression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    String(String),
    Int(i64),
    Bool(bool),
    Null,
    /// `name(args)`; `namespace` is set for user-defined functions (`ns.name(args)`).
    Call {
        namespace: Option<String>,
        name: String,
        name_span: Span,
        args: Vec<Expr>,
    },
    /// `target.name`
    Property {
        target: Box<Expr>,
        name: String,
    },
    /// `target[index]`
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
    },
}

impl Expr {
    /// Visits this expression and every sub-expression, outermost first.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Expr)) {
        visit(self);
        match &self.kind {
            ExprKind::Call { args, .. } => args.iter().for_each(|a| a.walk(visit)),
            ExprKind::Property { target, .. } => target.walk(visit),
            ExprKind::Index { target, index } => {
                target.walk(visit);
                index.walk(visit);
            }
            _ => {}
        }
    }
}

/// What a JSON string in a template means.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateString {
    /// A plain string (with a leading `[[` already turned into `[`).
    Literal(String),
    Expression(Expr),
}

/// A syntax error in an expression, with the byte range it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {span} of the expression)")]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

/// Deeper nesting is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// Classifies a template string: a literal, or an expression parsed into its AST.
pub fn parse_template_string(text: &str) -> Result<TemplateString, SyntaxError> {
    if !(text.starts_with('[') && text.ends_with(']')) || text.len() < 2 {
        return Ok(TemplateString::Literal(text.to_string()));
    }
    if text.starts_with("[[") {
        return Ok(TemplateString::Literal(text[1..].to_string()));
    }
    let mut parser = ExprParser { text, at: 1, end: text.len() - 1 };
    parser.skip_space();
    if parser.at == parser.end {
        return Err(SyntaxError {
            message: "empty expression '[]'".into(),
            span: Span { start: 0, end: text.len() },
        });
    }
    let expr = parser.expression(0)?;
    parser.skip_space();
    if parser.at != parser.end {
        let span = Span { start: parser.at, end: parser.end };
        return Err(SyntaxError {
            message: format!(
                "unexpected '{}' after the end of the expression",
                &text[parser.at..parser.end]
            ),
            span,
        });
    }
    Ok(TemplateString::Expression(expr))
}

/// Parses an expression without the surrounding brackets (as in `if()` conditions written by hand in tests).
pub fn parse_expression(text: &str) -> Result<Expr, SyntaxError> {
    match parse_template_string(&format!("[{text}]"))? {
        TemplateString::Expression(mut expr) => {
            shift(&mut expr, -1);
            Ok(expr)
        }
        TemplateString::Literal(_) => {
            Err(SyntaxError { message: "not an expression".into(), span: Span::default() })
        }
    }
}

fn shift(expr: &mut Expr, by: isize) {
    let move_span = |s: &mut Span| {
        s.start = s.start.saturating_add_signed(by);
        s.end = s.end.saturating_add_signed(by);
    };
    move_span(&mut expr.span);
    match &mut expr.kind {
        ExprKind::Call { name_span, args, .. } => {
            move_span(name_span);
            args.iter_mut().for_each(|a| shift(a, by));
        }
        ExprKind::Property { target, .. } => shift(target, by),
        ExprKind::Index { target, index } => {
            shift(target, by);
            shift(index, by);
        }
        _ => {}
    }
}

struct ExprParser<'a> {
    text: &'a str,
    at: usize,
    end: usize,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..self.end].chars().next()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.at += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        let width = self.peek().map_or(0, char::len_utf8);
        SyntaxError { message: message.into(), span: Span { start: self.at, end: self.at + width } }
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            Some(c) => format!("'{c}'"),
            None => "the end of the expression".into(),
        }
    }

    fn name(&mut self) -> Option<(String, Span)> {
        let start = self.at;
        match self.peek() {
            Some(c) if is_name_start(c) => {}
            _ => return None,
        }
        while let Some(c) = self.peek() {
            if is_name_char(c) {
                self.at += c.len_utf8();
            } else {
                break;
            }
        }
        Some((self.text[start..self.at].to_string(), Span { start, end: self.at }))
    }

    fn expression(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(
                self.error_here(format!("expression nested deeper than {MAX_DEPTH} levels"))
            );
        }
        self.skip_space();
        let mut expr = self.primary(depth)?;
        loop {
            self.skip_space();
            match self.peek() {
                Some('.') => {
                    self.at += 1;
                    self.skip_space();
                    let Some((name, span)) = self.name() else {
                        return Err(self.error_here(format!(
                            "expected a property name after '.', found {}",
                            self.describe_next()
                        )));
                    };
                    expr = Expr {
                        span: Span { start: expr.span.start, end: span.end },
                        kind: ExprKind::Property { target: Box::new(expr), name },
                    };
                }
                Some('[') => {
                    self.at += 1;
                    let index = self.expression(depth + 1)?;
                    self.skip_space();
                    if self.peek() != Some(']') {
                        return Err(self.error_here(format!(
                            "expected ']' after an index, found {}",
                            self.describe_next()
                        )));
                    }
                    self.at += 1;
                    expr = Expr {
                        span: Span { start: expr.span.start, end: self.at },
                        kind: ExprKind::Index { target: Box::new(expr), index: Box::new(index) },
                    };
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        let start = self.at;
        match self.peek() {
            Some('\'') => {
                self.at += 1;
                let mut value = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err(SyntaxError {
                                message: "unterminated string literal (a quote inside a string is written '')".into(),
                                span: Span { start, end: self.end },
                            })
                        }
                        Some('\'') => {
                            self.at += 1;
                            if self.peek() == Some('\'') {
                                value.push('\'');
                                self.at += 1;
                            } else {
                                break;
                            }
                        }
                        Some(c) => {
                            value.push(c);
                            self.at += c.len_utf8();
                        }
                    }
                }
                Ok(Expr { kind: ExprKind::String(value), span: Span { start, end: self.at } })
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => {
                self.at += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let span = Span { start, end: self.at };
                let digits = &self.text[start..self.at];
                if self.peek() == Some('.')
                    && self.text[self.at + 1..self.end].starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(SyntaxError {
                        message: "decimal numbers are not part of the expression language (use json('1.5'))".into(),
                        span,
                    });
                }
                let value = digits.parse::<i64>().map_err(|_| SyntaxError {
                    message: format!("invalid integer '{digits}' (integers are 64-bit)"),
                    span,
                })?;
                Ok(Expr { kind: ExprKind::Int(value), span })
            }
            Some(c) if is_name_start(c) => {
                let (first, first_span) = self.name().expect("checked start");
                let mut namespace = None;
                let (mut name, mut name_span) = (first, first_span);
                // `ns.func(` is a user-defined function; `ns.prop` without a call is an error below.
                let save = self.at;
                self.skip_space();
                if self.peek() == Some('.') {
                    self.at += 1;
                    self.skip_space();
                    if let Some((member, member_span)) = self.name() {
                        self.skip_space();
                        if self.peek() == Some('(') {
                            namespace = Some(name);
                            name = member;
                            name_span = Span { start: name_span.start, end: member_span.end };
                        } else {
                            self.at = save;
                        }
                    } else {
                        self.at = save;
                    }
                } else {
                    self.at = save;
                }
                self.skip_space();
                if self.peek() != Some('(') {
                    return match name.to_ascii_lowercase().as_str() {
                        "true" => Ok(Expr { kind: ExprKind::Bool(true), span: name_span }),
                        "false" => Ok(Expr { kind: ExprKind::Bool(false), span: name_span }),
                        "null" => Ok(Expr { kind: ExprKind::Null, span: name_span }),
                        _ => Err(SyntaxError {
                            message: format!(
                                "'{name}' must be followed by '(' (a function call); string literals are written in single quotes"
                            ),
                            span: name_span,
                        }),
                    };
                }
                self.at += 1;
                let mut args = Vec::new();
                self.skip_space();
                if self.peek() == Some(')') {
                    self.at += 1;
                } else {
                    loop {
                        args.push(self.expression(depth + 1)?);
                        self.skip_space();
                        match self.peek() {
                            Some(',') => {
                                self.at += 1;
                            }
                            Some(')') => {
                                self.at += 1;
                                break;
                            }
                            _ => {
                                return Err(self.error_here(format!(
                                    "expected ',' or ')' in the arguments of '{name}', found {}",
                                    self.describe_next()
                                )))
                            }
                        }
                    }
                }
                Ok(Expr {
                    kind: ExprKind::Call { namespace, name, name_span, args },
                    span: Span { start, end: self.at },
                })
            }
            _ => Err(self.error_here(format!(
                "expected a function call, a 'string' or an integer, found {}",
                self.describe_next()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> Expr {
        match parse_template_string(text).unwrap() {
            TemplateString::Expression(e) => e,
            TemplateString::Literal(l) => panic!("literal {l}"),
        }
    }

    #[test]
    fn literals_and_escapes() {
        assert_eq!(
            parse_template_string("plain").unwrap(),
            TemplateString::Literal("plain".into())
        );
        assert_eq!(
            parse_template_string("[[test]").unwrap(),
            TemplateString::Literal("[test]".into())
        );
        assert_eq!(parse_template_string("[[]").unwrap(), TemplateString::Literal("[]".into()));
        assert_eq!(
            parse_template_string("[test").unwrap(),
            TemplateString::Literal("[test".into())
        );
        assert_eq!(parse_template_string("a[b]").unwrap(), TemplateString::Literal("a[b]".into()));
        assert_eq!(parse_template_string("[").unwrap(), TemplateString::Literal("[".into()));
        assert!(parse_template_string("[]").unwrap_err().message.contains("empty"));
        assert!(parse_template_string("[  ]").is_err());
    }

    #[test]
    fn calls_accessors_and_spans() {
        let e = expr("[reference(resourceId('A/b', parameters('n')), '2023-01-31').principalId]");
        let ExprKind::Property { target, name } = &e.kind else { panic!("{e:?}") };
        assert_eq!(name, "principalId");
        let ExprKind::Call { name, args, name_span, .. } = &target.kind else { panic!() };
        assert_eq!(name, "reference");
        assert_eq!(*name_span, Span { start: 1, end: 10 });
        assert_eq!(args.len(), 2);
        assert_eq!(args[1].kind, ExprKind::String("2023-01-31".into()));
        assert_eq!(e.span, Span { start: 1, end: 72 });

        let e = expr("[variables('a')[copyIndex()]['x'].y]");
        let ExprKind::Property { target, .. } = &e.kind else { panic!() };
        let ExprKind::Index { index, target } = &target.kind else { panic!() };
        assert_eq!(index.kind, ExprKind::String("x".into()));
        assert!(matches!(target.kind, ExprKind::Index { .. }));

        let e = expr("[concat('it''s', -12, true, null, ns.fn( 1 ))]");
        let ExprKind::Call { args, .. } = &e.kind else { panic!() };
        assert_eq!(args[0].kind, ExprKind::String("it's".into()));
        assert_eq!(args[1].kind, ExprKind::Int(-12));
        assert_eq!(args[2].kind, ExprKind::Bool(true));
        assert_eq!(args[3].kind, ExprKind::Null);
        assert!(
            matches!(&args[4].kind, ExprKind::Call { namespace: Some(ns), name, .. } if ns == "ns" && name == "fn")
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = parse_template_string("[concat('a', 'b']").unwrap_err();
        assert!(err.message.contains("expected ',' or ')'"), "{err}");
        assert_eq!(err.span.start, 16);
        let err = parse_template_string("[concat('a)]").unwrap_err();
        assert!(err.message.contains("unterminated string"), "{err}");
        let err = parse_template_string("[foo]").unwrap_err();
        assert!(err.message.contains("'foo' must be followed by '('"), "{err}");
        assert_eq!(err.span, Span { start: 1, end: 4 });
        let err = parse_template_string("[concat() x]").unwrap_err();
        assert!(err.message.contains("after the end"), "{err}");
        let err = parse_template_string("[a().]").unwrap_err();
        assert!(err.message.contains("property name"), "{err}");
        let err = parse_template_string("[add(1.5, 2)]").unwrap_err();
        assert!(err.message.contains("decimal"), "{err}");
        let err = parse_template_string("[add(99999999999999999999, 2)]").unwrap_err();
        assert!(err.message.contains("64-bit"), "{err}");
        let deep = format!("[{}1{}]", "f(".repeat(500), ")".repeat(500));
        assert!(parse_template_string(&deep).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn bare_expression_helper() {
        let e = parse_expression("add(1, 2)").unwrap();
        assert_eq!(e.span, Span { start: 0, end: 9 });
    }
}
