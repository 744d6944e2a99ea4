//! The run of one deployment: each wave of the plan's resources is sent concurrently as internal requests (the
//! caller's bearer token, through the server's own router, so the handlers and their authorization decide), nested
//! deployments become deployments of their own, `reference()` reads via internal GETs, failures skip their
//! dependants, and the outcome (outputs, output resources, ARM's error) and one operation per resource are recorded.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use berth_arm::ResourceId;
use berth_db::{Db, DeploymentOutcome};
use berth_template::{DeploymentMode, DiffOptions, Plan, PlannedResource, ResourceSnapshot};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Map, Value};
use tower::ServiceExt;
use uuid::Uuid;

use super::deployments::{fail_if_stale, iso_duration, now_ms, API_VERSION, LEASE_MS};
use crate::state::AppState;
use crate::time::now_rfc3339;

/// How often a run renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often a parent looks at a nested deployment it waits for: first soon, then less often.
const NESTED_POLL_FIRST: Duration = Duration::from_millis(5);
const NESTED_POLL_MAX: Duration = Duration::from_millis(250);
/// Largest internal response read.
const MAX_RESPONSE: usize = 8 * 1024 * 1024;
/// Template-only keys, not part of a resource's PUT body.
const TEMPLATE_KEYS: &[&str] = &[
    "apiVersion",
    "scope",
    "condition",
    "copy",
    "dependsOn",
    "comments",
    "name",
    "type",
    "resourceGroup",
    "subscriptionId",
    "existing",
];

/// Characters escaped in a path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/');

/// An ARM ID as a request path, each segment percent-encoded.
pub(crate) fn encode_path(id: &str) -> String {
    id.split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Sends internal requests as the deployment's caller.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    state: Arc<AppState>,
    router: Router,
    token: Arc<str>,
    correlation_id: Arc<str>,
}

impl Dispatcher {
    pub fn new(state: Arc<AppState>, token: String, correlation_id: String) -> Dispatcher {
        Dispatcher {
            router: super::router(state.clone()),
            state,
            token: token.into(),
            correlation_id: correlation_id.into(),
        }
    }

    /// One request on the control plane; the status and the JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        id: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let uri = format!(
            "{}?api-version={}",
            encode_path(id),
            utf8_percent_encode(api_version, SEGMENT)
        );
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header("x-ms-correlation-request-id", &*self.correlation_id);
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let request = match request.body(body) {
            Ok(r) => r,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"code": "InvalidResourceId", "message": format!("The resource ID '{id}' is not a valid request path: {e}.")}}),
                )
            }
        };
        let response = match self.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes =
            axum::body::to_bytes(response.into_body(), MAX_RESPONSE).await.unwrap_or_default();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    fn db(&self) -> &Db {
        &self.state.db
    }
}

/// What became of one planned resource.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Deployed,
    Failed,
    Skipped,
}

/// ARM's `statusCode` words.
fn status_word(status: StatusCode) -> String {
    match status.as_u16() {
        200 => "OK".into(),
        201 => "Created".into(),
        202 => "Accepted".into(),
        204 => "NoContent".into(),
        400 => "BadRequest".into(),
        401 => "Unauthorized".into(),
        403 => "Forbidden".into(),
        404 => "NotFound".into(),
        405 => "MethodNotAllowed".into(),
        409 => "Conflict".into(),
        _ => status.as_u16().to_string(),
    }
}

/// The error object of a failed internal request (`{"code","message"}`).
fn response_error(status: StatusCode, body: &Value) -> Value {
    match body.get("error") {
        Some(error) if error.is_object() => error.clone(),
        _ => json!({
            "code": status_word(status),
            "message": format!("The request failed with status {}.", status.as_u16()),
        }),
    }
}

/// The body sent for a resource: the template's body without the template-only keys.
fn put_body(evaluated: &Value) -> Value {
    let mut body = evaluated.clone();
    if let Value::Object(map) = &mut body {
        for key in TEMPLATE_KEYS {
            map.remove(*key);
        }
    }
    body
}

struct Run {
    dispatcher: Dispatcher,
    deployment_id: String,
    run_id: String,
    seq: AtomicI64,
}

/// The resource an operation is about.
struct TargetResource {
    id: String,
    resource_type: String,
    name: String,
    api_version: Option<String>,
}

