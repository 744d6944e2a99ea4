//! `berth role definition|assignment|audit ...` and `berth acr check-access`, with the requests az sends
//! (reference `az-wire.md` §4.5–4.6): Graph lookups for `--assignee`, role names resolved at the target scope, and
//! results flattened as az prints the SDK models (`roleType`, `principalName`, `roleDefinitionName`).

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use berth_client::encode_query_value;
use serde_json::{json, Map, Value};

use super::acr::registry_url;
use super::Context;
use crate::args::{
    AcrCheckAccessArgs, RoleAssignmentCreateArgs, RoleAssignmentDeleteArgs, RoleAssignmentListArgs,
    RoleAuditListArgs, RoleDefinitionFileArgs, RoleDefinitionListArgs, RoleDefinitionNameArgs,
};
use crate::arm::{flatten_properties, list_all, with_api_version};
use crate::session::Session;

/// The api-versions az 2.91 sends.
pub const ROLE_DEFINITIONS_API: &str = "2022-05-01-preview";
pub const ROLE_ASSIGNMENTS_API: &str = "2022-04-01";
const AUTHORIZATION: &str = "providers/Microsoft.Authorization";

fn is_guid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::parse_str(text).is_ok()
}

fn subscription_scope(subscription: &str) -> String {
    format!("/subscriptions/{subscription}")
}

/// The scope a command works at: `--scope`, else `-g` (a group of the subscription), else the subscription.
fn scope_of(scope: Option<&str>, group: Option<&str>, subscription: &str) -> String {
    match (scope, group) {
        (Some(scope), _) => scope.trim_end_matches('/').to_owned(),
        (None, Some(group)) => {
            format!("/subscriptions/{subscription}/resourceGroups/{group}")
        }
        (None, None) => subscription_scope(subscription),
    }
}

fn definitions_path(scope: &str) -> String {
    format!("{scope}/{AUTHORIZATION}/roleDefinitions")
}

fn assignments_path(scope: &str) -> String {
    format!("{scope}/{AUTHORIZATION}/roleAssignments")
}

/// A role definition as az prints it: `properties` flattened, their `type` as `roleType`.
fn flatten_role(mut role: Value) -> Value {
    if let Some(kind) = role.pointer_mut("/properties/type").map(Value::take) {
        if let Some(props) = role.get_mut("properties").and_then(Value::as_object_mut) {
            props.remove("type");
            props.insert("roleType".to_owned(), kind);
        }
    }
    flatten_properties(role)
}

// ---- principals -------------------------------------------------------------------------------------------

/// A principal named by `--assignee`: its object id and type. A GUID is tried as a client id, then as an object
/// id; anything else as a service principal name, then a display name (as az resolves it through Graph).
pub async fn resolve_assignee(session: &Session, assignee: &str) -> Result<(String, String)> {
    let client = &session.client;
    let by_spn = format!(
        "/v1.0/servicePrincipals?$filter={}",
        encode_query_value(&format!("servicePrincipalNames/any(c:c eq '{assignee}')"))
    );
    let found = client.get(&by_spn).await?;
    if let Some(id) = found.pointer("/value/0/id").and_then(Value::as_str) {
        return Ok((id.to_owned(), "ServicePrincipal".to_owned()));
    }
    if is_guid(assignee) {
        let objects = client
            .post(
                "/v1.0/directoryObjects/getByIds",
                &json!({"ids": [assignee], "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"]}),
            )
            .await?;
        if let Some(object) = objects.pointer("/value/0") {
            let kind = match object.get("@odata.type").and_then(Value::as_str) {
                Some("#microsoft.graph.user") => "User",
                Some("#microsoft.graph.group") => "Group",
                _ => "ServicePrincipal",
            };
            let id = object.get("id").and_then(Value::as_str).unwrap_or(assignee);
            return Ok((id.to_owned(), kind.to_owned()));
        }
    } else {
        let by_name = format!(
            "/v1.0/servicePrincipals?$filter={}",
            encode_query_value(&format!("displayName eq '{}'", assignee.replace('\'', "''")))
        );
        let found = client.get(&by_name).await?;
        let matches = found.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
        match matches.as_slice() {
            [one] => {
                if let Some(id) = one.get("id").and_then(Value::as_str) {
                    return Ok((id.to_owned(), "ServicePrincipal".to_owned()));
                }
            }
            [] => {}
            _ => bail!("More than one service principal is named '{assignee}'; use its object id."),
        }
    }
    bail!("Cannot find user or service principal in graph database for '{assignee}'.")
}

