//! Unit tests of the condition parser and evaluator.

use super::ast::{Expr, Family, Quantifier};
use super::parser::{parse_operator, MAX_DEPTH};
use super::*;

const REPO: &str = "Microsoft.ContainerRegistry/registries/repositories:name";
const CONTENT_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
const CONTENT_WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";

fn eval_with(text: &str, action: &str, attributes: &Attributes) -> bool {
    let condition = Condition::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    condition.evaluate(&ConditionContext { action, attributes })
}

fn eval(text: &str) -> bool {
    eval_with(text, "Microsoft.Test/things/read", &Attributes::new())
}

fn err(text: &str) -> (usize, usize, String) {
    match Condition::parse(text) {
        Ok(_) => panic!("{text:?} parsed"),
        Err(ConditionError::Syntax { line, column, message, .. }) => (line, column, message),
        Err(other) => panic!("{other}"),
    }
}

fn repo(name: &str) -> Attributes {
    Attributes::new().with(AttributeSource::Request, REPO, name)
}

// ---- the parser ------------------------------------------------------------------------------------------------

#[test]
fn every_operator_name_parses_to_itself() {
    let mut names = Vec::new();
    for family in Family::ALL {
        for &test in family.tests() {
            for negated in [false, true] {
                if negated && !test.negatable() {
                    continue;
                }
                for ignore_case in [false, true] {
                    if ignore_case && family != Family::String {
                        continue;
                    }
                    let base = format!(
                        "{}{}{}{}",
                        family.as_str(),
                        if negated { "Not" } else { "" },
                        test.as_str(),
                        if ignore_case { "IgnoreCase" } else { "" }
                    );
                    names.push(base.clone());
                    let op = parse_operator(&base).unwrap();
                    assert_eq!(op.name(), base);
                    for q in Quantifier::ALL {
                        let crossed = format!("{}:{base}", q.as_str());
                        match parse_operator(&crossed) {
                            Ok(op) => {
                                assert!(op.allows_quantifier());
                                assert_eq!(op.name(), crossed);
                            }
                            Err(message) => {
                                assert!(!op.allows_quantifier(), "{crossed}: {message}");
                                assert!(message.contains("no cross-product form"), "{message}");
                            }
                        }
                    }
                }
            }
        }
    }
    // The operators Azure documents, all present.
    for documented in [
        "StringEquals",
        "StringEqualsIgnoreCase",
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringStartsWith",
        "StringStartsWithIgnoreCase",
        "StringNotStartsWith",
        "StringNotStartsWithIgnoreCase",
        "StringLike",
        "StringLikeIgnoreCase",
        "StringNotLike",
        "StringNotLikeIgnoreCase",
        "NumericEquals",
        "NumericNotEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "DateTimeEquals",
        "DateTimeNotEquals",
        "DateTimeGreaterThan",
        "DateTimeGreaterThanEquals",
        "DateTimeLessThan",
        "DateTimeLessThanEquals",
        "GuidEquals",
        "GuidNotEquals",
        "BoolEquals",
        "BoolNotEquals",
        "ListContains",
        "ListNotContains",
    ] {
        assert!(names.iter().any(|n| n == documented), "{documented}");
    }
    assert_eq!(names.len(), 30);
    // The cross-product list of Azure's documentation: 16 per quantifier.
    let crossed =
        names.iter().filter(|n| parse_operator(&format!("ForAnyOfAnyValues:{n}")).is_ok()).count();
    assert_eq!(crossed, 16);
    // Case-insensitive names.
    assert_eq!(parse_operator("stringequalsignorecase").unwrap().name(), "StringEqualsIgnoreCase");
    assert_eq!(
        parse_operator("forallofallvalues:numericlessthanequals").unwrap().name(),
        "ForAllOfAllValues:NumericLessThanEquals"
    );
    for bad in [
        "StringEq",
        "StringEqualsX",
        "NumericNotLessThan",
        "NumericEqualsIgnoreCase",
        "Equals",
        "ForSome:StringEquals",
    ] {
        assert!(parse_operator(bad).is_err(), "{bad}");
    }
}

