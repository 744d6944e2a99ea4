//! Property tests: the parsers never panic on arbitrary input, the lenient JSON reader agrees with a strict one on
//! strict JSON, and evaluation of arbitrary well-formed expressions ends in a value or a diagnostic, never a panic.
//! (Also what the `fuzz/` targets exercise; this runs on stable in every `cargo test`.)

use berth_template::{
    parse_lenient, parse_template_string, DeploymentContext, ParameterValues, Plan,
    ResourceGroupInfo, Template,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z\\[\\]' \"\\\\é😀]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z $_]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Expressions built from the grammar with real function names, so evaluation goes deep.
fn arb_expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z' ]{0,6}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        (-5i64..50).prop_map(|n| n.to_string()),
        Just("true".to_string()),
        Just("null()".to_string()),
        Just("parameters('p')".to_string()),
        Just("variables('v')".to_string()),
        Just("resourceGroup()".to_string()),
        Just("copyIndex()".to_string()),
    ];
    // (name, fewest, most arguments): calls with a valid count get past the checks and into evaluation.
    const FUNCTIONS: &[(&str, usize, usize)] = &[
        ("concat", 1, 3),
        ("format", 1, 3),
        ("split", 2, 2),
        ("last", 1, 1),
        ("first", 1, 1),
        ("take", 2, 2),
        ("skip", 2, 2),
        ("length", 1, 1),
        ("contains", 2, 2),
        ("empty", 1, 1),
        ("union", 1, 3),
        ("intersection", 2, 3),
        ("createArray", 0, 3),
        ("createObject", 0, 4),
        ("if", 3, 3),
        ("and", 2, 3),
        ("or", 2, 3),
        ("not", 1, 1),
        ("equals", 2, 2),
        ("less", 2, 2),
        ("greater", 2, 2),
        ("add", 2, 2),
        ("sub", 2, 2),
        ("mul", 2, 2),
        ("div", 2, 2),
        ("mod", 2, 2),
        ("toLower", 1, 1),
        ("toUpper", 1, 1),
        ("trim", 1, 1),
        ("replace", 3, 3),
        ("substring", 2, 3),
        ("indexOf", 2, 2),
        ("startsWith", 2, 2),
        ("endsWith", 2, 2),
        ("json", 1, 1),
        ("string", 1, 1),
        ("int", 1, 1),
        ("bool", 1, 1),
        ("base64", 1, 1),
        ("uri", 2, 2),
        ("coalesce", 1, 3),
        ("range", 2, 2),
        ("items", 1, 1),
        ("guid", 1, 3),
        ("uniqueString", 1, 3),
        ("resourceId", 2, 4),
        ("subscriptionResourceId", 2, 3),
        ("extensionResourceId", 3, 4),
        ("padLeft", 2, 3),
        ("min", 1, 3),
        ("max", 1, 3),
        ("flatten", 1, 1),
        ("join", 2, 2),
        ("dateTimeAdd", 2, 3),
        ("uriComponent", 1, 1),
        ("dataUri", 1, 1),
        ("base64ToString", 1, 1),
        ("reference", 1, 3),
        ("listKeys", 2, 3),
        ("tryGet", 2, 3),
        ("copyIndex", 0, 2),
        ("array", 1, 1),
        ("lastIndexOf", 2, 2),
        ("utcNow", 0, 1),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let for_calls = inner.clone();
        prop_oneof![
            prop::sample::select(FUNCTIONS).prop_flat_map(move |(f, min, max)| {
                prop::collection::vec(for_calls.clone(), min..=max)
                    .prop_map(move |args| format!("{f}({})", args.join(", ")))
            }),
            (inner.clone(), "[a-z]{1,4}").prop_map(|(e, p)| format!("{e}.{p}")),
            (inner.clone(), inner).prop_map(|(e, i)| format!("{e}[{i}]")),
        ]
    })
}

fn ctx() -> DeploymentContext {
    let group = ResourceGroupInfo {
        name: "rg".into(),
        location: "westeurope".into(),
        tags: Default::default(),
        managed_by: None,
    };
    DeploymentContext::resource_group("t", "s", group, "d", time::OffsetDateTime::UNIX_EPOCH)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn expression_parser_never_panics(text in "\\PC{0,60}") {
        let _ = parse_template_string(&text);
        let _ = parse_template_string(&format!("[{text}]"));
    }

    #[test]
    fn expression_parser_never_panics_on_near_expressions(text in "[\\[\\]()',. a-z0-9_-]{0,60}") {
        let _ = parse_template_string(&format!("[{text}]"));
    }

    #[test]
    fn lenient_json_never_panics(text in "\\PC{0,80}") {
        let _ = parse_lenient(&text);
        let _ = Template::parse(&text);
    }

    #[test]
    fn lenient_json_agrees_with_strict_json(value in arb_json()) {
        let text = serde_json::to_string_pretty(&value).unwrap();
        let (parsed, _) = parse_lenient(&text).unwrap();
        prop_assert_eq!(parsed, value);
    }

    #[test]
    fn evaluation_ends_in_a_value_or_a_diagnostic(expression in arb_expression()) {
        let template = json!({
            "contentVersion": "1.0.0.0",
            "parameters": {"p": {"type": "array", "defaultValue": [1, "a", {"k": "v"}]}},
            "variables": {"v": {"k": [1, 2]}, "e": format!("[{expression}]")},
            "resources": [],
            "outputs": {"o": {"type": "object", "value": {"x": format!("[{expression}]")}}}
        });
        if let Ok(template) = Template::from_value(template) {
            if let Ok(plan) = Plan::new(template, &ParameterValues::default(), ctx()) {
                let _ = plan.evaluate_outputs(&berth_template::ResourceSnapshot::new());
            }
        }
    }
}
