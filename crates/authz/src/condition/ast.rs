//! The parsed form of a condition: expressions, comparison operators and typed literals.

use super::like::LikePattern;
use super::value::{AttributeSource, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    ActionMatches(String),
    SubOperationMatches(String),
    Exists(AttrRef),
    Compare(Box<Comparison>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrRef {
    pub source: AttributeSource,
    pub name: String,
}

/// A literal, with its `StringLike` pattern compiled when the operator needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Literal {
    pub value: Value,
    pub like: Option<LikePattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operand {
    Attr(AttrRef),
    /// One literal, or the values of a `{…}` set.
    Literals(Vec<Literal>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantifier {
    AnyOfAny,
    AllOfAny,
    AnyOfAll,
    AllOfAll,
}

impl Quantifier {
    pub(crate) const ALL: [Quantifier; 4] =
        [Quantifier::AnyOfAny, Quantifier::AllOfAny, Quantifier::AnyOfAll, Quantifier::AllOfAll];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Quantifier::AnyOfAny => "ForAnyOfAnyValues",
            Quantifier::AllOfAny => "ForAllOfAnyValues",
            Quantifier::AnyOfAll => "ForAnyOfAllValues",
            Quantifier::AllOfAll => "ForAllOfAllValues",
        }
    }
}

/// What an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    String,
    Numeric,
    DateTime,
    Bool,
    Guid,
    List,
}

impl Family {
    pub(crate) const ALL: [Family; 6] = [
        Family::String,
        Family::Numeric,
        Family::DateTime,
        Family::Bool,
        Family::Guid,
        Family::List,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Family::String => "String",
            Family::Numeric => "Numeric",
            Family::DateTime => "DateTime",
            Family::Bool => "Bool",
            Family::Guid => "Guid",
            Family::List => "List",
        }
    }

    /// The tests each family offers (negations are `Not` + the test).
    pub(crate) fn tests(self) -> &'static [Test] {
        const ORDERED: &[Test] = &[
            Test::Equals,
            Test::GreaterThan,
            Test::GreaterThanEquals,
            Test::LessThan,
            Test::LessThanEquals,
        ];
        match self {
            Family::String => &[Test::Equals, Test::StartsWith, Test::Like],
            Family::Numeric | Family::DateTime => ORDERED,
            Family::Bool | Family::Guid => &[Test::Equals],
            Family::List => &[Test::Contains],
        }
    }

    /// What a literal of this family looks like, for error messages.
    pub(crate) fn literal_form(self) -> &'static str {
        match self {
            Family::String | Family::List => "a quoted string such as 'team-a/app'",
            Family::Numeric => "an integer such as 10",
            Family::DateTime => "a quoted UTC date-time such as '2022-06-01T00:00:00.0Z'",
            Family::Bool => "true or false",
            Family::Guid => "a GUID such as 7f951dda-4ed3-4680-a7ca-43fe172d538d",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Test {
    Equals,
    StartsWith,
    Like,
    GreaterThan,
    GreaterThanEquals,
    LessThan,
    LessThanEquals,
    Contains,
}

impl Test {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Test::Equals => "Equals",
            Test::StartsWith => "StartsWith",
            Test::Like => "Like",
            Test::GreaterThan => "GreaterThan",
            Test::GreaterThanEquals => "GreaterThanEquals",
            Test::LessThan => "LessThan",
            Test::LessThanEquals => "LessThanEquals",
            Test::Contains => "Contains",
        }
    }

    /// Whether `Not` may precede it (`StringNotEquals`, `NumericNotEquals`, …; never `NumericNotLessThan`).
    pub(crate) fn negatable(self) -> bool {
        matches!(self, Test::Equals | Test::StartsWith | Test::Like | Test::Contains)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub quantifier: Option<Quantifier>,
    pub family: Family,
    pub test: Test,
    pub negated: bool,
    pub ignore_case: bool,
}

impl Operator {
    /// The canonical spelling, e.g. `ForAnyOfAnyValues:StringNotEqualsIgnoreCase`.
    pub(crate) fn name(&self) -> String {
        let mut s = String::new();
        if let Some(q) = self.quantifier {
            s.push_str(q.as_str());
            s.push(':');
        }
        s.push_str(self.family.as_str());
        if self.negated {
            s.push_str("Not");
        }
        s.push_str(self.test.as_str());
        if self.ignore_case {
            s.push_str("IgnoreCase");
        }
        s
    }

    /// Cross-product prefixes apply to the string (Equals, Like), numeric and GUID operators, as Azure lists them.
    pub(crate) fn allows_quantifier(&self) -> bool {
        match self.family {
            Family::String => matches!(self.test, Test::Equals | Test::Like),
            Family::Numeric | Family::Guid => true,
            Family::DateTime | Family::Bool | Family::List => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub lhs: Operand,
    pub op: Operator,
    pub rhs: Operand,
}
