//! The condition language's tokens: punctuation, quoted strings, `@Source[name]` attribute references and words
//! (keywords, function and operator names, integers, booleans, bare GUIDs), each with its byte offset.

use super::value::AttributeSource;
use super::ConditionError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    /// `!`
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// The text between single quotes: `\'` stands for a quote; every other backslash is kept (so `StringLike`
    /// sees its `\*` and `\?` escapes).
    Str(String),
    Attr {
        source: AttributeSource,
        name: String,
    },
    /// A run of letters, digits and `_ . : -`.
    Word(String),
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::Comma => "','".into(),
            Tok::Bang => "'!'".into(),
            Tok::AndAnd => "'&&'".into(),
            Tok::OrOr => "'||'".into(),
            Tok::Str(s) => format!("the string '{s}'"),
            Tok::Attr { source, name } => format!("the attribute @{}[{name}]", source.as_str()),
            Tok::Word(w) => format!("'{w}'"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offset of the token's first character.
    pub at: usize,
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-')
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, ConditionError> {
    let b = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = i;
        let simple = match c {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b',' => Some(Tok::Comma),
            b'!' => Some(Tok::Bang),
            _ => None,
        };
        if let Some(tok) = simple {
            tokens.push(Token { tok, at });
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        match c {
            b'&' | b'|' => {
                if b.get(i + 1) != Some(&c) {
                    let op = if c == b'&' { "&&" } else { "||" };
                    return Err(ConditionError::new(
                        text,
                        at,
                        format!("unexpected '{}': the operator is '{op}'", c as char),
                    ));
                }
                tokens.push(Token { tok: if c == b'&' { Tok::AndAnd } else { Tok::OrOr }, at });
                i += 2;
            }
            b'\'' => {
                let mut value = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < b.len() {
                    match b[j] {
                        b'\\' if b.get(j + 1) == Some(&b'\'') => {
                            value.push('\'');
                            j += 2;
                        }
                        b'\'' => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        _ => {
                            // Copy one whole UTF-8 character.
                            let ch = text[j..].chars().next().unwrap_or_default();
                            value.push(ch);
                            j += ch.len_utf8().max(1);
                        }
                    }
                }
                if !closed {
                    return Err(ConditionError::new(
                        text,
                        at,
                        "unterminated string: a closing ' is missing",
                    ));
                }
                tokens.push(Token { tok: Tok::Str(value), at });
                i = j;
            }
            b'@' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_alphabetic() {
                    j += 1;
                }
                let source_name = &text[i + 1..j];
                let Some(source) = AttributeSource::parse(source_name) else {
                    return Err(ConditionError::new(
                        text,
                        at,
                        format!(
                            "unknown attribute source '@{source_name}': expected @Resource, @Request, @Principal or @Environment"
                        ),
                    ));
                };
                if b.get(j) != Some(&b'[') {
                    return Err(ConditionError::new(
                        text,
                        j,
                        format!("expected '[' after '@{source_name}' to name the attribute"),
                    ));
                }
                let Some(close) = text[j + 1..].find(']') else {
                    return Err(ConditionError::new(
                        text,
                        j,
                        "unterminated attribute name: a closing ']' is missing",
                    ));
                };
                let name = text[j + 1..j + 1 + close].trim();
                if name.is_empty() {
                    return Err(ConditionError::new(text, j, "empty attribute name"));
                }
                if name.chars().any(|c| c.is_whitespace() || c == '[') {
                    return Err(ConditionError::new(
                        text,
                        j + 1,
                        format!("invalid attribute name '{name}'"),
                    ));
                }
                tokens.push(Token { tok: Tok::Attr { source, name: name.to_string() }, at });
                i = j + 1 + close + 1;
            }
            c if is_word_byte(c) => {
                let mut j = i;
                while j < b.len() && is_word_byte(b[j]) {
                    j += 1;
                }
                tokens.push(Token { tok: Tok::Word(text[i..j].to_string()), at });
                i = j;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or_default();
                return Err(ConditionError::new(text, at, format!("unexpected character '{ch}'")));
            }
        }
    }
    Ok(tokens)
}
