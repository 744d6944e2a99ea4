//! `berth deployment group create|validate|what-if|show|list|delete`: template deployments at a resource group,
//! with the requests az sends. `.bicep` files are compiled in-process; `create` waits for the deployment (a
//! spinner on stderr when it is a terminal) and prints it; `what-if` prints az's readable diff.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use berth_client::{encode_path_segment, Method};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use super::Context;
use crate::args::{
    DeploymentListArgs, DeploymentNameArgs, DeploymentTemplateArgs, DeploymentWhatIfArgs,
};
use crate::arm::{add_resource_group, list_all, with_api_version};
use crate::session::Session;

pub const DEPLOYMENTS_API: &str = "2025-04-01";
/// How often `create` looks at a running deployment.
const POLL: Duration = Duration::from_millis(200);
/// How long `create` waits at most.
const MAX_WAIT: Duration = Duration::from_secs(3600);

fn deployments_path(subscription: &str, group: &str) -> String {
    format!(
        "/subscriptions/{}/resourcegroups/{}/providers/Microsoft.Resources/deployments",
        encode_path_segment(subscription),
        encode_path_segment(group)
    )
}

fn deployment_path(subscription: &str, group: &str, name: &str) -> String {
    format!("{}/{}", deployments_path(subscription, group), encode_path_segment(name))
}

/// The template of `--template-file`: compiled when it is `.bicep`, read (JSON with comments allowed) otherwise.
async fn load_template(path: &Path, session: &Session) -> Result<Value> {
    let is_bicep = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("bicep"));
    if is_bicep {
        return super::bicep::compile_for_deployment(path, session).await;
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (value, _) = berth_template::parse_lenient(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a JSON template: {e}", path.display()))?;
    Ok(value)
}

/// The deployment name: `--name`, else the template file's name without its extension (as az).
fn deployment_name(args: &DeploymentTemplateArgs) -> Result<String> {
    match &args.name {
        Some(name) => Ok(name.clone()),
        None => args
            .template_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .context("cannot take a deployment name from the template file; give --name"),
    }
}

/// `--parameters`: `KEY=VALUE` (the value typed by the template's parameter: strings stay strings, other types
/// are read as JSON), `@file` (a parameters file or a plain `{"name": {"value": ...}}` object) or inline JSON.
pub fn parse_parameters(items: &[String], template: &Value) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        if let Some(file) = item.strip_prefix('@') {
            if file.ends_with(".bicepparam") {
                anyhow::bail!(
                    "{file}: .bicepparam files are not supported yet; use a JSON parameters file"
                );
            }
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            let (value, _) = berth_template::parse_lenient(&text)
                .map_err(|e| anyhow::anyhow!("{file}: not JSON: {e}"))?;
            merge(&mut out, value, file)?;
        } else if item.trim_start().starts_with('{') {
            let (value, _) = berth_template::parse_lenient(item)
                .map_err(|e| anyhow::anyhow!("--parameters: not JSON: {e}"))?;
            merge(&mut out, value, "--parameters")?;
        } else {
            let (name, text) = item.split_once('=').with_context(|| {
                format!("--parameters '{item}': expected KEY=VALUE, @FILE or a JSON object")
            })?;
            let declared = template
                .get("parameters")
                .and_then(Value::as_object)
                .and_then(|p| p.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, def)| def.get("type"))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            let value = match declared.as_deref() {
                Some("string" | "securestring") | None => Value::String(text.to_string()),
                Some(_) => {
                    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
                }
            };
            out.insert(name.to_string(), json!({ "value": value }));
        }
    }
    Ok(out)
}

/// Adds a parameters object (a parameters file's `parameters`, or `{"name": {"value": ...}}`, or plain values).
fn merge(out: &mut Map<String, Value>, value: Value, origin: &str) -> Result<()> {
    let map = match value {
        Value::Object(map) => map,
        _ => anyhow::bail!("{origin}: parameters must be a JSON object"),
    };
    let map = match map.get("parameters") {
        Some(Value::Object(inner))
            if map.contains_key("$schema") || map.contains_key("contentVersion") =>
        {
            inner.clone()
        }
        _ => map,
    };
    for (name, entry) in map {
        let entry = match entry {
            Value::Object(e) if e.contains_key("value") || e.contains_key("reference") => {
                Value::Object(e)
            }
            other => json!({ "value": other }),
        };
        out.insert(name, entry);
    }
    Ok(())
}

