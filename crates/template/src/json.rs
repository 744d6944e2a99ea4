//! The lenient JSON reader for template bodies: what Newtonsoft (and so ARM) accepts and the Azure CLI sends.
//!
//! Accepted beyond RFC 8259: `//` and `/* */` comments, trailing commas, unquoted property names (az splices the
//! template file after an unquoted `template:` key), single-quoted strings, and a leading byte-order mark.
//! Every value's position is kept in a [`SourceMap`] keyed by its JSON path, so later diagnostics can say
//! "line 12, column 7" about `resources[1].name`.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

/// A 1-based line and column (in characters) in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Where each value of a parsed document starts, by JSON path (`resources[0].properties.x`; the root is `""`).
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    positions: HashMap<String, Position>,
}

impl SourceMap {
    pub fn get(&self, path: &str) -> Option<Position> {
        self.positions.get(path).copied()
    }

    /// The part of the map under `prefix`, with the prefix removed (for a template nested in a request body).
    pub fn sub_map(&self, prefix: &str) -> SourceMap {
        let positions = self
            .positions
            .iter()
            .filter_map(|(path, pos)| {
                let rest = path.strip_prefix(prefix)?;
                if rest.is_empty() {
                    Some((String::new(), *pos))
                } else if let Some(rest) = rest.strip_prefix('.') {
                    Some((rest.to_string(), *pos))
                } else if rest.starts_with('[') {
                    Some((rest.to_string(), *pos))
                } else {
                    None
                }
            })
            .collect();
        SourceMap { positions }
    }

    /// The nearest recorded position for `path` or one of its ancestors.
    pub fn nearest(&self, path: &str) -> Option<Position> {
        let mut current = path;
        loop {
            if let Some(pos) = self.get(current) {
                return Some(pos);
            }
            if current.is_empty() {
                return None;
            }
            let cut = current.rfind(['.', '[']).unwrap_or(0);
            current = &current[..cut];
        }
    }
}

/// Appends a property name to a JSON path the way diagnostics print it.
pub fn child_path(parent: &str, key: &str) -> String {
    // Built by hand rather than with format!: every value of every parsed document gets a path.
    let plain = !key.is_empty()
        && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    let mut out = String::with_capacity(parent.len() + key.len() + 4);
    out.push_str(parent);
    if plain {
        if !parent.is_empty() {
            out.push('.');
        }
        out.push_str(key);
    } else {
        out.push_str("['");
        out.push_str(&key.replace('\'', "''"));
        out.push_str("']");
    }
    out
}

/// Appends an array index to a JSON path.
pub fn index_path(parent: &str, index: usize) -> String {
    let mut out = String::with_capacity(parent.len() + 6);
    out.push_str(parent);
    out.push('[');
    out.push_str(&index.to_string());
    out.push(']');
    out
}

/// A syntax error in a JSON document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at {position}: {message}")]
pub struct JsonError {
    pub position: Position,
    pub message: String,
}

/// Deeper nesting is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

/// Parses lenient JSON into a value and the positions of its parts.
pub fn parse_lenient(text: &str) -> Result<(Value, SourceMap), JsonError> {
    let mut parser = Parser {
        chars: text.trim_start_matches('\u{feff}').chars().collect(),
        at: 0,
        line: 1,
        column: 1,
        map: SourceMap::default(),
    };
    parser.skip_trivia()?;
    let value = parser.value(String::new(), 0)?;
    parser.skip_trivia()?;
    if parser.at < parser.chars.len() {
        return Err(parser.error("unexpected text after the end of the document"));
    }
    Ok((value, parser.map))
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    line: usize,
    column: usize,
    map: SourceMap,
}

impl Parser {
    fn position(&self) -> Position {
        Position { line: self.line, column: self.column }
    }

