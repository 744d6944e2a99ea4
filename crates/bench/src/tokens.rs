//! The registry-token scenario (`berth-bench --registry-tokens`): registry access tokens issued per second for a
//! principal with ten inherited role assignments, next to the same server's HTTP ceiling.
//!
//! Each repetition starts `berth serve` on a fresh data directory (HTTPS, SQLite: its defaults), signs in as the
//! bootstrap owner, creates the group `bench` and the registry `benchacr`, a service principal through the Graph
//! subset, and ten role assignments that the registry inherits (AcrPull, AcrPush, AcrDelete, Reader and
//! AcrImageSigner at the subscription and again at the group). The principal's Entra token is exchanged at
//! `/oauth2/exchange` for a refresh token; the load then sends `POST /oauth2/token` (`grant_type=refresh_token`,
//! `scope=repository:benchacr/app:pull,push,delete`) over C keep-alive connections: every request authenticates
//! the refresh token, reads the principal's assignments from the store, decides each action and signs a new
//! access token (RS256). Every answer must be 200. The ceiling is `GET /metadata/endpoints` on the same listener
//! (same TLS, middleware and logging; no store, no crypto) at the same C, in the same repetition.

use std::path::Path;

use anyhow::{bail, Context, Result};
use http::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::berth::{self, Bootstrap};
use crate::client::{self, RequestTemplate};
use crate::load::{self, LoadResult, LoadSpec};

/// The roles assigned at the subscription and again at the group: ten assignments the registry inherits.
const ROLES: [&str; 5] = [
    "7f951dda-4ed3-4680-a7ca-43fe172d538d", // AcrPull
    "8311e382-0749-4cb8-b61a-304f252e45ec", // AcrPush
    "c2f4ef07-c644-48eb-af81-4b1b4947fb11", // AcrDelete
    "acdd72a7-3385-48ef-bd42-f606fba81ae7", // Reader
    "6cef56e8-d556-48e5-a04f-b8e64114680f", // AcrImageSigner
];
const CEILING_PATH: &str = "/metadata/endpoints?api-version=2022-09-01";

/// One repetition: token issuance and the ceiling at each C.
#[derive(Debug, Clone, Serialize)]
pub struct TokensRep {
    pub rep: usize,
    pub tokens: Vec<LoadResult>,
    pub ceiling: Vec<LoadResult>,
}

/// Run the scenario `reps` times; print a table and return every number.
pub async fn run(
    binary: &Path,
    run_dir: &Path,
    reps: usize,
    connections: &[usize],
    spec: &dyn Fn(usize) -> LoadSpec,
) -> Result<Vec<TokensRep>> {
    let mut results = Vec::new();
    for rep in 1..=reps {
        let rep_dir = run_dir.join(format!("tokens-rep{rep}"));
        let result = berth_rep(binary, &rep_dir, rep, connections, spec)
            .await
            .with_context(|| format!("registry-token repetition {rep}"))?;
        results.push(result);
    }
    print!("{}", render(&results, connections));
    Ok(results)
}

