//! The Bicep lexer: turns source text into tokens that cover every byte (trivia included), so the
//! tree built from them is lossless. It never fails; bad input becomes `Unrecognized` or
//! unterminated tokens plus diagnostics (BCP001–BCP006, BCP103, BCP140).

use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// What a token is. Keywords such as `param` are plain identifiers (Bicep treats them by position);
/// only `true`, `false` and `null` are their own kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Identifier,
    Integer,
    TrueKeyword,
    FalseKeyword,
    NullKeyword,
    /// `'abc'` (no interpolation).
    StringComplete,
    /// `'abc${`
    StringLeftPiece,
    /// `}abc${`
    StringMiddlePiece,
    /// `}abc'`
    StringRightPiece,
    /// `'''...'''`
    MultilineString,
    LeftBrace,
    RightBrace,
    LeftParen,
    RightParen,
    LeftSquare,
    RightSquare,
    Comma,
    Dot,
    Question,
    DoubleQuestion,
    Colon,
    DoubleColon,
    Semicolon,
    Assignment,
    Equals,
    NotEquals,
    EqualsInsensitive,
    NotEqualsInsensitive,
    Exclamation,
    Less,
    LessOrEquals,
    Greater,
    GreaterOrEquals,
    Plus,
    Minus,
    Asterisk,
    Slash,
    Modulo,
    LogicalAnd,
    LogicalOr,
    Pipe,
    At,
    Arrow,
    Ellipsis,
    NewLine,
    Whitespace,
    SingleLineComment,
    MultiLineComment,
    Unrecognized,
}

