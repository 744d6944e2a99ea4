//! Benchmark: the az walkthrough's main.json, from request text to evaluated resources and outputs.
//! Run: `cargo bench -p berth-template --bench evaluate`.
//! Measured 2026-12-02 on the shared 2-core development machine (load average ~11): 412 us median wall time for
//! parse+plan+evaluate, 193 us for plan+evaluate; in CPU time (`perf stat -e task-clock` over 20,000 loops) about
//! 105 us for the whole parse+plan+evaluate+outputs.

use berth_template::{
    parse_deployment_request, DeploymentContext, Plan, ResourceGroupInfo, ResourceSnapshot,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;

const MAIN_JSON: &str = include_str!("../tests/data/az-wire-main.json");

fn ctx() -> DeploymentContext {
    let group = ResourceGroupInfo {
        name: "rg1".into(),
        location: "westeurope".into(),
        tags: Default::default(),
        managed_by: None,
    };
    DeploymentContext::resource_group(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "00000000-0000-0000-0000-000000000001",
        group,
        "main",
        time::OffsetDateTime::UNIX_EPOCH,
    )
}

fn end_to_end(c: &mut Criterion) {
    let body = format!(
        "{{\"properties\": {{\"parameters\": {{\"a\": {{\"value\": \"b\"}}}}, \"mode\": \"Incremental\", template:{MAIN_JSON}}}}}"
    );
    let mut deployed = ResourceSnapshot::new();
    deployed.insert(
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2",
        json!({"properties": {"principalId": "p"}}),
    );
    c.bench_function("main.json parse+plan+evaluate", |b| {
        b.iter(|| {
            let request = parse_deployment_request(black_box(&body)).unwrap();
            let plan = Plan::new(request.template, &request.parameters, ctx()).unwrap();
            for wave in plan.waves() {
                for &i in wave {
                    black_box(plan.evaluate_resource(i, &deployed).unwrap());
                }
            }
            black_box(plan.evaluate_outputs(&deployed).unwrap())
        })
    });
    let request = parse_deployment_request(&body).unwrap();
    c.bench_function("main.json plan+evaluate (parsed template)", |b| {
        b.iter(|| {
            let plan = Plan::new(request.template.clone(), &request.parameters, ctx()).unwrap();
            for i in 0..plan.resources().len() {
                black_box(plan.evaluate_resource(i, &deployed).unwrap());
            }
            black_box(plan.evaluate_outputs(&deployed).unwrap())
        })
    });
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
