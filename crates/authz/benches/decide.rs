//! Benchmarks: one authorization decision among 100,000 role assignments (through the index, and a full scan for
//! comparison), the registry's seven decisions for one token, and condition parsing and evaluation. Before the
//! criterion groups it times 100,000 single decisions one by one and prints their p50/p99/max, since the target is
//! a p99 (under 20 µs).

use std::hint::black_box;
use std::time::{Duration, Instant};

use berth_arm::ResourceId;
use berth_authz::acr::{self, RegistryQuery, RoleAssignmentMode};
use berth_authz::condition::REPOSITORY_NAME_ATTRIBUTE;
use berth_authz::{
    decide_with, role_ids, ActionKind, Assignment, AssignmentIndex, AssignmentSet, AttributeSource,
    Attributes, BuiltinCatalog, Condition, ConditionContext, Request,
};
use criterion::{criterion_group, Criterion};

const TOTAL: usize = 100_000;
const SUBSCRIPTIONS: usize = 50;
const GROUPS: usize = 20;
const REGISTRIES: usize = 5;
const PRINCIPALS: usize = 20_000;
const CALLER: &str = "caller-0000-0000-0000-000000000000";

const TEAM_A: &str = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/write'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'team-a/'))";
const READS_ONE: &str = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] ForAnyOfAnyValues:StringEqualsIgnoreCase {'prms-api', 'team-c/web', 'tools/ci'}))";

/// A small deterministic generator (xorshift), so every run benches the same set.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn scope(sub: usize, group: Option<usize>, registry: Option<usize>) -> ResourceId {
    let mut s = format!("/subscriptions/00000000-0000-0000-0000-{sub:012}");
    if let Some(g) = group {
        s.push_str(&format!("/resourceGroups/group-{g}"));
        if let Some(r) = registry {
            s.push_str(&format!("/providers/Microsoft.ContainerRegistry/registries/registry{r}"));
        }
    }
    ResourceId::parse(&s).unwrap()
}