impl TargetResource {
    fn of(resource: &PlannedResource) -> TargetResource {
        TargetResource {
            id: resource.id.clone(),
            resource_type: resource.resource_type.clone(),
            name: resource.name.clone(),
            api_version: resource.api_version.clone(),
        }
    }
}

/// One operation's record.
struct Operation {
    resource: TargetResource,
    provisioning_operation: &'static str,
    state: &'static str,
    status: Option<String>,
    message: Option<Value>,
    change: Option<&'static str>,
    started: Instant,
}

impl Run {
    async fn record(&self, op_id: &str, seq: i64, op: &Operation) {
        let r = &op.resource;
        let mut properties = json!({
            "provisioningOperation": op.provisioning_operation,
            "provisioningState": op.state,
            "timestamp": now_rfc3339(),
            "duration": iso_duration(op.started.elapsed().as_millis() as i64),
            "trackingId": Uuid::new_v4().to_string(),
            "targetResource": {
                "id": r.id,
                "resourceType": r.resource_type,
                "resourceName": r.name,
                "apiVersion": r.api_version,
            },
        });
        if let Some(status) = &op.status {
            properties["statusCode"] = json!(status);
        }
        if let Some(message) = &op.message {
            properties["statusMessage"] = message.clone();
        }
        if let Some(change) = op.change {
            properties["changeType"] = json!(change);
        }
        let body = json!({
            "id": format!("{}/operations/{op_id}", self.deployment_id),
            "operationId": op_id,
            "properties": properties,
        });
        if let Err(e) = self
            .dispatcher
            .db()
            .put_deployment_operation(
                &self.deployment_id,
                &self.run_id,
                op_id,
                seq,
                &body.to_string(),
            )
            .await
        {
            tracing::warn!(deployment = %self.deployment_id, error = %e, "recording a deployment operation");
        }
    }