/// Display names of principals by object id (absent for principals the directory no longer has).
async fn principal_names(session: &Session, ids: &[String]) -> Result<HashMap<String, String>> {
    let mut names = HashMap::new();
    if ids.is_empty() {
        return Ok(names);
    }
    let objects = session
        .client
        .post(
            "/v1.0/directoryObjects/getByIds",
            &json!({"ids": ids, "types": ["servicePrincipal"]}),
        )
        .await?;
    for object in objects.get("value").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(id), Some(name)) = (
            object.get("id").and_then(Value::as_str),
            object.get("displayName").and_then(Value::as_str),
        ) {
            names.insert(id.to_ascii_lowercase(), name.to_owned());
        }
    }
    Ok(names)
}

// ---- role definitions -------------------------------------------------------------------------------------

/// The role definitions at `scope` whose name is `name` (case-insensitively) or whose GUID is `name`.
async fn find_roles(
    session: &Session,
    scope: &str,
    name: Option<&str>,
    custom_only: bool,
) -> Result<Vec<Value>> {
    let mut clauses = Vec::new();
    if let Some(name) = name.filter(|n| !is_guid(n)) {
        clauses.push(format!("roleName eq '{}'", name.replace('\'', "''")));
    }
    if custom_only {
        clauses.push("type eq 'CustomRole'".to_owned());
    }
    let mut path = definitions_path(scope);
    if !clauses.is_empty() {
        path.push_str(&format!("?$filter={}", encode_query_value(&clauses.join(" and "))));
    }
    let roles = list_all(&session.client, &with_api_version(&path, ROLE_DEFINITIONS_API)).await?;
    Ok(roles
        .into_iter()
        .filter(|r| match name {
            Some(n) if is_guid(n) => {
                r.get("name").and_then(Value::as_str).is_some_and(|g| g.eq_ignore_ascii_case(n))
            }
            _ => true,
        })
        .collect())
}

