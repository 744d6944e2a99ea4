//! Fuzz target: the expression parser on arbitrary text, then evaluation of whatever parses.
#![no_main]

use berth_template::{DeploymentContext, ParameterValues, Plan, ResourceGroupInfo, ResourceSnapshot, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = berth_template::parse_template_string(text);
    let expression = format!("[{text}]");
    if berth_template::parse_template_string(&expression).is_err() {
        return;
    }
    let template = serde_json::json!({
        "contentVersion": "1.0.0.0",
        "parameters": {"p": {"type": "array", "defaultValue": [1, "a", {"k": "v"}]}},
        "variables": {"v": {"k": [1, 2]}, "e": expression},
        "resources": [],
        "outputs": {"o": {"type": "string", "value": expression}}
    });
    let Ok(template) = Template::from_value(template) else { return };
    let group = ResourceGroupInfo { name: "rg".into(), location: "westeurope".into(), tags: Default::default(), managed_by: None };
    let ctx = DeploymentContext::resource_group("t", "s", group, "d", time::OffsetDateTime::UNIX_EPOCH);
    if let Ok(plan) = Plan::new(template, &ParameterValues::default(), ctx) {
        let _ = plan.evaluate_outputs(&ResourceSnapshot::new());
    }
});
