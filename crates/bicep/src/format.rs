//! The formatter behind `berth bicep format`: re-lays the tokens of a file with two-space
//! indentation per open bracket, single spaces around operators, no trailing whitespace, at most one
//! blank line, and the comments kept where they were. It works on the token stream, so it changes
//! whitespace only (the tree parses to the same program), and it is idempotent.

use crate::lexer::{Token, TokenKind};
use crate::parser::parse;

/// Formats `source`; `None` when the file has syntax errors (formatting would guess at intent).
pub fn format(source: &str) -> Option<String> {
    let parsed = parse(source);
    if parsed.diagnostics.iter().any(|d| d.is_error()) {
        return None;
    }
    let tokens: Vec<Token> =
        parsed.tree.tokens.iter().copied().filter(|t| t.kind != TokenKind::Whitespace).collect();
    Some(Formatter { source, tokens: &tokens, out: String::with_capacity(source.len()) }.run())
}

struct Formatter<'a> {
    source: &'a str,
    tokens: &'a [Token],
    out: String,
}

fn is_open(kind: TokenKind) -> bool {
    matches!(
        kind,
        TokenKind::LeftBrace
            | TokenKind::LeftSquare
            | TokenKind::LeftParen
            | TokenKind::StringLeftPiece
    )
}

fn is_close(kind: TokenKind) -> bool {
    matches!(
        kind,
        TokenKind::RightBrace
            | TokenKind::RightSquare
            | TokenKind::RightParen
            | TokenKind::StringRightPiece
    )
}

/// Tokens after which a `-` or `!` is a unary operator.
fn starts_operand(previous: Option<TokenKind>) -> bool {
    match previous {
        None => true,
        Some(kind) => !matches!(
            kind,
            TokenKind::Identifier
                | TokenKind::Integer
                | TokenKind::TrueKeyword
                | TokenKind::FalseKeyword
                | TokenKind::NullKeyword
                | TokenKind::StringComplete
                | TokenKind::StringRightPiece
                | TokenKind::MultilineString
                | TokenKind::RightBrace
                | TokenKind::RightSquare
                | TokenKind::RightParen
        ),
    }
}