    fn next_op(&self) -> (String, i64) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        (Uuid::new_v4().simple().to_string().to_ascii_uppercase(), seq)
    }

    /// Reads the resources `ids` (as the caller) into `snapshot`; what is missing or refused stays absent, and
    /// the evaluation that needs it fails with the engine's message.
    async fn read_into(&self, snapshot: &mut ResourceSnapshot, ids: &[(String, String)]) {
        let reads = ids.iter().map(|(id, api)| async move {
            (id, self.dispatcher.call(Method::GET, id, api, None).await)
        });
        for (id, (status, body)) in futures::future::join_all(reads).await {
            if status == StatusCode::OK {
                snapshot.insert(id, body);
            }
        }
    }

    /// Deploys one resource whose body is evaluated; returns the outcome, the error detail on failure and the
    /// resources it deployed (a nested deployment's own output resources).
    async fn deploy(
        &self,
        resource: &PlannedResource,
        body: Value,
        nested_body: Option<Value>,
    ) -> (Outcome, Option<Value>, Vec<String>) {
        let started = Instant::now();
        let (op_id, seq) = self.next_op();
        let api = resource.api_version.clone().unwrap_or_else(|| API_VERSION.into());
        let mut op = Operation {
            resource: TargetResource::of(resource),
            provisioning_operation: "Create",
            state: "Running",
            status: None,
            message: None,
            change: None,
            started,
        };
        self.record(&op_id, seq, &op).await;

        if let Some(nested) = nested_body {
            return self.deploy_nested(resource, &api, nested, &op_id, seq, op).await;
        }
        // Whether the PUT changes anything, as what-if would say: the resource before, against the body sent.
        let (before_status, before) =
            self.dispatcher.call(Method::GET, &resource.id, &api, None).await;
        let sent = put_body(&body);
        let (status, response) =
            self.dispatcher.call(Method::PUT, &resource.id, &api, Some(&sent)).await;
        if status.is_success() {
            let change = if before_status == StatusCode::OK {
                let comparable = |v: &Value| put_body(v);
                let diff = berth_template::what_if(
                    Some(&comparable(&before)),
                    Some(&comparable(&sent)),
                    DiffOptions { ignore_missing_in_after: true },
                );
                diff.change_type.as_str()
            } else {
                "Create"
            };
            op.state = "Succeeded";
            op.status = Some(status_word(status));
            op.change = Some(change);
            self.record(&op_id, seq, &op).await;
            (Outcome::Deployed, None, vec![resource.id.clone()])
        } else {
            let mut error = response_error(status, &response);
            op.state = "Failed";
            op.status = Some(status_word(status));
            op.message = Some(json!({ "error": error.clone() }));
            self.record(&op_id, seq, &op).await;
            error["target"] = json!(resource.id);
            (Outcome::Failed, Some(error), Vec::new())
        }
    }

    async fn deploy_nested(
        &self,
        resource: &PlannedResource,
        api: &str,
        body: Value,
        op_id: &str,
        seq: i64,
        mut op: Operation,
    ) -> (Outcome, Option<Value>, Vec<String>) {
        let (status, response) =
            self.dispatcher.call(Method::PUT, &resource.id, api, Some(&body)).await;
        let fail = |status: StatusCode, error: Value| (status, error);
        let result = if !status.is_success() {
            Err(fail(status, response_error(status, &response)))
        } else {
            // The child runs on its own; wait for its final state.
            let mut pause = NESTED_POLL_FIRST;
            loop {
                match self.dispatcher.db().get_deployment(&resource.id).await {
                    Ok(Some(record)) => {
                        let record = match fail_if_stale(self.dispatcher.db(), record).await {
                            Ok(r) => r,
                            Err(_) => {
                                break Err(fail(
                                    StatusCode::INTERNAL_SERVER_ERROR,
                                    json!({"code": "InternalServerError", "message": "reading the nested deployment failed"}),
                                ))
                            }
                        };
                        if record.is_terminal() {
                            if record.state == "Succeeded" {
                                let resources: Vec<String> = record
                                    .output_resources
                                    .as_deref()
                                    .and_then(|t| serde_json::from_str(t).ok())
                                    .unwrap_or_default();
                                break Ok(resources);
                            }
                            let error = record
                                .error
                                .as_deref()
                                .and_then(|t| serde_json::from_str(t).ok())
                                .unwrap_or_else(|| json!({"code": "DeploymentFailed", "message": format!("The nested deployment ended {}.", record.state)}));
                            break Err(fail(StatusCode::BAD_REQUEST, error));
                        }
                    }
                    Ok(None) => {
                        break Err(fail(
                            StatusCode::NOT_FOUND,
                            json!({"code": "DeploymentNotFound", "message": format!("The nested deployment '{}' disappeared while running.", resource.name)}),
                        ))
                    }
                    Err(e) => {
                        tracing::warn!(deployment = %resource.id, error = %e, "reading a nested deployment");
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(NESTED_POLL_MAX);
            }
        };
        match result {
            Ok(resources) => {
                op.state = "Succeeded";
                op.status = Some(status_word(status));
                self.record(op_id, seq, &op).await;
                (Outcome::Deployed, None, resources)
            }
            Err((status, error)) => {
                op.state = "Failed";
                op.status = Some(status_word(status));
                op.message = Some(json!({ "error": error.clone() }));
                self.record(op_id, seq, &op).await;
                let mut error = error;
                error["target"] = json!(resource.id);
                (Outcome::Failed, Some(error), Vec::new())
            }
        }
    }

    /// A resource that failed before it was sent (its body did not evaluate).
    async fn evaluation_failed(&self, resource: &PlannedResource, message: String) -> Value {
        let (op_id, seq) = self.next_op();
        let error = json!({ "code": "InvalidTemplate", "message": message });
        let op = Operation {
            resource: TargetResource::of(resource),
            provisioning_operation: "Create",
            state: "Failed",
            status: Some("BadRequest".into()),
            message: Some(json!({ "error": error.clone() })),
            change: None,
            started: Instant::now(),
        };
        self.record(&op_id, seq, &op).await;
        let mut error = error;
        error["target"] = json!(resource.id);
        error
    }
}

/// What a run ends with.
struct Finish {
    state: &'static str,
    outputs: Option<Map<String, Value>>,
    output_resources: Vec<String>,
    error: Option<Value>,
}

/// Runs a deployment to its end and records the outcome. `complete_group`: delete the group's resources the run
/// did not deploy (Complete mode).
pub(crate) async fn run(
    dispatcher: Dispatcher,
    deployment_id: String,
    run_id: String,
    started_ms: i64,
    plan: Plan,
    complete_group: Option<ResourceId>,
) {
    let db = dispatcher.db().clone();
    let run = Run {
        dispatcher,
        deployment_id: deployment_id.clone(),
        run_id: run_id.clone(),
        seq: AtomicI64::new(0),
    };
    let _ = db
        .deployment_progress(
            &deployment_id,
            &run_id,
            "Running",
            &now_rfc3339(),
            now_ms() + LEASE_MS,
        )
        .await;
    let renew = {
        let db = db.clone();
        let (id, run_id) = (deployment_id.clone(), run_id.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match db
                    .deployment_progress(
                        &id,
                        &run_id,
                        "Running",
                        &now_rfc3339(),
                        now_ms() + LEASE_MS,
                    )
                    .await
                {
                    Ok(true) => {}
                    _ => break,
                }
            }
        })
    };
    let finish = execute(&run, &plan, complete_group.as_ref()).await;
    renew.abort();
    let outcome = DeploymentOutcome {
        state: finish.state.into(),
        outputs: finish.outputs.map(|o| Value::Object(o).to_string()),
        output_resources: Some(json!(finish.output_resources).to_string()),
        error: finish.error.map(|e| e.to_string()),
        updated_at: now_rfc3339(),
        duration_ms: (now_ms() - started_ms).max(0),
    };
    match db.finish_deployment(&deployment_id, &run_id, &outcome).await {
        Ok(true) => {
            tracing::info!(deployment = %deployment_id, state = finish.state, "deployment finished")
        }
        Ok(false) => {
            tracing::warn!(deployment = %deployment_id, "deployment was replaced or expired before it finished")
        }
        Err(e) => {
            tracing::error!(deployment = %deployment_id, error = %e, "recording a deployment's outcome")
        }
    }
}