/// The one role `role` names at `scope`: a role definition ID, a GUID or a name.
async fn resolve_role(
    session: &Session,
    subscription: &str,
    scope: &str,
    role: &str,
) -> Result<Value> {
    if role.contains('/') {
        return Ok(session.client.get(&with_api_version(role, ROLE_DEFINITIONS_API)).await?);
    }
    if is_guid(role) {
        let path = format!("{}/{role}", definitions_path(&subscription_scope(subscription)));
        return Ok(session.client.get(&with_api_version(&path, ROLE_DEFINITIONS_API)).await?);
    }
    let mut roles = find_roles(session, scope, Some(role), false).await?;
    match roles.len() {
        0 => bail!("Role '{role}' doesn't exist."),
        1 => Ok(roles.remove(0)),
        _ => bail!(
            "More than one role matches the given name '{role}'. Please pick an id from '{}'.",
            roles
                .iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub async fn definition_list(args: RoleDefinitionListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("role definition list").await?;
    let subscription = context.subscription_id(&session)?;
    let scope = scope_of(args.scope.as_deref(), None, &subscription);
    let roles = find_roles(&session, &scope, args.name.as_deref(), args.custom_role_only).await?;
    Ok(Value::Array(roles.into_iter().map(flatten_role).collect()))
}

pub async fn definition_show(args: RoleDefinitionNameArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("role definition show").await?;
    let subscription = context.subscription_id(&session)?;
    let scope = scope_of(args.scope.as_deref(), None, &subscription);
    Ok(flatten_role(resolve_role(&session, &subscription, &scope, &args.name).await?))
}

/// A role definition file (az's PascalCase shape or ARM's camelCase one) as ARM's PUT body; returns the body,
/// the GUID named in the file (if any) and the first assignable scope.
fn definition_body(text: &str) -> Result<(Value, Option<String>, String)> {
    let raw: Value = serde_json::from_str(text).context("the role definition is not valid JSON")?;
    let object = raw.as_object().context("the role definition must be a JSON object")?;
    let field = |names: &[&str]| -> Option<Value> {
        names.iter().find_map(|n| {
            object.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone())
        })
    };
    let props = field(&["properties"]).and_then(|p| p.as_object().cloned()).unwrap_or_default();
    let get = |names: &[&str]| -> Option<Value> {
        field(names).or_else(|| {
            names.iter().find_map(|n| {
                props.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone())
            })
        })
    };
    let role_name = get(&["roleName", "Name"])
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|n| !is_guid(n))
        .context("the role definition needs a Name (or roleName)")?;
    let guid =
        get(&["name", "id", "Id"]).and_then(|v| v.as_str().map(str::to_owned)).and_then(|v| {
            let last = v.rsplit('/').next().unwrap_or_default().to_owned();
            is_guid(&last).then_some(last)
        });
    let list = |names: &[&str]| get(names).unwrap_or_else(|| json!([]));
    let permissions = match get(&["permissions"]) {
        Some(Value::Array(p)) if !p.is_empty() => Value::Array(p),
        _ => json!([{
            "actions": list(&["Actions"]),
            "notActions": list(&["NotActions"]),
            "dataActions": list(&["DataActions"]),
            "notDataActions": list(&["NotDataActions"]),
        }]),
    };
    let scopes = list(&["assignableScopes", "AssignableScopes"]);
    let first_scope = scopes
        .get(0)
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_owned())
        .context("the role definition needs AssignableScopes")?;
    let description = get(&["description", "Description"]).unwrap_or(Value::Null);
    let body = json!({"properties": {
        "roleName": role_name,
        "description": description,
        "type": "CustomRole",
        "assignableScopes": scopes,
        "permissions": permissions,
    }});
    Ok((body, guid, first_scope))
}

/// `@file` reads a file, anything else is the JSON itself (as az's `--role-definition`).
fn read_argument(value: &str) -> Result<String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(value.to_owned()),
    }
}

pub async fn definition_create(
    args: RoleDefinitionFileArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let session = context.session("role definition create").await?;
    let (body, _, scope) = definition_body(&read_argument(&args.role_definition)?)?;
    let guid = uuid::Uuid::new_v4().to_string();
    let path =
        with_api_version(&format!("{}/{guid}", definitions_path(&scope)), ROLE_DEFINITIONS_API);
    Ok(flatten_role(session.client.put(&path, &body).await?))
}

pub async fn definition_update(
    args: RoleDefinitionFileArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let session = context.session("role definition update").await?;
    let subscription = context.subscription_id(&session)?;
    let (body, guid, scope) = definition_body(&read_argument(&args.role_definition)?)?;
    let guid = match guid {
        Some(guid) => guid,
        None => {
            let name =
                body.pointer("/properties/roleName").and_then(Value::as_str).unwrap_or_default();
            let role = resolve_role(&session, &subscription, &scope, name).await?;
            role.get("name").and_then(Value::as_str).context("the role has no name")?.to_owned()
        }
    };
    let path =
        with_api_version(&format!("{}/{guid}", definitions_path(&scope)), ROLE_DEFINITIONS_API);
    Ok(flatten_role(session.client.put(&path, &body).await?))
}