#[test]
fn operators_parse_in_comparisons() {
    let cases = [
        "@Request[a] StringEquals 'x'",
        "@Request[a] StringNotEqualsIgnoreCase 'x'",
        "@Request[a] StringStartsWith 'x'",
        "@Request[a] StringNotStartsWithIgnoreCase 'x'",
        "@Request[a] StringLike 'x*'",
        "@Request[a] StringNotLikeIgnoreCase 'x?'",
        "@Resource[n] NumericEquals 10",
        "@Resource[n] NumericNotEquals -3",
        "@Resource[n] NumericGreaterThan 1",
        "@Resource[n] NumericGreaterThanEquals 1",
        "@Resource[n] NumericLessThan 1",
        "@Resource[n] NumericLessThanEquals 1",
        "@Environment[UtcNow] DateTimeGreaterThan '2023-05-01T13:00:00.000Z'",
        "@Environment[UtcNow] DateTimeLessThanEquals '2023-05-01T13:00:00Z'",
        "@Environment[UtcNow] DateTimeEquals '2022-06-01T00:00:00.0Z'",
        "@Environment[UtcNow] DateTimeNotEquals '2022-06-01T00:00:00.0Z'",
        "@Environment[UtcNow] DateTimeGreaterThanEquals '2022-06-01T00:00:00.0Z'",
        "@Environment[UtcNow] DateTimeLessThan '2022-06-01T00:00:00.0Z'",
        "@Resource[Microsoft.Storage/storageAccounts:isHnsEnabled] BoolEquals true",
        "@Environment[isPrivateLink] BoolNotEquals FALSE",
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalId] GuidEquals 7f951dda-4ed3-4680-a7ca-43fe172d538d",
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalId] GuidNotEquals '7f951dda-4ed3-4680-a7ca-43fe172d538d'",
        "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Eng_Project] ListContains 'Alpine'",
        "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Eng_Project] ListNotContains 'Alpine'",
        "@Request[a] ForAnyOfAnyValues:StringEquals {'a', 'b'}",
        "@Request[a] ForAllOfAnyValues:StringLikeIgnoreCase {'a*'}",
        "@Request[a] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9}",
        "@Request[a] ForAllOfAllValues:NumericLessThan {5, 15}",
        "{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'blue', 'green'}",
        "@Resource[x/tags:Project<$key_case_sensitive$>] StringEquals @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project]",
        "Exists @Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:snapshot]",
        "NOT Exists @Request[a]",
        "ActionMatches{'Microsoft.Authorization/roleAssignments/*'}",
        "SubOperationMatches{'Blob.List'}",
        "!(ActionMatches{'a/read'} AND NOT SubOperationMatches{'Blob.List'})",
    ];
    for text in cases {
        Condition::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn the_reference_examples_parse() {
    let delegation = "(\n (\n  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})\n )\n OR\n (\n  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d, 8311e382-0749-4cb8-b61a-304f252e45ec}\n  AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}\n )\n)\nAND\n(\n (\n  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})\n )\n OR\n (\n  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d, 8311e382-0749-4cb8-b61a-304f252e45ec}\n  AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}\n )\n)";
    let c = Condition::parse(delegation).unwrap();
    assert_eq!(
        c.targeted_actions(),
        [
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete"
        ]
    );
    let pull_one = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})\n  AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}))\n OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'prms-api'))";
    Condition::parse(pull_one).unwrap();
    // As public Terraform writes it: OR without parentheses around the comparison, AND between blocks.
    let terraform = "(\n  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})\n  OR @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'runner'\n)\nAND\n(\n  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})\n  OR @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'runner'\n)";
    Condition::parse(terraform).unwrap();
}

#[test]
fn not_binds_tighter_than_and_or() {
    let c = Condition::parse("!ActionMatches{'a'} AND ActionMatches{'b'}").unwrap();
    assert!(matches!(&c.expr, Expr::And(items) if matches!(items[0], Expr::Not(_))));
    let c =
        Condition::parse("NOT NOT ActionMatches{'a'} OR ActionMatches{'b'} || ActionMatches{'c'}")
            .unwrap();
    assert!(matches!(&c.expr, Expr::Or(items) if items.len() == 3));
    // `a AND b AND c` is fine; keywords in any case; && and || are the same connectives.
    let c = Condition::parse("ActionMatches{'a'} and ActionMatches{'b'} && ActionMatches{'c'}")
        .unwrap();
    assert!(matches!(&c.expr, Expr::And(items) if items.len() == 3));
}