async fn execute(run: &Run, plan: &Plan, complete_group: Option<&ResourceId>) -> Finish {
    let resources = plan.resources();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; resources.len()];
    let mut snapshot = ResourceSnapshot::new();
    let mut details = Vec::new();
    let mut deployed = Vec::new();
    let api_of = |id: &str| {
        resources
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(id))
            .and_then(|r| r.api_version.clone())
            .unwrap_or_else(|| API_VERSION.into())
    };
    for wave in plan.waves() {
        let mut ready = Vec::new();
        for &i in wave {
            let blocked = resources[i]
                .depends_on
                .iter()
                .any(|&d| matches!(outcomes[d], Some(Outcome::Failed | Outcome::Skipped)));
            if blocked {
                outcomes[i] = Some(Outcome::Skipped);
            } else {
                ready.push(i);
            }
        }
        // What this wave's `reference()`s read, as the caller, fresh.
        let mut reads: Vec<(String, String)> = Vec::new();
        for &i in &ready {
            for target in &resources[i].references {
                if !reads.iter().any(|(id, _)| id.eq_ignore_ascii_case(target)) {
                    reads.push((target.clone(), api_of(target)));
                }
            }
        }
        run.read_into(&mut snapshot, &reads).await;
        let mut jobs = Vec::new();
        for &i in &ready {
            let resource = &resources[i];
            match plan.evaluate_resource(i, &snapshot) {
                Ok(body) => {
                    let nested = if resource.is_nested_deployment() {
                        match nested_request(plan, i, &body) {
                            Ok(b) => Some(b),
                            Err(message) => {
                                details.push(run.evaluation_failed(resource, message).await);
                                outcomes[i] = Some(Outcome::Failed);
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    jobs.push((i, body, nested));
                }
                Err(d) => {
                    details.push(run.evaluation_failed(resource, d.to_string()).await);
                    outcomes[i] = Some(Outcome::Failed);
                }
            }
        }
        let results =
            futures::future::join_all(jobs.into_iter().map(|(i, body, nested)| async move {
                (i, run.deploy(&resources[i], body, nested).await)
            }))
            .await;
        for (i, (outcome, error, ids)) in results {
            outcomes[i] = Some(outcome);
            details.extend(error);
            deployed.extend(ids);
        }
    }
    if !details.is_empty() {
        return Finish {
            state: "Failed",
            outputs: None,
            output_resources: deployed,
            error: Some(deployment_failed(&run.deployment_id, details)),
        };
    }
    if let Some(group) = complete_group {
        let errors = delete_unnamed(run, group, plan, &deployed).await;
        if !errors.is_empty() {
            return Finish {
                state: "Failed",
                outputs: None,
                output_resources: deployed,
                error: Some(deployment_failed(&run.deployment_id, errors)),
            };
        }
    }
    let reads: Vec<(String, String)> = plan
        .output_references()
        .into_iter()
        .map(|id| {
            let api = api_of(&id);
            (id, api)
        })
        .collect();
    run.read_into(&mut snapshot, &reads).await;
    match plan.evaluate_outputs(&snapshot) {
        Ok(outputs) => Finish {
            state: "Succeeded",
            outputs: Some(outputs),
            output_resources: deployed,
            error: None,
        },
        Err(d) => Finish {
            state: "Failed",
            outputs: None,
            output_resources: deployed,
            error: Some(json!({
                "code": "DeploymentOutputEvaluationFailed",
                "target": run.deployment_id,
                "message": format!("Unable to evaluate template outputs: {d}"),
            })),
        },
    }
}

/// ARM's error of a deployment with failed resources; each detail names its resource in `target`.
fn deployment_failed(deployment_id: &str, details: Vec<Value>) -> Value {
    json!({
        "code": "DeploymentFailed",
        "target": deployment_id,
        "message": "At least one resource deployment operation failed. Please list deployment operations for \
                    details. Please see https://aka.ms/arm-deployment-operations for usage details.",
        "details": details,
    })
}

/// The request body of a nested deployment: its template (untouched for `inner` scope, evaluated in the parent
/// for `outer`), parameters and mode; it runs as a deployment of its own.
fn nested_request(plan: &Plan, index: usize, body: &Value) -> Result<Value, String> {
    let nested = plan.nested_deployment(index, body).map_err(|d| d.to_string())?;
    if nested.mode == DeploymentMode::Complete {
        // ARM's rule: only the main template may be Complete (its evaluation includes what nested templates
        // deploy to the same group).
        return Err(format!(
            "The nested deployment '{}' sets mode 'Complete'; nested deployments can only be Incremental.",
            nested.name
        ));
    }
    let mut request = json!({
        "properties": {
            "mode": nested.mode.as_str(),
            "template": nested.template.raw.clone(),
            "parameters": Value::Object(nested.parameters.0.clone()),
        }
    });
    if let Some(location) = nested.location.clone().or_else(|| plan.context().location.clone()) {
        if nested.target_resource_group(plan.context()).is_none() {
            request["location"] = json!(location);
        }
    }
    Ok(request)
}

/// Complete mode: deletes the group's resources that neither this deployment nor its nested ones deployed.
async fn delete_unnamed(
    run: &Run,
    group: &ResourceId,
    plan: &Plan,
    deployed: &[String],
) -> Vec<Value> {
    let keep: HashSet<String> = deployed
        .iter()
        .chain(plan.resources().iter().map(|r| &r.id))
        .map(|id| id.to_ascii_lowercase())
        .collect();
    let subscription = group.subscription_id().unwrap_or_default().to_string();
    let records = match run
        .dispatcher
        .db()
        .list_resources(&subscription, Some(group.key().as_str()), None)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return vec![
                json!({"code": "InternalServerError", "message": format!("listing the group: {e}")}),
            ]
        }
    };
    let mut errors = Vec::new();
    for record in records {
        // Only top-level resources: child resources go with their parents.
        if keep.contains(&record.id.to_ascii_lowercase())
            || record.type_key.matches('/').count() != 1
        {
            continue;
        }
        let started = Instant::now();
        let (op_id, seq) = run.next_op();
        let (status, body) =
            run.dispatcher.call(Method::DELETE, &record.id, API_VERSION, None).await;
        let ok = status.is_success();
        let error = (!ok).then(|| response_error(status, &body));
        let op = Operation {
            resource: TargetResource {
                id: record.id.clone(),
                resource_type: ResourceId::parse(&record.id)
                    .ok()
                    .and_then(|r| r.resource_type())
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| record.type_key.clone()),
                name: record.name.clone(),
                api_version: None,
            },
            provisioning_operation: "Delete",
            state: if ok { "Succeeded" } else { "Failed" },
            status: Some(status_word(status)),
            message: error.clone().map(|e| json!({ "error": e })),
            change: Some("Delete"),
            started,
        };
        run.record(&op_id, seq, &op).await;
        if let Some(mut e) = error {
            e["target"] = json!(record.id);
            errors.push(e);
        }
    }
    errors
}
