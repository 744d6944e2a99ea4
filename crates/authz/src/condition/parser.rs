//! Recursive-descent parser for conditions (version 2.0): tokens in, [`Expr`] out, with typed literals checked
//! against their operators so evaluation never meets a malformed literal.

use super::ast::{AttrRef, Comparison, Expr, Family, Literal, Operand, Operator, Quantifier, Test};
use super::lexer::{tokenize, Tok, Token};
use super::like::LikePattern;
use super::value::{parse_guid, DateTime, Value};
use super::ConditionError;

/// Deeper nesting than this (parentheses and negations) is refused, so a hostile condition cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 64;

pub(crate) fn parse(text: &str) -> Result<Expr, ConditionError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(ConditionError::new(text, text.len(), "the condition is empty"));
    }
    let mut parser = Parser { text, tokens, pos: 0, depth: 0 };
    let expr = parser.expr()?;
    if let Some(token) = parser.peek() {
        let message = match token.tok {
            Tok::RParen => "unbalanced ')': no '(' is open here".to_string(),
            _ => format!("unexpected {} after a complete expression", token.tok.describe()),
        };
        return Err(parser.error_at(token.at, message));
    }
    Ok(expr)
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// An operand before its operator is known: a literal's type depends on the operator.
enum RawOperand {
    Attr(AttrRef),
    Literal(Token),
    Set { at: usize, items: Vec<Token> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Connective {
    And,
    Or,
}

impl Connective {
    fn word(self) -> &'static str {
        match self {
            Connective::And => "AND",
            Connective::Or => "OR",
        }
    }
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn end_offset(&self) -> usize {
        self.text.len()
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> ConditionError {
        ConditionError::new(self.text, at, message)
    }

    /// An error at the next token (or at the end), saying what was expected and what was found.
    fn expected(&self, what: &str) -> ConditionError {
        match self.peek() {
            Some(t) => self.error_at(t.at, format!("expected {what}, found {}", t.tok.describe())),
            None => self.error_at(
                self.end_offset(),
                format!("expected {what}, found the end of the condition"),
            ),
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, ConditionError> {
        match self.peek() {
            Some(t) if t.tok == tok => Ok(self.next().expect("peeked")),
            _ => Err(self.expected(what)),
        }
    }

    fn connective(&self) -> Option<Connective> {
        match &self.peek()?.tok {
            Tok::AndAnd => Some(Connective::And),
            Tok::OrOr => Some(Connective::Or),
            Tok::Word(w) if is_keyword(w, "AND") => Some(Connective::And),
            Tok::Word(w) if is_keyword(w, "OR") => Some(Connective::Or),
            _ => None,
        }
    }

    /// `unary { AND unary }` or `unary { OR unary }`: mixing the two at one level needs parentheses, as Azure
    /// requires (`a AND b OR c` is refused).
    fn expr(&mut self) -> Result<Expr, ConditionError> {
        let first = self.unary()?;
        let mut items = vec![first];
        let mut kind: Option<Connective> = None;
        while let Some(c) = self.connective() {
            let at = self.peek().map(|t| t.at).unwrap_or_default();
            match kind {
                Some(k) if k != c => {
                    return Err(self.error_at(
                        at,
                        format!(
                            "'{}' after '{}' at the same level is ambiguous: add parentheses, as in (a {} b) {} c or a {} (b {} c)",
                            c.word(),
                            k.word(),
                            k.word(),
                            c.word(),
                            k.word(),
                            c.word()
                        ),
                    ))
                }
                _ => kind = Some(c),
            }
            self.next();
            if self.peek().is_none() {
                return Err(self.expected(&format!("an expression after '{}'", c.word())));
            }
            items.push(self.unary()?);
        }
        Ok(match kind {
            None => items.pop().expect("one item"),
            Some(Connective::And) => Expr::And(items),
            Some(Connective::Or) => Expr::Or(items),
        })
    }

    fn enter(&mut self, at: usize) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                self.error_at(at, format!("the condition nests deeper than {MAX_DEPTH} levels"))
            );
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, ConditionError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected("an expression"));
        };
        let negation = match &token.tok {
            Tok::Bang => true,
            Tok::Word(w) => is_keyword(w, "NOT"),
            _ => false,
        };
        if negation {
            self.next();
            self.enter(token.at)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ConditionError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected("an expression"));
        };
        match &token.tok {
            Tok::LParen => {
                self.next();
                self.enter(token.at)?;
                if matches!(self.peek().map(|t| &t.tok), Some(Tok::RParen)) {
                    return Err(self.expected("an expression inside the parentheses"));
                }
                let inner = self.expr()?;
                self.depth -= 1;
                match self.peek() {
                    Some(t) if t.tok == Tok::RParen => {
                        self.next();
                        Ok(inner)
                    }
                    Some(_) => Err(self.expected("')' or AND/OR")),
                    None => Err(self
                        .error_at(token.at, "unbalanced '(': the condition ends before its ')'")),
                }
            }
            Tok::Word(w)
                if is_keyword(w, "ActionMatches") || is_keyword(w, "SubOperationMatches") =>
            {
                let action = is_keyword(w, "ActionMatches");
                let name = if action { "ActionMatches" } else { "SubOperationMatches" };
                self.next();
                self.expect(Tok::LBrace, &format!("'{{' after {name}"))?;
                let pattern = match self.peek().cloned() {
                    Some(Token { tok: Tok::Str(s), at }) => {
                        self.next();
                        if s.trim().is_empty() {
                            return Err(
                                self.error_at(at, format!("{name} needs a non-empty pattern"))
                            );
                        }
                        s
                    }
                    _ => return Err(self.expected(&format!("a quoted pattern in {name}{{'…'}}"))),
                };
                self.expect(Tok::RBrace, &format!("'}}' to close {name}{{…}}"))?;
                Ok(if action {
                    Expr::ActionMatches(pattern)
                } else {
                    Expr::SubOperationMatches(pattern)
                })
            }
            Tok::Word(w) if is_keyword(w, "Exists") => {
                self.next();
                match self.peek().cloned() {
                    Some(Token { tok: Tok::Attr { source, name }, .. }) => {
                        self.next();
                        Ok(Expr::Exists(AttrRef { source, name }))
                    }
                    _ => Err(self.expected("an attribute such as @Resource[…] after Exists")),
                }
            }
            Tok::RParen => Err(self.expected("an expression")),
            _ => self.comparison(),
        }
    }

    fn raw_operand(&mut self, role: &str) -> Result<RawOperand, ConditionError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected(role));
        };
        match token.tok {
            Tok::Attr { source, name } => {
                self.next();
                Ok(RawOperand::Attr(AttrRef { source, name }))
            }
            Tok::Str(_) => {
                self.next();
                Ok(RawOperand::Literal(token))
            }
            Tok::Word(ref w) if !is_reserved(w) => {
                self.next();
                Ok(RawOperand::Literal(token))
            }
            Tok::LBrace => {
                self.next();
                let mut items = Vec::new();
                loop {
                    match self.peek().cloned() {
                        Some(t @ Token { tok: Tok::Str(_), .. }) => {
                            self.next();
                            items.push(t);
                        }
                        Some(t @ Token { tok: Tok::Word(_), .. }) => {
                            self.next();
                            items.push(t);
                        }
                        Some(Token { tok: Tok::RBrace, at }) if items.is_empty() => {
                            return Err(
                                self.error_at(at, "empty set: a {…} set needs at least one value")
                            );
                        }
                        _ => return Err(self.expected("a value in the {…} set")),
                    }
                    match self.peek().map(|t| &t.tok) {
                        Some(Tok::Comma) => {
                            self.next();
                        }
                        Some(Tok::RBrace) => {
                            self.next();
                            break;
                        }
                        _ => return Err(self.expected("',' or '}' in the {…} set")),
                    }
                }
                Ok(RawOperand::Set { at: token.at, items })
            }
            _ => Err(self.expected(role)),
        }
    }

    fn comparison(&mut self) -> Result<Expr, ConditionError> {
        let lhs = self.raw_operand("an expression: an attribute such as @Resource[…], ActionMatches{…}, Exists, NOT or '('")?;
        let op = match self.peek().cloned() {
            Some(Token { tok: Tok::Word(w), at }) if !is_reserved(&w) => match parse_operator(&w) {
                Ok(op) => {
                    self.next();
                    op
                }
                Err(message) => return Err(self.error_at(at, message)),
            },
            _ => return Err(self.expected("a comparison operator such as StringEquals")),
        };
        let rhs = self.raw_operand(&format!("a value after {}", op.name()))?;
        let lhs = self.typed(lhs, &op, false)?;
        let rhs = self.typed(rhs, &op, true)?;
        Ok(Expr::Compare(Box::new(Comparison { lhs, op, rhs })))
    }

    /// Check a raw operand against the operator and type its literals.
    fn typed(
        &self,
        raw: RawOperand,
        op: &Operator,
        right: bool,
    ) -> Result<Operand, ConditionError> {
        match raw {
            RawOperand::Attr(a) => Ok(Operand::Attr(a)),
            RawOperand::Literal(token) => {
                Ok(Operand::Literals(vec![self.literal(&token, op, right)?]))
            }
            RawOperand::Set { at, items } => {
                if op.quantifier.is_none() {
                    return Err(self.error_at(
                        at,
                        format!(
                            "a {{…}} set of values needs a cross-product operator such as ForAnyOfAnyValues:{}",
                            op.name()
                        ),
                    ));
                }
                let literals = items
                    .iter()
                    .map(|t| self.literal(t, op, right))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Operand::Literals(literals))
            }
        }
    }

    fn literal(
        &self,
        token: &Token,
        op: &Operator,
        right: bool,
    ) -> Result<Literal, ConditionError> {
        let mismatch = || {
            self.error_at(
                token.at,
                format!(
                    "{} compares {} values: expected {}, found {}",
                    op.name(),
                    op.family.as_str().to_ascii_lowercase(),
                    op.family.literal_form(),
                    token.tok.describe()
                ),
            )
        };
        let value = match (op.family, &token.tok) {
            (Family::String | Family::List, Tok::Str(s)) => Value::String(s.clone()),
            (Family::Numeric, Tok::Word(w)) => {
                Value::Integer(w.parse::<i64>().map_err(|_| mismatch())?)
            }
            (Family::Bool, Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Boolean(true),
            (Family::Bool, Tok::Word(w)) if w.eq_ignore_ascii_case("false") => {
                Value::Boolean(false)
            }
            (Family::Guid, Tok::Word(w) | Tok::Str(w)) => {
                Value::Guid(parse_guid(w).ok_or_else(mismatch)?)
            }
            (Family::DateTime, Tok::Str(s)) => {
                Value::DateTime(DateTime::parse(s).ok_or_else(mismatch)?)
            }
            _ => return Err(mismatch()),
        };
        let like = match (&value, op.family, op.test, right) {
            (Value::String(s), Family::String, Test::Like, true) => {
                Some(LikePattern::compile(s, op.ignore_case))
            }
            _ => None,
        };
        Ok(Literal { value, like })
    }
}