#[test]
fn mixing_and_with_or_needs_parentheses() {
    let (line, column, message) =
        err("ActionMatches{'a'} AND ActionMatches{'b'} OR ActionMatches{'c'}");
    assert_eq!((line, column), (1, 43));
    assert!(message.contains("add parentheses"), "{message}");
    let (_, column, _) = err("ActionMatches{'a'} || ActionMatches{'b'} && ActionMatches{'c'}");
    assert_eq!(column, 42);
    Condition::parse("(ActionMatches{'a'} AND ActionMatches{'b'}) OR ActionMatches{'c'}").unwrap();
    Condition::parse("ActionMatches{'a'} AND (ActionMatches{'b'} OR ActionMatches{'c'})").unwrap();
    // Evaluation follows the parentheses.
    assert!(eval("(ActionMatches{'x'} AND ActionMatches{'y'}) OR ActionMatches{'*'}"));
    assert!(!eval("ActionMatches{'x'} AND (ActionMatches{'y'} OR ActionMatches{'*'})"));
}

#[test]
fn errors_say_where_and_what() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        ("", (1, 1), "empty"),
        ("   \n  ", (2, 3), "empty"),
        ("(ActionMatches{'a'}", (1, 1), "unbalanced '('"),
        ("ActionMatches{'a'})", (1, 19), "unbalanced ')'"),
        ("ActionMatches{'a'", (1, 18), "expected '}'"),
        ("ActionMatches{a}", (1, 15), "quoted pattern"),
        ("ActionMatches{''}", (1, 15), "non-empty"),
        ("@Request[a] StringEquals 'x", (1, 26), "unterminated string"),
        ("@Request[a StringEquals 'x'", (1, 9), "unterminated attribute"),
        ("@Requests[a] StringEquals 'x'", (1, 1), "unknown attribute source"),
        ("@Request a", (1, 9), "expected '['"),
        ("@Request[] StringEquals 'x'", (1, 9), "empty attribute name"),
        ("@Request[a] StringEqual 'x'", (1, 13), "unknown operator 'StringEqual'"),
        ("@Request[a] 'x'", (1, 13), "expected a comparison operator"),
        ("@Request[a] StringEquals", (1, 25), "expected a value after StringEquals"),
        ("@Request[a] StringEquals 5", (1, 26), "expected a quoted string"),
        ("@Request[a] NumericEquals '5'", (1, 27), "expected an integer"),
        ("@Request[a] NumericEquals 1.5", (1, 27), "expected an integer"),
        ("@Request[a] BoolEquals yes", (1, 24), "true or false"),
        ("@Request[a] GuidEquals 1234", (1, 24), "expected a GUID"),
        ("@Request[a] DateTimeEquals '2022-06-01'", (1, 28), "date-time"),
        ("@Request[a] StringEquals {'x', 'y'}", (1, 26), "needs a cross-product operator"),
        ("@Request[a] ForAnyOfAnyValues:StringEquals {}", (1, 45), "empty set"),
        ("@Request[a] ForAnyOfAnyValues:StringEquals {'x' 'y'}", (1, 49), "',' or '}'"),
        ("@Request[a] ForAnyOfAnyValues:StringStartsWith {'x'}", (1, 13), "no cross-product form"),
        ("@Request[a] ForSomeValues:StringEquals {'x'}", (1, 13), "unknown cross-product prefix"),
        ("@Request[a] StringEquals 'x' AND", (1, 33), "an expression after 'AND'"),
        ("ActionMatches{'a'} ActionMatches{'b'}", (1, 20), "unexpected 'ActionMatches'"),
        ("()", (1, 2), "inside the parentheses"),
        ("Exists 'x'", (1, 8), "an attribute"),
        ("@Request[a] StringEquals 'x' & @Request[b] StringEquals 'y'", (1, 30), "'&&'"),
        ("@Request[a] StringEquals 'x' # comment", (1, 30), "unexpected character '#'"),
        (
            "(\n  ActionMatches{'a'}\n  OR\n  @Request[a] StringEquals\n)",
            (5, 1),
            "expected a value",
        ),
        ("'é' StringEquals 'é' AND ¤", (1, 26), "unexpected character '¤'"),
    ];
    for (text, position, needle) in cases {
        let (line, column, message) = err(text);
        assert_eq!((line, column), *position, "{text:?}: {message}");
        assert!(message.contains(needle), "{text:?}: {message:?} lacks {needle:?}");
    }
    let e = Condition::parse("ActionMatches{'a'} OR").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid condition at line 1, column 22: expected an expression after 'OR', found the end of the condition"
    );
    assert_eq!(e.position(), Some((1, 22)));
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}ActionMatches{{'a'}}{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    Condition::parse(&deep).unwrap();
    let too_deep =
        format!("{}ActionMatches{{'a'}}{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    assert!(err(&too_deep).2.contains("nests deeper"));
    let bangs = format!("{}ActionMatches{{'a'}}", "!".repeat(100_000));
    assert!(err(&bangs).2.contains("nests deeper"));
}

#[test]
fn versions() {
    assert!(Condition::parse_versioned("ActionMatches{'a'}", Some("2.0")).is_ok());
    assert!(Condition::parse_versioned("ActionMatches{'a'}", None).is_ok());
    assert_eq!(
        Condition::parse_versioned("ActionMatches{'a'}", Some("1.0")),
        Err(ConditionError::UnsupportedVersion("1.0".into()))
    );
}

// ---- evaluation ------------------------------------------------------------------------------------------------

#[test]
fn azure_documentation_examples() {
    let name1 = |v: &str| Attributes::new().with(AttributeSource::Resource, "name1", v);
    let on = |text: &str, attrs: &Attributes| eval_with(text, "x", attrs);
    assert!(eval_with(
        "ActionMatches{'Microsoft.Authorization/roleAssignments/*'}",
        "Microsoft.Authorization/roleAssignments/write",
        &Attributes::new()
    ));
    assert!(!eval_with(
        "ActionMatches{'Microsoft.Authorization/roleDefinitions/*'}",
        "Microsoft.Authorization/roleAssignments/write",
        &Attributes::new()
    ));
    assert!(on("@Resource[name1] StringLike 'a*c?'", &name1("abcd")));
    assert!(!on("@Resource[name1] StringLike 'A*C?'", &name1("abcd")));
    assert!(!on("@Resource[name1] StringLike 'a*c'", &name1("abcd")));
    assert!(eval("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'blue', 'green'}"));
    assert!(!eval("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'orange', 'green'}"));
    assert!(eval("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'orange', 'red', 'blue'}"));
    assert!(!eval("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'red', 'green'}"));
    assert!(eval("{10, 20} ForAnyOfAllValues:NumericLessThan {15, 18}"));
    assert!(!eval("{10, 20} ForAllOfAllValues:NumericLessThan {5, 15, 18}"));
    assert!(eval("{10, 20} ForAllOfAllValues:NumericLessThan {25, 30}"));
    assert!(!eval("{10, 20} ForAllOfAllValues:NumericLessThan {15, 25, 30}"));
}

#[test]
fn string_operators() {
    let a = repo("Team-A/App");
    let t = |text: &str| eval_with(&format!("@Request[{REPO}] {text}"), "x", &a);
    assert!(t("StringEquals 'Team-A/App'"));
    assert!(!t("StringEquals 'team-a/app'"));
    assert!(t("StringEqualsIgnoreCase 'team-a/APP'"));
    assert!(t("StringNotEquals 'team-a/app'"));
    assert!(!t("StringNotEqualsIgnoreCase 'team-a/app'"));
    assert!(t("StringStartsWith 'Team-A/'"));
    assert!(!t("StringStartsWith 'team-a/'"));
    assert!(t("StringStartsWithIgnoreCase 'team-a/'"));
    assert!(t("StringNotStartsWith 'team-a/'"));
    assert!(!t("StringNotStartsWithIgnoreCase 'TEAM-A/'"));
    assert!(t("StringLike 'Team-?/*'"));
    assert!(!t("StringLike 'team-?/*'"));
    assert!(t("StringLikeIgnoreCase 'team-?/*'"));
    assert!(t("StringNotLike 'team-?/*'"));
    assert!(!t("StringNotLikeIgnoreCase 'team-?/*'"));
    assert!(t("ForAnyOfAnyValues:StringEqualsIgnoreCase {'x', 'team-a/app'}"));
    assert!(t("ForAnyOfAllValues:StringNotEquals {'x', 'y'}"));
    assert!(!t("ForAnyOfAllValues:StringNotEquals {'x', 'Team-A/App'}"));
    assert!(t("ForAllOfAnyValues:StringLike {'nope*', 'Team*'}"));
    assert!(!t("ForAllOfAllValues:StringLike {'nope*', 'Team*'}"));
    // Unicode case folding for IgnoreCase.
    let u = Attributes::new().with(AttributeSource::Request, REPO, "équipe/ÄPP");
    assert!(eval_with(&format!("@Request[{REPO}] StringEqualsIgnoreCase 'ÉQUIPE/äpp'"), "x", &u));
    assert!(eval_with(&format!("@Request[{REPO}] StringStartsWithIgnoreCase 'ÉQUIPE/'"), "x", &u));
    // `\'` in a string is a quote.
    let q = Attributes::new().with(AttributeSource::Request, REPO, "it's");
    assert!(eval_with(&format!("@Request[{REPO}] StringEquals 'it\\'s'"), "x", &q));
    // Attribute against attribute.
    let both = Attributes::new()
        .with(AttributeSource::Resource, "x/tags:Project<$key_case_sensitive$>", "Cascade")
        .with(
            AttributeSource::Principal,
            "Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project",
            "Cascade",
        );
    assert!(eval_with(
        "@Resource[x/tags:Project<$key_case_sensitive$>] StringEquals @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project]",
        "x",
        &both
    ));
    assert!(!eval_with(
        "@Resource[x/tags:project<$key_case_sensitive$>] StringEquals @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project]",
        "x",
        &both
    ));
}

#[test]
fn numeric_datetime_bool_guid_and_list_operators() {
    let attrs = Attributes::new()
        .with(AttributeSource::Resource, "n", 10)
        .with(AttributeSource::Resource, "s", "12")
        .with(AttributeSource::Resource, "word", "twelve")
        .with(AttributeSource::Environment, "UtcNow", DateTime::parse("2024-05-01T12:00:00Z").unwrap())
        .with(AttributeSource::Environment, "isPrivateLink", true)
        .with(AttributeSource::Request, "Microsoft.Authorization/roleAssignments:RoleDefinitionId",
            "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/7F951DDA-4ED3-4680-A7CA-43FE172D538D")
        .with_values(AttributeSource::Principal, "list", vec![Value::from("Alpine"), Value::from("Baker")]);
    let t = |text: &str| eval_with(text, "x", &attrs);
    assert!(t("@Resource[n] NumericEquals 10"));
    assert!(t("@Resource[n] NumericNotEquals 11"));
    assert!(t("@Resource[n] NumericGreaterThan 9") && !t("@Resource[n] NumericGreaterThan 10"));
    assert!(
        t("@Resource[n] NumericGreaterThanEquals 10")
            && !t("@Resource[n] NumericGreaterThanEquals 11")
    );
    assert!(t("@Resource[n] NumericLessThan 11") && !t("@Resource[n] NumericLessThan 10"));
    assert!(
        t("@Resource[n] NumericLessThanEquals 10") && !t("@Resource[n] NumericLessThanEquals 9")
    );
    assert!(t("@Resource[s] NumericGreaterThan 11"), "a string holding an integer compares as one");
    assert!(!t("@Resource[word] NumericEquals 12") && !t("@Resource[word] NumericNotEquals 12"));
    assert!(t("@Environment[UtcNow] DateTimeGreaterThan '2024-05-01T11:59:59.9999999Z'"));
    assert!(t("@Environment[UtcNow] DateTimeEquals '2024-05-01T12:00:00.0Z'"));
    assert!(t("@Environment[UtcNow] DateTimeNotEquals '2024-05-01T12:00:00.0000001Z'"));
    assert!(t("@Environment[UtcNow] DateTimeLessThan '2024-05-02T00:00:00Z'"));
    assert!(t("@Environment[UtcNow] DateTimeLessThanEquals '2024-05-01T12:00:00Z'"));
    assert!(!t("@Environment[UtcNow] DateTimeGreaterThanEquals '2024-05-01T12:00:01Z'"));
    assert!(
        t("@Environment[isPrivateLink] BoolEquals true")
            && t("@Environment[isPrivateLink] BoolNotEquals false")
    );
    assert!(t("@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] GuidEquals 7f951dda-4ed3-4680-a7ca-43fe172d538d"));
    assert!(t("@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {8311e382-0749-4cb8-b61a-304f252e45ec, 7f951dda-4ed3-4680-a7ca-43fe172d538d}"));
    assert!(!t("@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 7f951dda-4ed3-4680-a7ca-43fe172d538d}"));
    assert!(t("@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9}"));
    assert!(
        t("@Principal[list] ListContains 'Baker'") && !t("@Principal[list] ListContains 'baker'")
    );
    assert!(
        t("@Principal[list] ListNotContains 'Cascade'")
            && !t("@Principal[list] ListNotContains 'Alpine'")
    );
    // A plain operator on a multi-valued attribute is false; the cross-product forms see every value.
    assert!(
        !t("@Principal[list] StringEquals 'Alpine'")
            && !t("@Principal[list] StringNotEquals 'Cascade'")
    );
    assert!(t("@Principal[list] ForAnyOfAnyValues:StringEquals {'Alpine'}"));
    assert!(!t("@Principal[list] ForAllOfAnyValues:StringEquals {'Alpine'}"));
    assert!(t("@Principal[list] ForAllOfAnyValues:StringEquals {'Alpine', 'Baker', 'Cascade'}"));
}

#[test]
fn missing_attributes_make_comparisons_false() {
    let none = Attributes::new();
    for op in [
        "StringEquals 'a'",
        "StringNotEquals 'a'",
        "StringStartsWith 'a'",
        "StringNotStartsWith 'a'",
        "StringLike '*'",
        "StringNotLike 'a'",
        "ForAnyOfAnyValues:StringNotEquals {'a'}",
        "ForAllOfAllValues:StringNotEquals {'a'}",
    ] {
        assert!(!eval_with(&format!("@Request[{REPO}] {op}"), "x", &none), "{op}");
        assert!(eval_with(&format!("!(@Request[{REPO}] {op})"), "x", &none), "{op}");
    }
    assert!(!eval_with(&format!("Exists @Request[{REPO}]"), "x", &none));
    assert!(eval_with(&format!("NOT Exists @Request[{REPO}]"), "x", &none));
    assert!(eval_with(&format!("Exists @Request[{REPO}]"), "x", &repo("")));
    // Present but empty: "all of no values" holds, "any of no values" does not.
    let empty = Attributes::new().with_values(AttributeSource::Request, "tags", vec![]);
    assert!(eval_with("@Request[tags] ForAllOfAnyValues:StringEquals {'a'}", "x", &empty));
    assert!(!eval_with("@Request[tags] ForAnyOfAnyValues:StringEquals {'a'}", "x", &empty));
    // The source matters.
    assert!(!eval_with(&format!("@Resource[{REPO}] StringEquals 'a'"), "x", &repo("a")));
}

#[test]
fn action_and_sub_operation_targeting() {
    let cond = "(!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'})) OR (@Resource[c:name] StringEquals 'ok')";
    let read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read";
    let plain = Attributes::new();
    let listing = Attributes::new().with_sub_operation("Blob.List");
    assert!(!eval_with(cond, read, &plain), "a targeted read without the attribute is denied");
    assert!(eval_with(cond, read, &listing), "listing is excluded from the target");
    assert!(eval_with(
        cond,
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
        &plain
    ));
    let ok = Attributes::new().with(AttributeSource::Resource, "c:name", "ok");
    assert!(eval_with(cond, read, &ok));
    // The older `@Request[subOperation]` spelling.
    assert!(eval_with(
        "@Request[subOperation] ForAnyOfAnyValues:StringEqualsIgnoreCase {'blob.list'}",
        read,
        &listing
    ));
    assert!(!eval_with(
        "@Request[subOperation] ForAnyOfAnyValues:StringEqualsIgnoreCase {'blob.list'}",
        read,
        &plain
    ));
    assert!(!eval_with("SubOperationMatches{'Blob.List'}", read, &plain));
    // ActionMatches is ARM's matcher: case-insensitive with wildcards.
    assert!(eval_with("ActionMatches{'microsoft.storage/*/READ'}", read, &plain));
}

#[test]
fn acr_repository_conditions() {
    let reads = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'prms-api'))";
    assert!(eval_with(reads, CONTENT_READ, &repo("PRMS-api")));
    assert!(!eval_with(reads, CONTENT_READ, &repo("other")));
    assert!(eval_with(reads, CONTENT_WRITE, &repo("other")), "writes are not targeted");
    let prefix = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/write'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'product/'))";
    assert!(eval_with(prefix, CONTENT_WRITE, &repo("product/api")));
    assert!(!eval_with(prefix, CONTENT_WRITE, &repo("Product/api")));
    assert!(!eval_with(prefix, CONTENT_WRITE, &repo("other/api")));
    assert!(!eval_with(prefix, CONTENT_WRITE, &Attributes::new()));
}
