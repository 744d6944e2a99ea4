//! Fuzz target: whole template documents (lenient JSON and the template schema), planned when they parse.
#![no_main]

use berth_template::{DeploymentContext, ParameterValues, Plan, ResourceGroupInfo, ResourceSnapshot, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = berth_template::parse_deployment_request(text);
    let Ok(template) = Template::parse(text) else { return };
    let group = ResourceGroupInfo { name: "rg".into(), location: "westeurope".into(), tags: Default::default(), managed_by: None };
    let ctx = DeploymentContext::resource_group("t", "s", group, "d", time::OffsetDateTime::UNIX_EPOCH);
    if let Ok(plan) = Plan::new(template, &ParameterValues::default(), ctx) {
        for i in 0..plan.resources().len() {
            let _ = plan.evaluate_resource(i, &ResourceSnapshot::new());
        }
        let _ = plan.evaluate_outputs(&ResourceSnapshot::new());
        let groups = |name: &str| {
            Some(ResourceGroupInfo { name: name.into(), location: "westeurope".into(), tags: Default::default(), managed_by: None })
        };
        let _ = plan.what_if(&ResourceSnapshot::new(), &groups);
    }
});