async fn request_body(args: &DeploymentTemplateArgs, session: &Session) -> Result<Value> {
    let template = load_template(&args.template_file, session).await?;
    let parameters = parse_parameters(&args.parameters, &template)?;
    Ok(json!({
        "properties": {
            "template": template,
            "parameters": parameters,
            "mode": args.mode.as_str(),
        }
    }))
}

/// A spinner on stderr while the deployment runs, only when stderr is a terminal.
fn progress(enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

fn is_terminal_state(state: &str) -> bool {
    matches!(state, "Succeeded" | "Failed" | "Canceled")
}

pub async fn create(args: DeploymentTemplateArgs, context: &Context<'_>) -> Result<Option<Value>> {
    let session = context.session("deployment group create").await?;
    let subscription = context.subscription_id(&session)?;
    let name = deployment_name(&args)?;
    let body = request_body(&args, &session).await?;
    let path = with_api_version(
        &deployment_path(&subscription, &args.resource_group, &name),
        DEPLOYMENTS_API,
    );
    let started = session.client.request(Method::PUT, &path, Some(&body)).await?;
    if args.no_wait {
        return Ok(None);
    }
    let progress = progress(!context.global.only_show_errors);
    let begun = Instant::now();
    let mut deployment = started.body;
    loop {
        let state =
            deployment["properties"]["provisioningState"].as_str().unwrap_or_default().to_string();
        if is_terminal_state(&state) {
            break;
        }
        if begun.elapsed() > MAX_WAIT {
            progress.finish_and_clear();
            anyhow::bail!(
                "the deployment '{name}' is still {state} after {} s",
                MAX_WAIT.as_secs()
            );
        }
        progress.set_message(format!("Running deployment '{name}': {state}"));
        tokio::time::sleep(POLL).await;
        deployment = session.client.get(&path).await?;
    }
    progress.finish_and_clear();
    let state = deployment["properties"]["provisioningState"].as_str().unwrap_or_default();
    if state != "Succeeded" {
        let error = &deployment["properties"]["error"];
        anyhow::bail!(
            "{}",
            describe_failure(&name, state, error, &deployment["properties"]["correlationId"])
        );
    }
    add_resource_group(&mut deployment);
    Ok(Some(deployment))
}

/// az's message for a failed deployment: the code and message, then each inner error with its resource.
fn describe_failure(name: &str, state: &str, error: &Value, correlation: &Value) -> String {
    let mut out = format!(
        "Deployment '{name}' ended {state}. Correlation ID: {}",
        correlation.as_str().unwrap_or("-")
    );
    fn walk(out: &mut String, error: &Value, depth: usize) {
        if error.is_null() {
            return;
        }
        let indent = "  ".repeat(depth);
        out.push_str(&format!(
            "\n{indent}({}) {}",
            error["code"].as_str().unwrap_or("Unknown"),
            error["message"].as_str().unwrap_or_default()
        ));
        if let Some(target) = error["target"].as_str() {
            out.push_str(&format!("\n{indent}  Target: {target}"));
        }
        for detail in error["details"].as_array().into_iter().flatten() {
            walk(out, detail, depth + 1);
        }
    }
    walk(&mut out, error, 0);
    out
}

pub async fn validate(args: DeploymentTemplateArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("deployment group validate").await?;
    let subscription = context.subscription_id(&session)?;
    let name = deployment_name(&args)?;
    let body = request_body(&args, &session).await?;
    let path = with_api_version(
        &format!("{}/validate", deployment_path(&subscription, &args.resource_group, &name)),
        DEPLOYMENTS_API,
    );
    let mut value = session.client.post(&path, &body).await?;
    add_resource_group(&mut value);
    Ok(value)
}

pub async fn what_if(args: DeploymentWhatIfArgs, context: &Context<'_>) -> Result<Option<Value>> {
    let session = context.session("deployment group what-if").await?;
    let subscription = context.subscription_id(&session)?;
    let name = deployment_name(&args.template)?;
    let body = request_body(&args.template, &session).await?;
    let path = with_api_version(
        &format!("{}/whatIf", deployment_path(&subscription, &args.template.resource_group, &name)),
        DEPLOYMENTS_API,
    );
    let value = session.client.post(&path, &body).await?;
    if args.no_pretty_print {
        return Ok(Some(value));
    }
    let color =
        !args.no_color && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(render_what_if(&value, color).as_bytes())?;
    stdout.flush()?;
    Ok(None)
}

pub async fn show(args: DeploymentNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("deployment group show").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(
        &deployment_path(&subscription, &args.resource_group, &args.name),
        DEPLOYMENTS_API,
    );
    let mut value = session.client.get(&path).await?;
    add_resource_group(&mut value);
    Ok(value)
}

pub async fn list(args: DeploymentListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("deployment group list").await?;
    let subscription = context.subscription_id(&session)?;
    let path =
        with_api_version(&deployments_path(&subscription, &args.resource_group), DEPLOYMENTS_API);
    let mut value = Value::Array(list_all(&session.client, &path).await?);
    add_resource_group(&mut value);
    Ok(value)
}

pub async fn delete(args: DeploymentNameArgs, context: &Context<'_>) -> Result<()> {
    let session = context.session("deployment group delete").await?;
    let subscription = context.subscription_id(&session)?;
    let path = with_api_version(
        &deployment_path(&subscription, &args.resource_group, &args.name),
        DEPLOYMENTS_API,
    );
    session.client.delete(&path).await?;
    Ok(())
}

// ---- what-if rendering ----------------------------------------------------------------------------------------

const RESET: &str = "\x1b[0m";

/// az's symbol and colour of a change type.
fn symbol(change: &str) -> (&'static str, &'static str) {
    match change {
        "Create" => ("+", "\x1b[32m"),
        "Delete" => ("-", "\x1b[38;5;208m"),
        "Modify" => ("~", "\x1b[35m"),
        "Deploy" => ("!", "\x1b[34m"),
        "NoChange" => ("=", "\x1b[90m"),
        "Ignore" => ("*", "\x1b[90m"),
        "Array" => ("~", "\x1b[35m"),
        _ => ("x", "\x1b[90m"),
    }
}

/// The scope of a resource ID (its resource group, or subscription) and the rest, as az groups what-if output.
fn split_scope(id: &str) -> (String, String) {
    let parts: Vec<&str> = id.split('/').collect();
    let at = if parts.len() > 4 && parts[3].eq_ignore_ascii_case("resourcegroups") { 5 } else { 3 };
    let at = at.min(parts.len());
    let scope = parts[..at].join("/");
    let rest = parts[at..].join("/");
    let rest = rest.strip_prefix("providers/").unwrap_or(&rest).to_string();
    (scope, rest)
}

fn short(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Leaf values of a JSON body by path (`properties.principalId`), for a created or deleted resource.
fn leaves(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(&path, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                leaves(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => out.push((prefix.to_string(), short(other))),
    }
}

/// az's what-if layout: the legend of the symbols in use, the changes by scope, and the summary.
pub fn render_what_if(result: &Value, color: bool) -> String {
    let paint = |change: &str, text: &str| -> String {
        if color {
            format!("{}{text}{RESET}", symbol(change).1)
        } else {
            text.to_string()
        }
    };
    let changes: Vec<&Value> =
        result["properties"]["changes"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let order = ["Create", "Delete", "Deploy", "Modify", "NoChange", "Ignore"];
    fn legend_name(c: &str) -> &str {
        match c {
            "NoChange" => "Nochange",
            other => other,
        }
    }
    let mut out = String::new();
    out.push_str("Note: The result may contain false positive predictions (noise).\n\n");
    out.push_str("Resource and property changes are indicated with these symbols:\n");
    let kinds: Vec<&str> = order
        .iter()
        .copied()
        .filter(|k| changes.iter().any(|c| c["changeType"].as_str() == Some(*k)))
        .collect();
    for kind in &kinds {
        out.push_str(&format!("  {} {}\n", paint(kind, symbol(kind).0), legend_name(kind)));
    }
    out.push_str("\nThe deployment will update the following scope:\n");
    let mut scopes: Vec<String> = Vec::new();
    for change in &changes {
        let (scope, _) = split_scope(change["resourceId"].as_str().unwrap_or_default());
        if !scopes.iter().any(|s| s.eq_ignore_ascii_case(&scope)) {
            scopes.push(scope);
        }
    }
    for scope in &scopes {
        out.push_str(&format!("\nScope: {scope}\n"));
        let mut in_scope: Vec<&&Value> = changes
            .iter()
            .filter(|c| {
                split_scope(c["resourceId"].as_str().unwrap_or_default())
                    .0
                    .eq_ignore_ascii_case(scope)
            })
            .collect();
        in_scope.sort_by_key(|c| {
            let kind = c["changeType"].as_str().unwrap_or_default();
            order.iter().position(|k| *k == kind).unwrap_or(order.len())
        });
        for change in in_scope {
            let kind = change["changeType"].as_str().unwrap_or_default();
            let (_, rest) = split_scope(change["resourceId"].as_str().unwrap_or_default());
            let api = change["after"]["apiVersion"]
                .as_str()
                .or_else(|| change["before"]["apiVersion"].as_str())
                .map(|a| format!(" [{a}]"))
                .unwrap_or_default();
            out.push_str(&format!("\n  {} {rest}{api}\n", paint(kind, symbol(kind).0)));
            match kind {
                "Create" => {
                    let mut lines = Vec::new();
                    leaves("", &change["after"], &mut lines);
                    out.push('\n');
                    for (path, value) in lines {
                        out.push_str(&format!("      {path}: {value}\n"));
                    }
                }
                "Modify" => {
                    out.push('\n');
                    for delta in change["delta"].as_array().into_iter().flatten() {
                        let path = delta["path"].as_str().unwrap_or_default();
                        let line = match delta["propertyChangeType"].as_str().unwrap_or_default() {
                            "Create" => paint(
                                "Create",
                                &format!("    + {path}: {}", short(&delta["after"])),
                            ),
                            "Delete" => paint(
                                "Delete",
                                &format!("    - {path}: {}", short(&delta["before"])),
                            ),
                            _ => paint(
                                "Modify",
                                &format!(
                                    "    ~ {path}: {} => {}",
                                    short(&delta["before"]),
                                    short(&delta["after"])
                                ),
                            ),
                        };
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
                _ => {}
            }
        }
    }
    let count = |k: &str| changes.iter().filter(|c| c["changeType"].as_str() == Some(k)).count();
    let mut summary = Vec::new();
    for (kind, words) in [
        ("Create", "to create"),
        ("Delete", "to delete"),
        ("Deploy", "to deploy"),
        ("Modify", "to modify"),
        ("NoChange", "no change"),
        ("Ignore", "to ignore"),
    ] {
        let n = count(kind);
        if n > 0 {
            summary.push(format!("{n} {words}"));
        }
    }
    if summary.is_empty() {
        out.push_str("\nResource changes: no change.\n");
    } else {
        out.push_str(&format!("\nResource changes: {}.\n", summary.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_parameters_take_the_templates_types() {
        let template = json!({"parameters": {"name": {"type": "string"}, "count": {"type": "int"}, "on": {"type": "bool"}}});
        let items = vec![
            "name=42".to_string(),
            "count=3".into(),
            "on=true".into(),
            "extra={\"a\":1}".into(),
        ];
        let p = parse_parameters(&items, &template).unwrap();
        assert_eq!(p["name"], json!({"value": "42"}));
        assert_eq!(p["count"], json!({"value": 3}));
        assert_eq!(p["on"], json!({"value": true}));
        assert_eq!(p["extra"], json!({"value": "{\"a\":1}"}));
        assert!(parse_parameters(&["novalue".to_string()], &template).is_err());
        let inline =
            parse_parameters(&["{\"count\": {\"value\": 5}}".to_string()], &template).unwrap();
        assert_eq!(inline["count"], json!({"value": 5}));
    }

    #[test]
    fn what_if_renders_az_layout_without_colour() {
        let result = json!({"status": "Succeeded", "properties": {"changes": [
            {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2",
             "changeType": "Create", "after": {"apiVersion": "2018-11-30", "location": "westeurope"}},
            {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
             "changeType": "Modify", "delta": [{"path": "tags.env", "propertyChangeType": "Modify", "before": "dev", "after": "prod"}]},
            {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r", "changeType": "Ignore"}
        ]}});
        let text = render_what_if(&result, false);
        assert!(text.contains("Resource and property changes are indicated with these symbols:\n  + Create\n  ~ Modify\n  * Ignore\n"), "{text}");
        assert!(text.contains("Scope: /subscriptions/s/resourceGroups/rg\n"), "{text}");
        assert!(
            text.contains(
                "  + Microsoft.ManagedIdentity/userAssignedIdentities/id2 [2018-11-30]\n"
            ),
            "{text}"
        );
        assert!(text.contains("      location: \"westeurope\"\n"), "{text}");
        assert!(text.contains("    ~ tags.env: \"dev\" => \"prod\"\n"), "{text}");
        assert!(
            text.contains("Resource changes: 1 to create, 1 to modify, 1 to ignore.\n"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        assert!(render_what_if(&result, true).contains("\x1b[32m+\x1b[0m"));
    }
}
