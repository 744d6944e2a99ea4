//! Evaluating a parsed condition against one request's action, sub-operation and attributes.

use std::borrow::Cow;

use super::ast::{AttrRef, Comparison, Expr, Family, Literal, Operand, Operator, Quantifier, Test};
use super::like::LikePattern;
use super::value::{AttributeSource, Value};
use super::ConditionContext;
use crate::matching::action_matches;

pub(crate) fn eval(expr: &Expr, ctx: &ConditionContext<'_>) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|e| eval(e, ctx)),
        Expr::Or(items) => items.iter().any(|e| eval(e, ctx)),
        Expr::Not(inner) => !eval(inner, ctx),
        Expr::ActionMatches(pattern) => action_matches(pattern, ctx.action),
        Expr::SubOperationMatches(pattern) => {
            ctx.attributes.sub_operation().is_some_and(|s| action_matches(pattern, s))
        }
        Expr::Exists(attr) => lookup(attr, ctx).is_some(),
        Expr::Compare(c) => compare(c, ctx),
    }
}

/// The older spelling `@Request[subOperation]` reads the request's sub-operation.
enum Looked<'a> {
    Values(&'a [Value]),
    SubOperation(Value),
}

fn lookup<'a>(attr: &AttrRef, ctx: &ConditionContext<'a>) -> Option<Looked<'a>> {
    if let Some(values) = ctx.attributes.get(attr.source, &attr.name) {
        return Some(Looked::Values(values));
    }
    if attr.source == AttributeSource::Request && attr.name.eq_ignore_ascii_case("subOperation") {
        return ctx.attributes.sub_operation().map(|s| Looked::SubOperation(Value::from(s)));
    }
    None
}

/// One side's values, each with its precompiled `StringLike` pattern when it is a literal. No allocation.
#[derive(Clone, Copy)]
enum Side<'a> {
    Literals(&'a [Literal]),
    Values(&'a [Value]),
    One(&'a Value),
}

type Item<'a> = (&'a Value, Option<&'a LikePattern>);

impl<'a> Side<'a> {
    fn len(self) -> usize {
        match self {
            Side::Literals(l) => l.len(),
            Side::Values(v) => v.len(),
            Side::One(_) => 1,
        }
    }

    fn items(self) -> impl Iterator<Item = Item<'a>> {
        (0..self.len()).map(move |i| match self {
            Side::Literals(l) => (&l[i].value, l[i].like.as_ref()),
            Side::Values(v) => (&v[i], None),
            Side::One(v) => (v, None),
        })
    }
}

fn side<'a>(operand: &'a Operand, looked: &'a Option<Looked<'a>>) -> Option<Side<'a>> {
    match operand {
        Operand::Literals(literals) => Some(Side::Literals(literals)),
        Operand::Attr(_) => match looked.as_ref()? {
            Looked::Values(values) => Some(Side::Values(values)),
            Looked::SubOperation(v) => Some(Side::One(v)),
        },
    }
}

fn compare(c: &Comparison, ctx: &ConditionContext<'_>) -> bool {
    let looked_l = match &c.lhs {
        Operand::Attr(a) => lookup(a, ctx),
        Operand::Literals(_) => None,
    };
    let looked_r = match &c.rhs {
        Operand::Attr(a) => lookup(a, ctx),
        Operand::Literals(_) => None,
    };
    // A missing attribute makes the comparison false, whatever the operator (negated ones included).
    let (Some(l), Some(r)) = (side(&c.lhs, &looked_l), side(&c.rhs, &looked_r)) else {
        return false;
    };
    let op = &c.op;
    let holds = |(lv, _): Item<'_>, (rv, rlike): Item<'_>| {
        test(op, lv, rv, rlike).is_some_and(|b| b != op.negated)
    };
    if op.family == Family::List {
        // `ListContains`: some value of the (multi-valued) left side equals the single right value.
        if r.len() != 1 {
            return false;
        }
        let Some((r0, _)) = r.items().next() else { return false };
        let contains = l.items().filter_map(|(lv, _)| test(op, lv, r0, None)).any(|b| b);
        return contains != op.negated;
    }
    match op.quantifier {
        // A plain operator compares one value with one value; a multi-valued attribute needs a cross-product.
        None => {
            l.len() == 1 && r.len() == 1 && l.items().zip(r.items()).all(|(lv, rv)| holds(lv, rv))
        }
        Some(Quantifier::AnyOfAny) => l.items().any(|lv| r.items().any(|rv| holds(lv, rv))),
        Some(Quantifier::AllOfAny) => l.items().all(|lv| r.items().any(|rv| holds(lv, rv))),
        Some(Quantifier::AnyOfAll) => l.items().any(|lv| r.items().all(|rv| holds(lv, rv))),
        Some(Quantifier::AllOfAll) => l.items().all(|lv| r.items().all(|rv| holds(lv, rv))),
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

fn starts_with(text: &str, prefix: &str, ignore_case: bool) -> bool {
    if !ignore_case {
        return text.starts_with(prefix);
    }
    if text.is_ascii() && prefix.is_ascii() {
        return text.len() >= prefix.len()
            && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
    }
    let mut t = text.chars().flat_map(char::to_lowercase);
    prefix.chars().flat_map(char::to_lowercase).all(|p| t.next() == Some(p))
}

/// The un-negated test of one left value against one right value; `None` when a value is not of the operator's
/// type (a string that is no integer for `NumericEquals`, …), which makes the comparison false.
fn test(op: &Operator, l: &Value, r: &Value, r_like: Option<&LikePattern>) -> Option<bool> {
    use std::cmp::Ordering;
    let ordered = |ord: Ordering| match op.test {
        Test::Equals => ord == Ordering::Equal,
        Test::GreaterThan => ord == Ordering::Greater,
        Test::GreaterThanEquals => ord != Ordering::Less,
        Test::LessThan => ord == Ordering::Less,
        Test::LessThanEquals => ord != Ordering::Greater,
        _ => false,
    };
    match op.family {
        Family::String | Family::List => {
            let (ls, rs): (Cow<'_, str>, Cow<'_, str>) = (l.as_str()?, r.as_str()?);
            Some(match op.test {
                Test::Equals | Test::Contains if op.ignore_case => eq_ignore_case(&ls, &rs),
                Test::Equals | Test::Contains => ls == rs,
                Test::StartsWith => starts_with(&ls, &rs, op.ignore_case),
                Test::Like => match r_like {
                    Some(pattern) => pattern.matches(&ls),
                    None => LikePattern::compile(&rs, op.ignore_case).matches(&ls),
                },
                _ => false,
            })
        }
        Family::Numeric => Some(ordered(l.as_integer()?.cmp(&r.as_integer()?))),
        Family::DateTime => Some(ordered(l.as_datetime()?.cmp(&r.as_datetime()?))),
        Family::Bool => Some(l.as_bool()? == r.as_bool()?),
        Family::Guid => Some(l.as_guid()? == r.as_guid()?),
    }
}