fn role_id(guid: &str) -> String {
    format!("/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

/// 100,000 assignments: 99,990 for 20,000 principals spread over 50 subscriptions × 20 groups × 5 registries (a
/// third each at subscription, group and registry scope, some with conditions), and the caller's ten, all inherited
/// by the target registry: three at its subscription, three at its group, four on it. Only the last one grants
/// `content/write` (under a condition), so an allowed write tries all ten.
fn assignments() -> (Vec<Assignment>, ResourceId) {
    let roles = [
        role_ids::READER,
        role_ids::ACR_PULL,
        role_ids::ACR_PUSH,
        role_ids::CONTRIBUTOR,
        role_ids::REPOSITORY_READER,
        role_ids::REPOSITORY_WRITER,
    ];
    let team_a = Condition::parse(TEAM_A).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(TOTAL);
    for i in 0..TOTAL - 10 {
        let (sub, group, registry) =
            (rng.next(SUBSCRIPTIONS), rng.next(GROUPS), rng.next(REGISTRIES));
        let scope = match i % 3 {
            0 => scope(sub, None, None),
            1 => scope(sub, Some(group), None),
            _ => scope(sub, Some(group), Some(registry)),
        };
        let role = roles[rng.next(roles.len())];
        let mut a = Assignment::new(
            format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{i:08}"),
            format!("principal-{:05}", rng.next(PRINCIPALS)),
            role_id(role),
            scope,
        );
        if role == role_ids::REPOSITORY_WRITER && i % 2 == 0 {
            a = a.with_condition(team_a.clone());
        }
        out.push(a);
    }
    let target = scope(7, Some(3), Some(2));
    let caller: [(&str, ResourceId, Option<&str>); 10] = [
        (role_ids::READER, scope(7, None, None), None),
        (role_ids::ACR_PULL, scope(7, None, None), None),
        (role_ids::REPOSITORY_READER, scope(7, None, None), Some(READS_ONE)),
        (role_ids::ACR_PUSH, scope(7, Some(3), None), None),
        (role_ids::REPOSITORY_CATALOG_LISTER, scope(7, Some(3), None), None),
        (role_ids::CONTRIBUTOR, scope(7, Some(3), None), None),
        (role_ids::ACR_DELETE, target.clone(), None),
        (role_ids::REPOSITORY_READER, target.clone(), Some(READS_ONE)),
        (role_ids::OWNER, target.clone(), None),
        (role_ids::REPOSITORY_WRITER, target.clone(), Some(TEAM_A)),
    ];
    for (i, (role, scope, condition)) in caller.into_iter().enumerate() {
        let mut a = Assignment::new(
            format!("{scope}/providers/Microsoft.Authorization/roleAssignments/caller-{i}"),
            CALLER,
            role_id(role),
            scope,
        );
        if let Some(c) = condition {
            a = a.with_condition(Condition::parse(c).unwrap());
        }
        out.push(a);
    }
    (out, target)
}

const WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";
const DELETE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/delete";

fn attributes(repository: &str) -> Attributes {
    Attributes::new().with(AttributeSource::Request, REPOSITORY_NAME_ATTRIBUTE, repository)
}

fn percentiles(index: &AssignmentIndex, target: &ResourceId) {
    let attributes = attributes("team-a/app");
    let mut samples = Vec::with_capacity(TOTAL);
    for i in 0..TOTAL {
        // Alternate an allowed write (the tenth assignment grants) and a denied delete (all ten tried).
        let action = if i % 2 == 0 { WRITE } else { DELETE };
        let request =
            Request { principal_id: CALLER, action, kind: ActionKind::Data, scope: target };
        let start = Instant::now();
        let decision = index.decide_with(&BuiltinCatalog, &request, &attributes);
        samples.push(start.elapsed());
        assert_eq!(decision.is_allowed(), i % 2 == 0);
        black_box(decision);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "single decisions among {TOTAL} assignments, {} samples: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
        samples.len(),
        at(0.50),
        at(0.99),
        at(0.999),
        samples.last().copied().unwrap_or(Duration::ZERO)
    );
}

fn benches(c: &mut Criterion) {
    let (all, target) = assignments();
    let build = Instant::now();
    let index: AssignmentIndex = all.iter().cloned().collect();
    println!("index of {} assignments built in {:?}", index.len(), build.elapsed());
    percentiles(&index, &target);

    let team_a = attributes("team-a/app");
    let write =
        Request { principal_id: CALLER, action: WRITE, kind: ActionKind::Data, scope: &target };
    let delete =
        Request { principal_id: CALLER, action: DELETE, kind: ActionKind::Data, scope: &target };
    assert!(index.decide_with(&BuiltinCatalog, &write, &team_a).is_allowed());
    assert!(!index.decide_with(&BuiltinCatalog, &delete, &team_a).is_allowed());

    let mut group = c.benchmark_group("decide_100k");
    group.bench_function("index/allowed_by_10th_of_10", |b| {
        b.iter(|| index.decide_with(&BuiltinCatalog, black_box(&write), &team_a))
    });
    group.bench_function("index/denied_after_10", |b| {
        b.iter(|| index.decide_with(&BuiltinCatalog, black_box(&delete), &team_a))
    });
    group.bench_function("index/registry_token_7_decisions_abac", |b| {
        let query = RegistryQuery {
            principal_id: CALLER,
            registry: &target,
            mode: RoleAssignmentMode::AbacRepositoryPermissions,
            repository: Some("team-a/app"),
        };
        b.iter(|| acr::access(&BuiltinCatalog, &index, black_box(&query)))
    });
    group.sample_size(10);
    group.bench_function("scan/allowed_by_10th_of_10", |b| {
        b.iter(|| decide_with(&BuiltinCatalog, &all, black_box(&write), &team_a))
    });
    group.finish();

    let mut group = c.benchmark_group("condition");
    group.bench_function("parse/acr_prefix_writer", |b| {
        b.iter(|| Condition::parse(black_box(TEAM_A)))
    });
    let condition = Condition::parse(READS_ONE).unwrap();
    let tools = attributes("tools/ci");
    let ctx = ConditionContext {
        action: "Microsoft.ContainerRegistry/registries/repositories/content/read",
        attributes: &tools,
    };
    assert!(condition.evaluate(&ctx));
    group.bench_function("evaluate/targeted_set_match", |b| {
        b.iter(|| condition.evaluate(black_box(&ctx)))
    });
    let untargeted = ConditionContext { action: WRITE, attributes: &tools };
    group.bench_function("evaluate/untargeted_action", |b| {
        b.iter(|| condition.evaluate(black_box(&untargeted)))
    });
    group.finish();
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