    fn error(&self, message: impl Into<String>) -> JsonError {
        JsonError { position: self.position(), message: message.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_trivia(&mut self) -> Result<(), JsonError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') => match self.chars.get(self.at + 1) {
                    Some('/') => {
                        while let Some(c) = self.peek() {
                            if c == '\n' {
                                break;
                            }
                            self.bump();
                        }
                    }
                    Some('*') => {
                        let start = self.position();
                        self.bump();
                        self.bump();
                        loop {
                            match self.bump() {
                                None => {
                                    return Err(JsonError {
                                        position: start,
                                        message: "unterminated /* comment".into(),
                                    })
                                }
                                Some('*') if self.peek() == Some('/') => {
                                    self.bump();
                                    break;
                                }
                                Some(_) => {}
                            }
                        }
                    }
                    _ => return Err(self.error("unexpected '/'")),
                },
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, path: String, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let position = self.position();
        let value = match self.peek() {
            None => return Err(self.error("unexpected end of the document")),
            Some('{') => self.object(&path, depth)?,
            Some('[') => self.array(&path, depth)?,
            Some(quote @ ('"' | '\'')) => Value::String(self.string(quote)?),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number()?,
            Some(c) if c.is_alphabetic() || c == '_' => {
                let word = self.identifier();
                match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => {
                        return Err(JsonError {
                            position,
                            message: format!("unexpected word '{word}' (strings need quotes)"),
                        })
                    }
                }
            }
            Some(c) => return Err(self.error(format!("unexpected character '{c}'"))),
        };
        self.map.positions.insert(path, position);
        Ok(value)
    }

    fn identifier(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '$' || c == '-' {
                word.push(c);
                self.bump();
            } else {
                break;
            }
        }
        word
    }

    fn object(&mut self, path: &str, depth: usize) -> Result<Value, JsonError> {
        self.bump();
        let mut map = Map::new();
        loop {
            self.skip_trivia()?;
            match self.peek() {
                Some('}') => {
                    self.bump();
                    return Ok(Value::Object(map));
                }
                None => return Err(self.error("unterminated object: expected '}'")),
                _ => {}
            }
            let key = match self.peek() {
                Some(quote @ ('"' | '\'')) => self.string(quote)?,
                Some(c) if c.is_alphabetic() || c == '_' || c == '$' => self.identifier(),
                Some(c) => return Err(self.error(format!("expected a property name, found '{c}'"))),
                None => unreachable!("end handled above"),
            };
            self.skip_trivia()?;
            if self.peek() != Some(':') {
                return Err(self.error(format!("expected ':' after property name '{key}'")));
            }
            self.bump();
            self.skip_trivia()?;
            let value = self.value(child_path(path, &key), depth + 1)?;
            map.insert(key, value);
            self.skip_trivia()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {}
                Some(c) => return Err(self.error(format!("expected ',' or '}}', found '{c}'"))),
                None => return Err(self.error("unterminated object: expected '}'")),
            }
        }
    }

    fn array(&mut self, path: &str, depth: usize) -> Result<Value, JsonError> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_trivia()?;
            match self.peek() {
                Some(']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                None => return Err(self.error("unterminated array: expected ']'")),
                _ => {}
            }
            let value = self.value(index_path(path, items.len()), depth + 1)?;
            items.push(value);
            self.skip_trivia()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(']') => {}
                Some(c) => return Err(self.error(format!("expected ',' or ']', found '{c}'"))),
                None => return Err(self.error("unterminated array: expected ']'")),
            }
        }
    }

    fn string(&mut self, quote: char) -> Result<String, JsonError> {
        let start = self.position();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(JsonError {
                        position: start,
                        message: "unterminated string".into(),
                    })
                }
                Some(c) if c == quote => return Ok(out),
                Some('\\') => {
                    let escape_at = self.position();
                    match self.bump() {
                        Some('"') => out.push('"'),
                        Some('\'') => out.push('\''),
                        Some('\\') => out.push('\\'),
                        Some('/') => out.push('/'),
                        Some('b') => out.push('\u{8}'),
                        Some('f') => out.push('\u{c}'),
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('t') => out.push('\t'),
                        Some('u') => {
                            let first = self.hex4()?;
                            if (0xD800..0xDC00).contains(&first) {
                                // A surrogate pair: the low half must follow as another \u escape.
                                if self.bump() != Some('\\') || self.bump() != Some('u') {
                                    return Err(JsonError {
                                        position: escape_at,
                                        message: "lone high surrogate in \\u escape".into(),
                                    });
                                }
                                let second = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&second) {
                                    return Err(JsonError {
                                        position: escape_at,
                                        message: "invalid low surrogate in \\u escape".into(),
                                    });
                                }
                                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            } else {
                                match char::from_u32(first) {
                                    Some(c) => out.push(c),
                                    None => {
                                        return Err(JsonError {
                                            position: escape_at,
                                            message: "lone low surrogate in \\u escape".into(),
                                        })
                                    }
                                }
                            }
                        }
                        Some(c) => {
                            return Err(JsonError {
                                position: escape_at,
                                message: format!("invalid escape '\\{c}'"),
                            })
                        }
                        None => {
                            return Err(JsonError {
                                position: start,
                                message: "unterminated string".into(),
                            })
                        }
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.error("expected 4 hex digits"))?;
            self.bump();
            code = code * 16 + digit;
        }
        Ok(code)
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.position();
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
                text.push(c);
                self.bump();
            } else {
                break;
            }
        }
        let invalid = || JsonError { position: start, message: format!("invalid number '{text}'") };
        if let Ok(int) = text.parse::<i64>() {
            return Ok(Value::Number(int.into()));
        }
        let float: f64 = text.parse().map_err(|_| invalid())?;
        Number::from_f64(float).map(Value::Number).ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_what_az_sends() {
        let text = "{\"properties\": {\"parameters\": {\"a\": {\"value\": \"b\"}}, \"mode\": \"Incremental\", \
                    template:{\n  // comment\n  \"x\": [1, 2,], /* block */ 'y': 'it''s',\n}}}";
        let err = parse_lenient(text).unwrap_err();
        // Single-quoted strings do not use '' as an escape: that is the expression language's rule, not JSON's.
        assert_eq!(err.position.line, 3);
        let text = text.replace("'it''s'", "'its'");
        let (value, map) = parse_lenient(&text).unwrap();
        assert_eq!(
            value,
            json!({"properties": {"parameters": {"a": {"value": "b"}}, "mode": "Incremental",
                   "template": {"x": [1, 2], "y": "its"}}})
        );
        assert_eq!(map.get("properties.template.x[1]"), Some(Position { line: 3, column: 12 }));
        let sub = map.sub_map("properties.template");
        assert_eq!(sub.get("x[1]"), Some(Position { line: 3, column: 12 }));
        assert_eq!(sub.get("y").map(|p| p.line), Some(3));
    }

    #[test]
    fn reports_positions_of_errors() {
        let err = parse_lenient("{\n  \"a\": [1, 2\n}").unwrap_err();
        assert_eq!(err.position, Position { line: 3, column: 1 });
        assert!(err.message.contains("expected ',' or ']'"), "{}", err.message);
        let err = parse_lenient("{\"a\": tru}").unwrap_err();
        assert!(err.message.contains("'tru'"));
        let err = parse_lenient("{} x").unwrap_err();
        assert!(err.message.contains("after the end"));
        let err = parse_lenient("/* never closed").unwrap_err();
        assert!(err.message.contains("unterminated /*"));
        assert!(parse_lenient("").is_err());
        assert!(parse_lenient("\"\\ud800\"").is_err());
    }

    #[test]
    fn numbers_and_escapes() {
        let (value, _) =
            parse_lenient(r#"[1, -2, 1.5, 1e3, "\u00e9\ud83d\ude00\n", 9223372036854775807]"#)
                .unwrap();
        assert_eq!(value, json!([1, -2, 1.5, 1000.0, "é😀\n", 9223372036854775807i64]));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(10_000);
        assert!(parse_lenient(&text).unwrap_err().message.contains("nesting"));
    }

    #[test]
    fn paths_quote_odd_keys() {
        assert_eq!(child_path("", "a"), "a");
        assert_eq!(child_path("a", "b c"), "a['b c']");
        assert_eq!(child_path("a", "$schema"), "a.$schema");
        assert_eq!(index_path("r", 2), "r[2]");
    }
}
