//! `StringLike` patterns: `*` any run of characters, `?` exactly one, `\*` and `\?` (and `\\`) literal.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Char(char),
    One,
    Star,
}

/// A compiled `StringLike` pattern (compiled once when the pattern is a literal of the condition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LikePattern {
    pieces: Vec<Piece>,
    ignore_case: bool,
}

fn lower(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase()
}

impl LikePattern {
    pub(crate) fn compile(pattern: &str, ignore_case: bool) -> LikePattern {
        let mut pieces = Vec::new();
        let mut chars = pattern.chars();
        let push = |c: char, pieces: &mut Vec<Piece>| {
            if ignore_case {
                pieces.extend(lower(c).map(Piece::Char));
            } else {
                pieces.push(Piece::Char(c));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if pieces.last() != Some(&Piece::Star) {
                        pieces.push(Piece::Star);
                    }
                }
                '?' => pieces.push(Piece::One),
                '\\' => match chars.clone().next() {
                    Some(next @ ('*' | '?' | '\\')) => {
                        chars.next();
                        push(next, &mut pieces);
                    }
                    _ => push('\\', &mut pieces),
                },
                c => push(c, &mut pieces),
            }
        }
        LikePattern { pieces, ignore_case }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = if self.ignore_case {
            text.chars().flat_map(lower).collect()
        } else {
            text.chars().collect()
        };
        let p = &self.pieces;
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < text.len() {
            match p.get(pi) {
                Some(Piece::Star) => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(Piece::One) => {
                    pi += 1;
                    ti += 1;
                }
                Some(Piece::Char(c)) if *c == text[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|piece| *piece == Piece::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(p: &str, t: &str) -> bool {
        LikePattern::compile(p, false).matches(t)
    }

    #[test]
    fn wildcards_and_escapes() {
        // The examples of Azure's condition format documentation.
        assert!(like("a*c?", "abcd"));
        assert!(!like("A*C?", "abcd"));
        assert!(!like("a*c", "abcd"));
        assert!(LikePattern::compile("A*C?", true).matches("abcd"));
        assert!(like("readonly/*", "readonly/x/y"));
        assert!(!like("readonly/*", "readwrite/x"));
        assert!(like("a\\*b", "a*b"));
        assert!(!like("a\\*b", "axb"));
        assert!(like("a\\?b", "a?b"));
        assert!(!like("a\\?b", "axb"));
        assert!(like("a\\\\b", "a\\b"));
        assert!(like("a\\b", "a\\b"));
        assert!(like("*", ""));
        assert!(!like("?", ""));
        assert!(like("??", "éà"));
        assert!(like("team-?/*", "team-a/app"));
        assert!(LikePattern::compile("ÉTÉ*", true).matches("été-2024"));
    }
}