pub async fn definition_delete(args: RoleDefinitionNameArgs, context: &Context<'_>) -> Result<()> {
    let session = context.session("role definition delete").await?;
    let subscription = context.subscription_id(&session)?;
    let scope = scope_of(args.scope.as_deref(), None, &subscription);
    let role = resolve_role(&session, &subscription, &scope, &args.name).await?;
    if role.pointer("/properties/type").and_then(Value::as_str) != Some("CustomRole") {
        bail!("'{}' is a built-in role; only custom roles can be deleted.", args.name);
    }
    let guid = role.get("name").and_then(Value::as_str).context("the role has no name")?;
    let path =
        with_api_version(&format!("{}/{guid}", definitions_path(&scope)), ROLE_DEFINITIONS_API);
    session.client.delete(&path).await?;
    Ok(())
}

// ---- role assignments -------------------------------------------------------------------------------------

/// Assignments as az prints them: flattened, with `principalName` and `roleDefinitionName`.
async fn present_assignments(
    session: &Session,
    subscription: &str,
    assignments: Vec<Value>,
) -> Result<Vec<Value>> {
    let roles = list_all(
        &session.client,
        &with_api_version(
            &definitions_path(&subscription_scope(subscription)),
            ROLE_DEFINITIONS_API,
        ),
    )
    .await?;
    let role_names: HashMap<String, String> = roles
        .iter()
        .filter_map(|r| {
            Some((
                r.get("name")?.as_str()?.to_ascii_lowercase(),
                r.pointer("/properties/roleName")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut ids: Vec<String> = assignments
        .iter()
        .filter_map(|a| {
            a.pointer("/properties/principalId").and_then(Value::as_str).map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids.dedup();
    let names = principal_names(session, &ids).await?;
    Ok(assignments
        .into_iter()
        .map(|a| {
            let principal = a
                .pointer("/properties/principalId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase();
            let role = a
                .pointer("/properties/roleDefinitionId")
                .and_then(Value::as_str)
                .and_then(|r| r.rsplit('/').next())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let mut flat = flatten_properties(a);
            if let Some(map) = flat.as_object_mut() {
                map.insert(
                    "principalName".to_owned(),
                    json!(names.get(&principal).cloned().unwrap_or_default()),
                );
                map.insert("roleDefinitionName".to_owned(), json!(role_names.get(&role)));
            }
            flat
        })
        .collect())
}

pub async fn assignment_create(
    args: RoleAssignmentCreateArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let session = context.session("role assignment create").await?;
    let subscription = context.subscription_id(&session)?;
    if args.scope.is_none() && args.resource_group.is_none() {
        bail!("--scope (or --resource-group) is required: the subscription, resource group or resource to assign at.");
    }
    let scope = scope_of(args.scope.as_deref(), args.resource_group.as_deref(), &subscription);
    let (principal_id, principal_type) = match (&args.assignee, &args.assignee_object_id) {
        (_, Some(object_id)) => {
            let kind = match &args.assignee_principal_type {
                Some(kind) => kind.clone(),
                None => resolve_assignee(&session, object_id).await.map(|(_, k)| k).unwrap_or_else(|_| {
                    context.warn("Failed to query the principal type of --assignee-object-id; ServicePrincipal is assumed.");
                    "ServicePrincipal".to_owned()
                }),
            };
            (object_id.clone(), kind)
        }
        (Some(assignee), None) => {
            let (id, kind) = resolve_assignee(&session, assignee).await?;
            (id, args.assignee_principal_type.clone().unwrap_or(kind))
        }
        (None, None) => bail!("--assignee or --assignee-object-id is required."),
    };
    let role = resolve_role(&session, &subscription, &scope, &args.role).await?;
    let role_id =
        role.get("id").and_then(Value::as_str).context("the role definition has no id")?;
    let mut properties = Map::new();
    properties.insert("roleDefinitionId".to_owned(), json!(role_id));
    properties.insert("principalId".to_owned(), json!(principal_id));
    properties.insert("principalType".to_owned(), json!(principal_type));
    if let Some(description) = &args.description {
        properties.insert("description".to_owned(), json!(description));
    }
    if let Some(condition) = &args.condition {
        properties.insert("condition".to_owned(), json!(condition));
        properties.insert(
            "conditionVersion".to_owned(),
            json!(args.condition_version.clone().unwrap_or_else(|| "2.0".to_owned())),
        );
    } else if args.condition_version.is_some() {
        bail!("--condition-version needs --condition.");
    }
    let name = args.name.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let path =
        with_api_version(&format!("{}/{name}", assignments_path(&scope)), ROLE_ASSIGNMENTS_API);
    let body = json!({ "properties": properties });
    let created = match session.client.put(&path, &body).await {
        Ok(created) => created,
        // As az does: an assignment of this role to this principal at this scope under another name is the
        // result, not an error.
        Err(berth_client::Error::Arm(e)) if e.code == "RoleAssignmentExists" => {
            let list =
                format!("{}?$filter={}", assignments_path(&scope), encode_query_value("atScope()"));
            let existing =
                list_all(&session.client, &with_api_version(&list, ROLE_ASSIGNMENTS_API)).await?;
            let role_guid = role_id.rsplit('/').next().unwrap_or_default();
            existing
                .into_iter()
                .find(|a| {
                    a.pointer("/properties/principalId")
                        .and_then(Value::as_str)
                        .is_some_and(|p| p.eq_ignore_ascii_case(&principal_id))
                        && a.pointer("/properties/scope")
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.eq_ignore_ascii_case(&scope))
                        && a.pointer("/properties/roleDefinitionId")
                            .and_then(Value::as_str)
                            .is_some_and(|r| {
                                r.rsplit('/')
                                    .next()
                                    .is_some_and(|g| g.eq_ignore_ascii_case(role_guid))
                            })
                })
                .context("The role assignment already exists, but it could not be found")?
        }
        Err(e) => return Err(e.into()),
    };
    let mut shown = present_assignments(&session, &subscription, vec![created]).await?;
    Ok(shown.remove(0))
}

/// The assignments `list` and `delete` select, as az selects them.
async fn select_assignments(
    session: &Session,
    subscription: &str,
    assignee: Option<&str>,
    role: Option<&str>,
    scope: Option<String>,
    all: bool,
    include_inherited: bool,
) -> Result<Vec<Value>> {
    let scope_given = scope.is_some();
    let scope = scope.unwrap_or_else(|| subscription_scope(subscription));
    let principal = match assignee {
        Some(a) => Some(resolve_assignee(session, a).await?.0),
        None => None,
    };
    let filter = match (&principal, all) {
        (Some(p), _) => Some(format!("principalId eq '{p}'")),
        (None, false) => Some("atScope()".to_owned()),
        (None, true) => None,
    };
    let list_scope = if all { subscription_scope(subscription) } else { scope.clone() };
    let mut path = assignments_path(&list_scope);
    if let Some(filter) = filter {
        path.push_str(&format!("?$filter={}", encode_query_value(&filter)));
    }
    let mut assignments =
        list_all(&session.client, &with_api_version(&path, ROLE_ASSIGNMENTS_API)).await?;
    let scope_lower = scope.to_ascii_lowercase();
    if !all || scope_given {
        assignments.retain(|a| {
            let at = a
                .pointer("/properties/scope")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase();
            if include_inherited {
                at == "/" || scope_lower == at || scope_lower.starts_with(&format!("{at}/"))
            } else {
                at == scope_lower
            }
        });
    }
    if let Some(role) = role {
        let wanted = resolve_role(session, subscription, &scope, role).await?;
        let guid =
            wanted.get("name").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        assignments.retain(|a| {
            a.pointer("/properties/roleDefinitionId")
                .and_then(Value::as_str)
                .and_then(|r| r.rsplit('/').next())
                .is_some_and(|g| g.eq_ignore_ascii_case(&guid))
        });
    }
    Ok(assignments)
}

pub async fn assignment_list(args: RoleAssignmentListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("role assignment list").await?;
    let subscription = context.subscription_id(&session)?;
    let scope = match (&args.scope, &args.resource_group) {
        (None, None) => None,
        (scope, group) => Some(scope_of(scope.as_deref(), group.as_deref(), &subscription)),
    };
    if !args.all && scope.is_none() {
        context.warn(
            "This command only lists role assignments at the subscription scope. To see assignments at resource \
             groups and resources too, use --all.",
        );
    }
    let assignments = select_assignments(
        &session,
        &subscription,
        args.assignee.as_deref(),
        args.role.as_deref(),
        scope,
        args.all,
        args.include_inherited,
    )
    .await?;
    Ok(Value::Array(present_assignments(&session, &subscription, assignments).await?))
}

pub async fn assignment_delete(
    args: RoleAssignmentDeleteArgs,
    context: &Context<'_>,
) -> Result<()> {
    let session = context.session("role assignment delete").await?;
    let subscription = context.subscription_id(&session)?;
    let ids: Vec<String> = match &args.ids {
        Some(ids) => ids.clone(),
        None => {
            if args.assignee.is_none()
                && args.role.is_none()
                && args.scope.is_none()
                && args.resource_group.is_none()
            {
                bail!("Please provide at least one of these parameters: --ids, --assignee, --role, --scope, --resource-group.");
            }
            let scope =
                scope_of(args.scope.as_deref(), args.resource_group.as_deref(), &subscription);
            let found = select_assignments(
                &session,
                &subscription,
                args.assignee.as_deref(),
                args.role.as_deref(),
                Some(scope),
                false,
                false,
            )
            .await?;
            if found.len() > 1 && !args.yes {
                bail!("{} role assignments match; pass --yes to delete them all, or narrow with --role.", found.len());
            }
            found
                .iter()
                .filter_map(|a| a.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        }
    };
    if ids.is_empty() {
        bail!("No matched assignments were found to delete.");
    }
    for id in ids {
        session.client.delete(&with_api_version(&id, ROLE_ASSIGNMENTS_API)).await?;
    }
    Ok(())
}

// ---- audit and explanations -------------------------------------------------------------------------------

pub async fn audit_list(args: RoleAuditListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("role audit list").await?;
    let subscription = context.subscription_id(&session)?;
    let scope = scope_of(args.scope.as_deref(), None, &subscription);
    let mut clauses = Vec::new();
    if let Some(assignee) = &args.assignee {
        let (id, _) = resolve_assignee(&session, assignee).await?;
        clauses.push(format!("principalId eq '{id}'"));
    }
    if args.denied_only {
        clauses.push("allowed eq false".to_owned());
    }
    if args.allowed_only {
        clauses.push("allowed eq true".to_owned());
    }
    let mut path = format!("{scope}/providers/Berth.Authorization/auditEvents?$top={}", args.top);
    if !clauses.is_empty() {
        path.push_str(&format!("&$filter={}", encode_query_value(&clauses.join(" and "))));
    }
    let events = session.client.get(&with_api_version(&path, ROLE_ASSIGNMENTS_API)).await?;
    let events = events.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(Value::Array(events.into_iter().map(flatten_properties).collect()))
}

pub async fn acr_check_access(args: AcrCheckAccessArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr check-access").await?;
    let (principal_id, _) = resolve_assignee(&session, &args.assignee).await?;
    let registry = registry_url(&session, &args.registry, context).await?;
    let (path, query) = registry.split_once('?').unwrap_or((&registry, ""));
    let url = format!("{path}/checkAccess?{query}");
    let mut body = json!({"principalId": principal_id});
    if let Some(repository) = &args.repository {
        body["repository"] = json!(repository);
    }
    Ok(session.client.post(&url, &body).await?)
}