async fn berth_rep(
    binary: &Path,
    rep_dir: &Path,
    rep: usize,
    connections: &[usize],
    spec: &dyn Fn(usize) -> LoadSpec,
) -> Result<TokensRep> {
    eprintln!("rep {rep}: berth, setting up a principal with ten inherited assignments");
    let berth::SignedIn { mut process, listen, target, bootstrap, owner_token: owner } =
        berth::start_signed_in(binary, rep_dir).await?;
    let arm = berth::Arm { target: &target, token: &owner };
    let subscription = format!("/subscriptions/{}", bootstrap.subscription_id);
    let group = format!("{subscription}/resourceGroups/bench");
    arm.call(
        Method::PUT,
        &format!("{group}/providers/Microsoft.ContainerRegistry/registries/benchacr?api-version=2023-07-01"),
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}})),
    )
    .await?;
    let app =
        arm.call(Method::POST, "/v1.0/applications", Some(json!({"displayName": "bench"}))).await?;
    let sp = arm
        .call(Method::POST, "/v1.0/servicePrincipals", Some(json!({"appId": app["appId"]})))
        .await?;
    let app_object = app["id"].as_str().context("the application has no id")?;
    let password = arm
        .call(
            Method::POST,
            &format!("/v1.0/applications/{app_object}/addPassword"),
            Some(json!({})),
        )
        .await?;
    for scope in [&subscription, &group] {
        for role in ROLES {
            arm.call(
                Method::PUT,
                &format!(
                    "{scope}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
                    uuid::Uuid::new_v4()
                ),
                Some(json!({"properties": {
                    "roleDefinitionId": format!("{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                    "principalId": sp["id"], "principalType": "ServicePrincipal"}})),
            )
            .await?;
        }
    }

    // The principal's Entra token for the registry audience, exchanged for a refresh token.
    let principal = Bootstrap {
        tenant_id: bootstrap.tenant_id.clone(),
        subscription_id: bootstrap.subscription_id.clone(),
        client_id: app["appId"].as_str().context("no appId")?.to_owned(),
        client_secret: password["secretText"].as_str().context("no secretText")?.to_owned(),
    };
    let entra = berth::client_credentials_token(
        &target,
        &principal,
        "https://containerregistry.azure.net/.default",
    )
    .await?;
    let service = format!("{listen}/benchacr");
    let form = serde_urlencoded::to_string([
        ("grant_type", "access_token"),
        ("service", service.as_str()),
        ("access_token", entra.as_str()),
    ])?;
    let exchange = RequestTemplate::new(Method::POST, listen, "/oauth2/exchange", None)?
        .with_body("application/x-www-form-urlencoded", form);
    let response = client::fetch(&target, &exchange).await.context("POST /oauth2/exchange")?;
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let refresh = answer["refresh_token"].as_str().with_context(|| {
        format!("the exchange answered {}: {}", response.status, response.body_excerpt())
    })?;

    let form = serde_urlencoded::to_string([
        ("grant_type", "refresh_token"),
        ("service", service.as_str()),
        ("scope", "repository:benchacr/app:pull,push,delete"),
        ("refresh_token", refresh),
    ])?;
    let token = RequestTemplate::new(Method::POST, listen, "/oauth2/token", None)?
        .with_body("application/x-www-form-urlencoded", form);
    // The ten assignments grant all three actions; check once before loading.
    let check = client::fetch(&target, &token).await.context("first token request")?;
    let granted = access_of(&check.body)?;
    if granted != json!(["pull", "push", "delete"]) && granted != json!(["delete", "pull", "push"])
    {
        bail!("the token grants {granted}, not pull, push and delete");
    }
    let ceiling = RequestTemplate::new(Method::GET, listen, CEILING_PATH, None)?;
    let mut token_loads = Vec::new();
    let mut ceiling_loads = Vec::new();
    for &c in connections {
        eprintln!("rep {rep}: registry tokens with C={c}");
        process.ensure_running()?;
        token_loads.push(load::run(&target, &token, spec(c)).await?);
        eprintln!("rep {rep}: ceiling (/metadata/endpoints) with C={c}");
        ceiling_loads.push(load::run(&target, &ceiling, spec(c)).await?);
    }
    process.ensure_running()?;
    process.stop().context("stopping berth")?;
    Ok(TokensRep { rep, tokens: token_loads, ceiling: ceiling_loads })
}

/// The `access[0].actions` of the access token in a `/oauth2/token` answer.
fn access_of(body: &[u8]) -> Result<Value> {
    use base64::Engine as _;
    let answer: Value = serde_json::from_slice(body).context("parsing the token answer")?;
    let jwt = answer["access_token"].as_str().context("no access_token")?;
    let payload = jwt.split('.').nth(1).context("not a JWT")?;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).context("JWT payload")?,
    )?;
    Ok(claims["access"][0]["actions"].clone())
}

/// The table: per C, registry tokens/s next to the same server's ceiling.
pub fn render(results: &[TokensRep], connections: &[usize]) -> String {
    let reps: Vec<_> =
        results.iter().map(|r| (r.tokens.as_slice(), r.ceiling.as_slice())).collect();
    crate::report::load_vs_ceiling(
        "registry access tokens per second, ten inherited assignments",
        "tokens/s",
        connections,
        &reps,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn access_of_reads_the_granted_actions() {
        let claims = json!({"access": [{"type": "repository", "name": "a", "actions": ["pull"]}]});
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).unwrap());
        let body = json!({"access_token": format!("h.{payload}.s")}).to_string();
        assert_eq!(access_of(body.as_bytes()).unwrap(), json!(["pull"]));
        assert!(access_of(b"{}").is_err());
    }
}