/// Words that cannot be operands or operators.
fn is_reserved(word: &str) -> bool {
    ["AND", "OR", "NOT", "ActionMatches", "SubOperationMatches", "Exists"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// Operator names, case-insensitively: `[Quantifier:]Family[Not]Test[IgnoreCase]`.
pub(crate) fn parse_operator(word: &str) -> Result<Operator, String> {
    let unknown = || {
        format!(
            "unknown operator '{word}': expected a comparison such as StringEquals, StringStartsWithIgnoreCase, \
             StringLike, NumericLessThan, DateTimeGreaterThan, GuidEquals, BoolEquals, or a cross-product form such \
             as ForAnyOfAnyValues:StringEquals"
        )
    };
    let (quantifier, rest) = match word.split_once(':') {
        Some((q, rest)) => {
            let quantifier = Quantifier::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(q)).ok_or_else(|| {
                format!(
                    "unknown cross-product prefix '{q}:': expected ForAnyOfAnyValues, ForAllOfAnyValues, \
                     ForAnyOfAllValues or ForAllOfAllValues"
                )
            })?;
            (Some(quantifier), rest)
        }
        None => (None, word),
    };
    let (family, rest) = Family::ALL
        .into_iter()
        .find_map(|f| strip_prefix_ci(rest, f.as_str()).map(|r| (f, r)))
        .ok_or_else(unknown)?;
    let (negated, rest) = match strip_prefix_ci(rest, "Not") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (test, rest) = family
        .tests()
        .iter()
        .filter_map(|t| strip_prefix_ci(rest, t.as_str()).map(|r| (*t, r)))
        // `GreaterThanEquals` before `GreaterThan`: take the longest test name that fits.
        .min_by_key(|(_, r)| r.len())
        .ok_or_else(unknown)?;
    let (ignore_case, rest) = match strip_prefix_ci(rest, "IgnoreCase") {
        Some(r) if family == Family::String => (true, r),
        _ => (false, rest),
    };
    if !rest.is_empty() || (negated && !test.negatable()) {
        return Err(unknown());
    }
    let op = Operator { quantifier, family, test, negated, ignore_case };
    if quantifier.is_some() && !op.allows_quantifier() {
        let base = Operator { quantifier: None, ..op };
        return Err(format!(
            "'{}' has no cross-product form: cross-product prefixes take StringEquals, StringNotEquals, StringLike, \
             StringNotLike (and their IgnoreCase forms), the Numeric operators, GuidEquals and GuidNotEquals",
            base.name()
        ));
    }
    Ok(op)
}