impl TokenKind {
    /// Whitespace and comments: kept in the tree, skipped by the parser.
    pub fn is_trivia(self) -> bool {
        matches!(self, Self::Whitespace | Self::SingleLineComment | Self::MultiLineComment)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// Splits `source` into tokens covering it completely, in order.
pub fn lex(source: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lexer = Lexer {
        src: source,
        bytes: source.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        diagnostics: Vec::new(),
        templates: Vec::new(),
    };
    lexer.run();
    (lexer.tokens, lexer.diagnostics)
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token>,
    diagnostics: Vec<Diagnostic>,
    /// One entry per open `${`: how many `{` are open inside that interpolation.
    templates: Vec<u32>,
}

impl Lexer<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token { kind, span: Span::new(start, self.pos) });
    }

    fn run(&mut self) {
        // A byte order mark is trivia.
        if self.src.starts_with('\u{feff}') {
            self.pos = 3;
            self.push(TokenKind::Whitespace, 0);
        }
        while self.pos < self.bytes.len() {
            let start = self.pos;
            let c = self.bytes[self.pos];
            match c {
                b' ' | b'\t' => {
                    while matches!(self.peek(0), Some(b' ' | b'\t')) {
                        self.pos += 1;
                    }
                    self.push(TokenKind::Whitespace, start);
                }
                b'\r' | b'\n' => {
                    if c == b'\r' && self.peek(1) == Some(b'\n') {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                    }
                    self.push(TokenKind::NewLine, start);
                }
                b'/' if self.peek(1) == Some(b'/') => {
                    while !matches!(self.peek(0), None | Some(b'\r' | b'\n')) {
                        self.pos += 1;
                    }
                    self.push(TokenKind::SingleLineComment, start);
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    self.pos += 2;
                    loop {
                        match self.peek(0) {
                            None => {
                                self.diagnostics.push(Diagnostic::error(
                                    "BCP002",
                                    "The multi-line comment at this location is not terminated. Terminate it with the */ character sequence.",
                                    Span::new(start, self.pos),
                                ));
                                break;
                            }
                            Some(b'*') if self.peek(1) == Some(b'/') => {
                                self.pos += 2;
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                    self.push(TokenKind::MultiLineComment, start);
                }
                b'\'' if self.peek(1) == Some(b'\'') && self.peek(2) == Some(b'\'') => {
                    self.multiline_string()
                }
                b'\'' => {
                    self.pos += 1;
                    self.string_body(start, false);
                }
                b'}' if self.templates.last() == Some(&0) => {
                    self.pos += 1;
                    self.string_body(start, true);
                }
                b'0'..=b'9' => {
                    while matches!(self.peek(0), Some(b'0'..=b'9')) {
                        self.pos += 1;
                    }
                    self.push(TokenKind::Integer, start);
                }
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                    while matches!(
                        self.peek(0),
                        Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_')
                    ) {
                        self.pos += 1;
                    }
                    let kind = match &self.src[start..self.pos] {
                        "true" => TokenKind::TrueKeyword,
                        "false" => TokenKind::FalseKeyword,
                        "null" => TokenKind::NullKeyword,
                        _ => TokenKind::Identifier,
                    };
                    self.push(kind, start);
                }
                _ => self.operator(start),
            }
        }
    }

    fn operator(&mut self, start: usize) {
        let two = (self.bytes[self.pos], self.peek(1).unwrap_or(0));
        let (kind, len) = match two {
            (b'=', b'=') => (TokenKind::Equals, 2),
            (b'=', b'~') => (TokenKind::EqualsInsensitive, 2),
            (b'=', b'>') => (TokenKind::Arrow, 2),
            (b'!', b'=') => (TokenKind::NotEquals, 2),
            (b'!', b'~') => (TokenKind::NotEqualsInsensitive, 2),
            (b'<', b'=') => (TokenKind::LessOrEquals, 2),
            (b'>', b'=') => (TokenKind::GreaterOrEquals, 2),
            (b'&', b'&') => (TokenKind::LogicalAnd, 2),
            (b'|', b'|') => (TokenKind::LogicalOr, 2),
            (b'?', b'?') => (TokenKind::DoubleQuestion, 2),
            (b':', b':') => (TokenKind::DoubleColon, 2),
            (b'.', b'.') if self.peek(2) == Some(b'.') => (TokenKind::Ellipsis, 3),
            (b'{', _) => (TokenKind::LeftBrace, 1),
            (b'}', _) => (TokenKind::RightBrace, 1),
            (b'(', _) => (TokenKind::LeftParen, 1),
            (b')', _) => (TokenKind::RightParen, 1),
            (b'[', _) => (TokenKind::LeftSquare, 1),
            (b']', _) => (TokenKind::RightSquare, 1),
            (b',', _) => (TokenKind::Comma, 1),
            (b'.', _) => (TokenKind::Dot, 1),
            (b'?', _) => (TokenKind::Question, 1),
            (b':', _) => (TokenKind::Colon, 1),
            (b';', _) => (TokenKind::Semicolon, 1),
            (b'=', _) => (TokenKind::Assignment, 1),
            (b'!', _) => (TokenKind::Exclamation, 1),
            (b'<', _) => (TokenKind::Less, 1),
            (b'>', _) => (TokenKind::Greater, 1),
            (b'+', _) => (TokenKind::Plus, 1),
            (b'-', _) => (TokenKind::Minus, 1),
            (b'*', _) => (TokenKind::Asterisk, 1),
            (b'/', _) => (TokenKind::Slash, 1),
            (b'%', _) => (TokenKind::Modulo, 1),
            (b'|', _) => (TokenKind::Pipe, 1),
            (b'@', _) => (TokenKind::At, 1),
            _ => (TokenKind::Unrecognized, 0),
        };
        if kind == TokenKind::Unrecognized {
            // One whole character (UTF-8 aware), or a double-quoted run as Bicep reports it.
            let ch = self.src[self.pos..].chars().next().map_or(1, char::len_utf8);
            self.pos += ch;
            if ch == 1 && self.bytes[start] == b'"' {
                while !matches!(self.peek(0), None | Some(b'\r' | b'\n')) {
                    let closing = self.peek(0) == Some(b'"');
                    self.pos += self.src[self.pos..].chars().next().map_or(1, char::len_utf8);
                    if closing {
                        break;
                    }
                }
            }
            let text = &self.src[start..self.pos];
            let diagnostic = if text.starts_with('"') {
                Diagnostic::error(
                    "BCP103",
                    format!("The following token is not recognized: \"{text}\". Strings are defined using single quotes in bicep."),
                    Span::new(start, self.pos),
                )
            } else {
                Diagnostic::error(
                    "BCP001",
                    format!("The following token is not recognized: \"{text}\"."),
                    Span::new(start, self.pos),
                )
            };
            self.diagnostics.push(diagnostic);
            self.push(TokenKind::Unrecognized, start);
            return;
        }
        self.pos += len;
        match kind {
            TokenKind::LeftBrace => {
                if let Some(depth) = self.templates.last_mut() {
                    *depth += 1;
                }
            }
            TokenKind::RightBrace => {
                if let Some(depth) = self.templates.last_mut() {
                    *depth = depth.saturating_sub(1);
                }
            }
            _ => {}
        }
        self.push(kind, start);
    }

    /// Scans a string after its opening `'` (or after the `}` closing an interpolation).
    fn string_body(&mut self, start: usize, continuation: bool) {
        if continuation {
            self.templates.pop();
        }
        loop {
            match self.peek(0) {
                None => {
                    self.diagnostics.push(Diagnostic::error(
                        "BCP003",
                        "The string at this location is not terminated. Terminate the string with a single quote character.",
                        Span::new(start, self.pos),
                    ));
                    let kind = if continuation {
                        TokenKind::StringRightPiece
                    } else {
                        TokenKind::StringComplete
                    };
                    self.push(kind, start);
                    return;
                }
                Some(b'\r' | b'\n') => {
                    self.diagnostics.push(Diagnostic::error(
                        "BCP004",
                        "The string at this location is not terminated due to an unexpected new line character.",
                        Span::new(start, self.pos),
                    ));
                    let kind = if continuation {
                        TokenKind::StringRightPiece
                    } else {
                        TokenKind::StringComplete
                    };
                    self.push(kind, start);
                    return;
                }
                Some(b'\\') => {
                    let escape_start = self.pos;
                    self.pos += 1;
                    match self.peek(0) {
                        None => {
                            self.diagnostics.push(Diagnostic::error(
                                "BCP005",
                                "The string at this location is not terminated. Complete the escape sequence and terminate the string with a single unescaped quote character.",
                                Span::new(start, self.pos),
                            ));
                        }
                        Some(b'\\' | b'\'' | b'n' | b'r' | b't' | b'$') => self.pos += 1,
                        Some(b'u') if self.peek(1) == Some(b'{') => {
                            self.pos += 2;
                            while matches!(
                                self.peek(0),
                                Some(b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                            ) {
                                self.pos += 1;
                            }
                            if self.peek(0) == Some(b'}') {
                                self.pos += 1;
                            }
                        }
                        Some(_) => {
                            let len = self.src[self.pos..].chars().next().map_or(1, char::len_utf8);
                            self.pos += len;
                            self.diagnostics.push(Diagnostic::error(
                                "BCP006",
                                "The specified escape sequence is not recognized. Only the following escape sequences are allowed: \"\\$\", \"\\'\", \"\\\\\", \"\\n\", \"\\r\", \"\\t\", \"\\u{...}\".",
                                Span::new(escape_start, self.pos),
                            ));
                        }
                    }
                }
                Some(b'\'') => {
                    self.pos += 1;
                    let kind = if continuation {
                        TokenKind::StringRightPiece
                    } else {
                        TokenKind::StringComplete
                    };
                    self.push(kind, start);
                    return;
                }
                Some(b'$') if self.peek(1) == Some(b'{') => {
                    self.pos += 2;
                    let kind = if continuation {
                        TokenKind::StringMiddlePiece
                    } else {
                        TokenKind::StringLeftPiece
                    };
                    self.templates.push(0);
                    self.push(kind, start);
                    return;
                }
                Some(_) => {
                    let len = self.src[self.pos..].chars().next().map_or(1, char::len_utf8);
                    self.pos += len;
                }
            }
        }
    }

    fn multiline_string(&mut self) {
        let start = self.pos;
        self.pos += 3;
        loop {
            if self.pos >= self.bytes.len() {
                self.diagnostics.push(Diagnostic::error(
                    "BCP140",
                    "The multi-line string at this location is not terminated. Terminate it with \"'''\".",
                    Span::new(start, self.pos),
                ));
                break;
            }
            if self.src[self.pos..].starts_with("'''") {
                self.pos += 3;
                // Extra quotes right before the terminator belong to the content.
                while self.peek(0) == Some(b'\'') {
                    self.pos += 1;
                }
                break;
            }
            let len = self.src[self.pos..].chars().next().map_or(1, char::len_utf8);
            self.pos += len;
        }
        self.push(TokenKind::MultilineString, start);
    }
}

/// The value of a string token's literal part (quotes, `${`/`}` stripped, escapes resolved).
pub fn string_piece_value(kind: TokenKind, text: &str) -> String {
    let inner = match kind {
        TokenKind::StringComplete => strip(text, "'", "'"),
        TokenKind::StringLeftPiece => strip(text, "'", "${"),
        TokenKind::StringMiddlePiece => strip(text, "}", "${"),
        TokenKind::StringRightPiece => strip(text, "}", "'"),
        TokenKind::MultilineString => {
            let body = text.strip_prefix("'''").unwrap_or(text);
            let body = body.strip_suffix("'''").unwrap_or(body);
            // The first line break right after the opening quotes is not part of the value.
            let body =
                body.strip_prefix("\r\n").or_else(|| body.strip_prefix('\n')).unwrap_or(body);
            return body.to_owned();
        }
        _ => text,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') if chars.peek() == Some(&'{') => {
                chars.next();
                let mut hex = String::new();
                while let Some(&h) = chars.peek() {
                    if h == '}' {
                        chars.next();
                        break;
                    }
                    hex.push(h);
                    chars.next();
                }
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn strip<'t>(text: &'t str, prefix: &str, suffix: &str) -> &'t str {
    let body = text.strip_prefix(prefix).unwrap_or(text);
    body.strip_suffix(suffix).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        lex(source).0.into_iter().map(|t| t.kind).filter(|k| !k.is_trivia()).collect()
    }

    #[test]
    fn interpolation_pieces_nest() {
        use TokenKind::*;
        assert_eq!(
            kinds("'a${b}c${ {x: 'y'}.x }d'"),
            vec![
                StringLeftPiece,
                Identifier,
                StringMiddlePiece,
                LeftBrace,
                Identifier,
                Colon,
                StringComplete,
                RightBrace,
                Dot,
                Identifier,
                StringRightPiece
            ]
        );
    }

    #[test]
    fn tokens_cover_the_source() {
        let source = "param a string = 'x${a}' // c\n/* d */ var b = '''\nq'''\n\"";
        let (tokens, _) = lex(source);
        let rebuilt: String = tokens.iter().map(|t| &source[t.span.range()]).collect();
        assert_eq!(rebuilt, source);
    }

    #[test]
    fn escapes_and_multiline_values() {
        assert_eq!(string_piece_value(TokenKind::StringComplete, r"'a\'b\n\u{41}\$'"), "a'b\nA$");
        assert_eq!(string_piece_value(TokenKind::MultilineString, "'''\nx\n'''"), "x\n");
    }
}