impl Formatter<'_> {
    fn text(&self, token: Token) -> &str {
        &self.source[token.span.range()]
    }

    fn run(mut self) -> String {
        // Each open bracket remembers whether it opened an indented block (it ended its line).
        let mut stack: Vec<bool> = Vec::new();
        let mut line_start = true;
        let mut blank_lines = 0;
        let mut previous: Option<Token> = None;
        let mut opened_on_line: Vec<usize> = Vec::new();
        let count = self.tokens.len();
        let mut i = 0;
        while i < count {
            let token = self.tokens[i];
            if token.kind == TokenKind::NewLine {
                // The last bracket opened on this line and still open indents the following lines.
                if let Some(&last) = opened_on_line.last() {
                    if last < stack.len() {
                        stack[last] = true;
                    }
                }
                opened_on_line.clear();
                if line_start {
                    blank_lines += 1;
                    if blank_lines == 1 && !self.out.is_empty() {
                        self.out.push('\n');
                    }
                } else {
                    self.out.push('\n');
                    line_start = true;
                    blank_lines = 0;
                }
                previous = None;
                i += 1;
                continue;
            }
            let closing = is_close(token.kind) || token.kind == TokenKind::StringMiddlePiece;
            if line_start {
                let mut level = stack.iter().filter(|indented| **indented).count();
                if closing && stack.last() == Some(&true) {
                    level -= 1;
                }
                self.out.push_str(&"  ".repeat(level));
            } else if let Some(prev) = previous {
                if self.space_between(prev, token, i) || self.would_merge(prev, token) {
                    self.out.push(' ');
                }
            }
            if closing {
                stack.pop();
                opened_on_line.retain(|&index| index < stack.len());
            }
            let source = self.source;
            self.out.push_str(&source[token.span.range()]);
            if is_open(token.kind) || token.kind == TokenKind::StringMiddlePiece {
                opened_on_line.push(stack.len());
                stack.push(false);
            }
            line_start = false;
            blank_lines = 0;
            previous = Some(token);
            i += 1;
        }
        while self.out.ends_with('\n') {
            self.out.pop();
        }
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }

    /// Whether two tokens written without a space would lex differently (`:` `::` → `:::`).
    fn would_merge(&self, prev: Token, next: Token) -> bool {
        if matches!(prev.kind, TokenKind::StringLeftPiece | TokenKind::StringMiddlePiece)
            || matches!(next.kind, TokenKind::StringMiddlePiece | TokenKind::StringRightPiece)
        {
            return false;
        }
        let joined = format!("{}{}", self.text(prev), self.text(next));
        let (tokens, _) = crate::lexer::lex(&joined);
        !(tokens.len() == 2 && tokens[0].kind == prev.kind && tokens[1].kind == next.kind)
    }

    fn previous_significant(&self, index: usize) -> Option<TokenKind> {
        self.tokens[..index]
            .iter()
            .rev()
            .map(|t| t.kind)
            .find(|k| !k.is_trivia() && *k != TokenKind::NewLine)
    }

    fn space_between(&self, prev: Token, next: Token, index: usize) -> bool {
        use TokenKind::*;
        let (p, n) = (prev.kind, next.kind);
        if n == SingleLineComment || n == MultiLineComment || p == MultiLineComment {
            return true;
        }
        if matches!(p, StringLeftPiece | StringMiddlePiece)
            || matches!(n, StringMiddlePiece | StringRightPiece)
        {
            return false;
        }
        if matches!(n, Comma | RightParen | RightSquare | Dot | DoubleColon | Colon)
            && !(n == Colon && self.is_ternary_colon(index))
        {
            return false;
        }
        if matches!(p, LeftParen | LeftSquare | Dot | DoubleColon | At) {
            return false;
        }
        if p == Question && n == Dot {
            return false;
        }
        if n == Question && p == Dot {
            return false;
        }
        if n == LeftParen && matches!(p, Identifier) && !self.is_keyword_before_paren(prev) {
            return false;
        }
        if n == LeftSquare
            && matches!(
                p,
                Identifier | RightParen | RightSquare | StringComplete | StringRightPiece
            )
        {
            // Postfix indexing, unless the identifier is a keyword like `in` or a declaration's type.
            return self.is_keyword_before_paren(prev);
        }
        if p == LeftSquare && n == Question {
            return false;
        }
        if matches!(p, Exclamation | Minus) && starts_operand(self.previous_significant(index - 1))
        {
            return false;
        }
        if p == LeftBrace && n == RightBrace || p == LeftSquare && n == RightSquare {
            return false;
        }
        true
    }

    /// `if (`, `for (`, `in [`: keywords keep their space before a bracket.
    fn is_keyword_before_paren(&self, token: Token) -> bool {
        token.kind == TokenKind::Identifier && matches!(self.text(token), "if" | "for" | "in")
    }

    /// A `:` belongs to a ternary when an unmatched `?` precedes it on the same bracket level.
    fn is_ternary_colon(&self, index: usize) -> bool {
        let mut depth = 0i32;
        for token in self.tokens[..index].iter().rev() {
            match token.kind {
                k if is_close(k) => depth += 1,
                k if is_open(k) => {
                    if depth == 0 {
                        return false;
                    }
                    depth -= 1;
                }
                TokenKind::Question if depth == 0 => return true,
                TokenKind::Colon | TokenKind::Comma | TokenKind::NewLine if depth == 0 => {
                    return false
                }
                _ => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_a_messy_file() {
        let source = "param  a string='x'   // keep\n\n\n\nresource r 'A.B/c@1'={\nname:a\n  properties:{ \nv: [1,2]\n x: a=='x'?-1:f(a)[0]\n}\n}\noutput o string='${ a }'\n";
        let formatted = format(source).unwrap();
        assert_eq!(
            formatted,
            "param a string = 'x' // keep\n\nresource r 'A.B/c@1' = {\n  name: a\n  properties: {\n    v: [1, 2]\n    x: a == 'x' ? -1 : f(a)[0]\n  }\n}\noutput o string = '${a}'\n"
        );
        assert_eq!(format(&formatted).unwrap(), formatted);
    }

    #[test]
    fn refuses_files_with_syntax_errors() {
        assert_eq!(format("param\n"), None);
    }
}
