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
    const FUNCTIONS: &[&str] = &[
        "concat",
        "format",
        "split",
        "last",
        "first",
        "take",
        "skip",
        "length",
        "contains",
        "empty",
        "union",
        "intersection",
        "createArray",
        "createObject",
        "if",
        "and",
        "or",
        "not",
        "equals",
        "less",
        "greater",
        "add",
        "sub",
        "mul",
        "div",
        "mod",
        "toLower",
        "toUpper",
        "trim",
        "replace",
        "substring",
        "indexOf",
        "startsWith",
        "endsWith",
        "json",
        "string",
        "int",
        "bool",
        "base64",
        "uri",
        "coalesce",
        "range",
        "items",
        "guid",
        "uniqueString",
        "resourceId",
        "subscriptionResourceId",
        "extensionResourceId",
        "padLeft",
        "min",
        "max",
        "flatten",
        "join",
        "dateTimeAdd",
        "uriComponent",
        "dataUri",
        "base64ToString",
        "reference",
        "listKeys",
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (prop::sample::select(FUNCTIONS), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
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
