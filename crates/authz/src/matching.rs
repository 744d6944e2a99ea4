//! ARM's action matching (`*` wildcards, case-insensitive, `/*/` also matching a single `/`), without allocating.

/// ARM's action matching: case-insensitive (ASCII, as ARM's ordinal-ignore-case compares operation names), `*`
/// matches any run of characters (including `/`), and a `/*/` segment also matches a single `/` (so Managed
/// Identity Operator's `…/userAssignedIdentities/*/assign/action` grants `…/userAssignedIdentities/assign/action`,
/// as Azure documents). Equivalent to the regex the reference recommends: each `/*/` becomes `/(?:.*/)?`, every other
/// `*` becomes `.*`, anchored at both ends, ignoring case.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), action.as_bytes());
    let Some(first_star) = p.iter().position(|&c| c == b'*') else {
        return pattern.eq_ignore_ascii_case(action);
    };
    // Cheap rejections: the literal prefix before the first `*` and the suffix after the last must match.
    if t.len() < first_star || !p[..first_star].eq_ignore_ascii_case(&t[..first_star]) {
        return false;
    }
    if !has_optional_segment(p) {
        return glob_match(p, t);
    }
    nfa_match(p, t)
}

/// Whether the pattern contains a `/*/` (whose `*/` may be skipped entirely).
fn has_optional_segment(p: &[u8]) -> bool {
    p.windows(3).any(|w| w == b"/*/")
}

/// Plain `*` globbing, case-insensitive: iterative with backtracking to the last `*`, linear in practice.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A set of NFA states (pattern positions `0..=len`), on the stack for patterns up to 255 bytes.
struct States {
    words: [u64; 4],
    heap: Vec<u64>,
}

impl States {
    fn new(len: usize) -> States {
        let needed = len / 64 + 1;
        States { words: [0; 4], heap: if needed > 4 { vec![0; needed] } else { Vec::new() } }
    }
    fn slice(&mut self) -> &mut [u64] {
        if self.heap.is_empty() {
            &mut self.words
        } else {
            &mut self.heap
        }
    }
    fn set(&mut self, i: usize) {
        self.slice()[i / 64] |= 1 << (i % 64);
    }
    fn get(&mut self, i: usize) -> bool {
        self.slice()[i / 64] & (1 << (i % 64)) != 0
    }
    fn clear(&mut self) {
        self.slice().iter_mut().for_each(|w| *w = 0);
    }
    fn is_empty(&mut self) -> bool {
        self.slice().iter().all(|&w| w == 0)
    }
}

/// Thompson simulation: state `k` means `pattern[..k]` is consumed. A `*` at `k` loops on any byte and may be left
/// without consuming; the `/` that opens a `/*/` may also consume a `/` and skip the `*/` after it.
fn nfa_match(p: &[u8], t: &[u8]) -> bool {
    let n = p.len();
    let mut current = States::new(n);
    let mut next = States::new(n);
    add_closure(p, &mut current, 0);
    for &c in t {
        next.clear();
        for k in 0..n {
            if !current.get(k) {
                continue;
            }
            if p[k] == b'*' {
                add_closure(p, &mut next, k);
            } else if p[k].eq_ignore_ascii_case(&c) {
                add_closure(p, &mut next, k + 1);
                // The `/` of a `/*/` may stand for the whole segment: skip its `*/`.
                if p[k] == b'/' && p.get(k + 1) == Some(&b'*') && p.get(k + 2) == Some(&b'/') {
                    add_closure(p, &mut next, k + 3);
                }
            }
        }
        if next.is_empty() {
            return false;
        }
        std::mem::swap(&mut current, &mut next);
    }
    current.get(n)
}

/// Add state `k` and every state reachable from it without consuming input. Transitions only go forward, so one
/// forward sweep suffices (no recursion, whatever the pattern's length).
fn add_closure(p: &[u8], states: &mut States, k: usize) {
    states.set(k);
    let mut reach = k;
    let mut j = k;
    while j <= reach && j < p.len() {
        if p[j] == b'*' && states.get(j) {
            states.set(j + 1);
            reach = reach.max(j + 1);
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's recommended matcher, written as a plain recursive definition, to check the fast one against.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len()).any(|i| reference(&p[1..], &t[i..])),
            Some(&c) => {
                // `/*/` may match a single `/`.
                if c == b'/'
                    && p.get(1) == Some(&b'*')
                    && p.get(2) == Some(&b'/')
                    && t.first() == Some(&b'/')
                    && reference(&p[3..], &t[1..])
                {
                    return true;
                }
                t.first().is_some_and(|x| x.eq_ignore_ascii_case(&c)) && reference(&p[1..], &t[1..])
            }
        }
    }

    #[test]
    fn optional_segments_each_independently() {
        assert!(action_matches("a/*/b/*/c", "a/b/x/c"));
        assert!(action_matches("a/*/b/*/c", "a/x/b/c"));
        assert!(action_matches("a/*/b/*/c", "a/b/c"));
        assert!(action_matches("a/*/b/*/c", "a/x/y/b/z/c"));
        assert!(!action_matches("a/*/b/*/c", "a/bc"));
        assert!(action_matches("A/*/B", "a//b"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn fast_matcher_agrees_with_the_reference_definition(
            p in "[abAB/*]{0,10}",
            t in "[abAB/]{0,10}",
        ) {
            proptest::prop_assert_eq!(
                action_matches(&p, &t),
                reference(p.as_bytes(), t.as_bytes()),
                "pattern {:?} text {:?}", p, t
            );
        }
    }
}
