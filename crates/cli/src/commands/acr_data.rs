//! The registry data-plane commands: `berth acr login`, `acr repository list|show-tags|show|delete`,
//! `acr manifest list-metadata` and `acr gc`, with az's wire flow.
//!
//! Login (az-wire §4.10): the registry's login server comes from ARM; `GET https://<login server>/v2/` without
//! credentials answers a `Bearer` challenge whose realm says where the token service is; an Entra token for the
//! registry audience is exchanged there (`POST /oauth2/exchange`) for a registry refresh token. The data
//! commands then get an access token for exactly the scopes az asks for (`POST <realm>` with
//! `grant_type=refresh_token`) and call ACR's metadata API (`/acr/v1/...`) on the login server, following its
//! `Link` headers. `acr gc` is a control-plane action on the registry resource.

use anyhow::{bail, Context as _, Result};
use berth_client::{encode_path_segment, BearerChallenge, Client, Method};
use serde_json::{json, Value};

use super::acr::registry_url;
use super::{confirm, Context};
use crate::args::{
    AcrGcArgs, AcrLoginArgs, AcrManifestListArgs, AcrNameArgs, AcrRepositoryArgs,
    AcrRepositoryDeleteArgs, AcrRepositoryListArgs, AcrShowTagsArgs, OrderBy,
};
use crate::docker_config;
use crate::session::{trusted_ca_pem, Session};

/// The Entra scope az asks for before the exchange (`acr.audience_resource` is not configurable here).
pub const REGISTRY_SCOPE: &str = "https://containerregistry.azure.net/.default";
/// The user name that says "the password is a registry token".
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// The api-version of the registry's garbage-collection action.
const GARBAGE_COLLECT_API: &str = "2025-04-01";
/// az's page size for registry listings.
const PAGE_SIZE: usize = 100;

/// A registry reached through its token service, holding a refresh token.
struct RegistryLogin {
    login_server: String,
    /// `Bearer realm` of the challenge: the token endpoint.
    realm: String,
    /// `service` of the challenge (the login server).
    service: String,
    refresh_token: String,
    /// A client for `<scheme>://<login server>` without credentials.
    client: Client,
}

impl RegistryLogin {
    /// How token scopes name a repository: in path mode (`<host>/<registry>` login servers) names start with the
    /// registry's, as on `/v2`.
    fn scope_name(&self, repository: &str) -> String {
        match self.login_server.split_once('/') {
            Some((_, registry)) => format!("{registry}/{repository}"),
            None => repository.to_owned(),
        }
    }

    /// `repository:<name>:<actions>`.
    fn repository_scope(&self, repository: &str, actions: &str) -> String {
        format!("repository:{}:{actions}", self.scope_name(repository))
    }

    /// A client for the login server carrying an access token for `scopes`.
    async fn data_client(&self, scopes: &[String]) -> Result<Client> {
        let token = self
            .client
            .registry_access_token(&self.realm, &self.service, scopes, &self.refresh_token)
            .await
            .context("getting a registry access token")?;
        Ok(self.client.clone().with_bearer_token(token))
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (!scheme.is_empty() && host_len > 0).then(|| &url[..scheme.len() + 3 + host_len])
}

/// The registry's ARM resource (properties flattened or not), found as `acr show` finds it.
async fn registry_resource(
    session: &Session,
    args: &AcrNameArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let path = registry_url(session, args, context).await?;
    Ok(session.client.get(&path).await?)
}

/// az's login flow up to the refresh token.
async fn login(
    session: &Session,
    args: &AcrNameArgs,
    context: &Context<'_>,
) -> Result<RegistryLogin> {
    let registry = registry_resource(session, args, context).await?;
    let Some(login_server) = registry.pointer("/properties/loginServer").and_then(Value::as_str)
    else {
        bail!("the registry '{}' has no login server", args.name);
    };
    let login_server = login_server.to_owned();
    let profile = &session.profile;
    let ca_pem = trusted_ca_pem(profile.ca_pem.as_deref())?;
    // az always uses https; a server run with --insecure-http serves its registries over http.
    let scheme = profile.server.split_once("://").map_or("https", |(scheme, _)| scheme);
    let client = Client::new(&format!("{scheme}://{login_server}"), ca_pem.as_deref())?;
    let challenge: BearerChallenge = client
        .registry_challenge("/v2/")
        .await
        .with_context(|| format!("reaching the registry '{login_server}'"))?;
    let service = challenge.service.clone().unwrap_or_else(|| login_server.clone());
    let Some(token_origin) = origin(&challenge.realm) else {
        bail!("the registry's challenge names no usable token service: '{}'", challenge.realm);
    };
    let entra = Client::new(&profile.server, ca_pem.as_deref())?
        .client_credentials_token(
            &profile.tenant_id,
            &profile.client_id,
            &profile.client_secret,
            REGISTRY_SCOPE,
        )
        .await?;
    let refresh_token = client
        .exchange_refresh_token(
            &format!("{token_origin}/oauth2/exchange"),
            &service,
            &profile.tenant_id,
            &entra.access_token,
        )
        .await
        .with_context(|| {
            format!("exchanging an Entra token for a refresh token of '{login_server}'")
        })?;
    Ok(RegistryLogin { login_server, realm: challenge.realm, service, refresh_token, client })
}

/// `berth acr login -n R [--expose-token]`.
pub async fn acr_login(args: AcrLoginArgs, context: &Context<'_>) -> Result<Option<Value>> {
    let session = context.session("acr login").await?;
    let registry = login(&session, &args.registry, context).await?;
    if args.expose_token {
        context.warn(&format!(
            "You can perform manual login using the provided access token below, for example: \
             'docker login loginServer -u {NULL_GUID} -p accessToken'"
        ));
        return Ok(Some(json!({
            "accessToken": registry.refresh_token,
            "refreshToken": registry.refresh_token,
            "loginServer": registry.login_server,
            "username": NULL_GUID,
        })));
    }
    let path = docker_config::config_path()?;
    docker_config::store_credential(
        &path,
        &registry.login_server,
        NULL_GUID,
        &registry.refresh_token,
    )?;
    println!("Login Succeeded");
    Ok(None)
}

/// A repository name as a URL path (each segment encoded, `/` kept).
fn repository_path(repository: &str) -> String {
    repository.split('/').map(encode_path_segment).collect::<Vec<_>>().join("/")
}

/// The query of a `Link: <path?query>; rel="next"` header, as raw (still encoded) pairs.
fn next_page(link: Option<&str>) -> Option<Vec<(String, String)>> {
    let link = link?;
    let target = link.split_once('<')?.1.split_once('>')?.0;
    let query = target.split_once('?')?.1;
    Some(
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key.to_owned(), value.to_owned())
            })
            .collect(),
    )
}

/// Every `key` item of a paginated listing at `path`, at most `top`, pages of [`PAGE_SIZE`] as az asks.
async fn collect(
    client: &Client,
    path: &str,
    key: &str,
    top: Option<usize>,
    orderby: Option<OrderBy>,
) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(orderby) = orderby {
        params.push(("orderby".to_owned(), orderby.as_query().to_owned()));
    }
    loop {
        let wanted = match top {
            Some(top) if items.len() >= top => break,
            Some(top) => (top - items.len()).min(PAGE_SIZE),
            None => PAGE_SIZE,
        };
        params.retain(|(k, _)| k != "n");
        params.push(("n".to_owned(), wanted.to_string()));
        let query = params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let response = client.request(Method::GET, &format!("{path}?{query}"), None).await?;
        match response.body.get(key) {
            Some(Value::Array(page)) => items.extend(page.iter().cloned()),
            Some(Value::Null) | None => {}
            Some(_) => bail!("the registry's answer has no list of {key}"),
        }
        match next_page(response.header("link")) {
            Some(next) => params = next,
            None => break,
        }
    }
    if let Some(top) = top {
        items.truncate(top);
    }
    Ok(items)
}

/// `berth acr repository list -n R [--top N]`.
pub async fn repository_list(args: AcrRepositoryListArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr repository list").await?;
    let registry = login(&session, &args.registry, context).await?;
    let client = registry.data_client(&["registry:catalog:*".to_owned()]).await?;
    Ok(Value::Array(collect(&client, "/acr/v1/_catalog", "repositories", args.top, None).await?))
}

/// `berth acr repository show-tags -n R --repository X [--detail] [--orderby ..] [--top N]`: tag names, or the
/// tag details with `--detail`.
pub async fn repository_show_tags(args: AcrShowTagsArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr repository show-tags").await?;
    let registry = login(&session, &args.registry, context).await?;
    let scope = registry.repository_scope(&args.repository, "metadata_read");
    let client = registry.data_client(&[scope]).await?;
    let path = format!("/acr/v1/{}/_tags", repository_path(&args.repository));
    let tags = collect(&client, &path, "tags", args.top, args.orderby).await?;
    if args.detail {
        return Ok(Value::Array(tags));
    }
    Ok(Value::Array(tags.into_iter().filter_map(|tag| tag.get("name").cloned()).collect()))
}

/// `berth acr repository show -n R --repository X`.
pub async fn repository_show(args: AcrRepositoryArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr repository show").await?;
    let registry = login(&session, &args.registry, context).await?;
    let scope = registry.repository_scope(&args.repository, "metadata_read");
    let client = registry.data_client(&[scope]).await?;
    let path = format!("/acr/v1/{}", repository_path(&args.repository));
    Ok(client.request(Method::GET, &path, None).await?.body)
}

/// `berth acr repository delete -n R --repository X [--yes]`: what was deleted, as the registry reports it.
pub async fn repository_delete(
    args: AcrRepositoryDeleteArgs,
    context: &Context<'_>,
) -> Result<Option<Value>> {
    let question = format!(
        "Are you sure you want to delete the repository '{}' and all images under it?",
        args.repository
    );
    if !confirm(&question, args.confirm.yes)? {
        return Ok(None);
    }
    let session = context.session("acr repository delete").await?;
    let registry = login(&session, &args.registry, context).await?;
    let scope = registry.repository_scope(&args.repository, "delete,metadata_read");
    let client = registry.data_client(&[scope]).await?;
    let path = format!("/acr/v1/{}", repository_path(&args.repository));
    let body = client.request(Method::DELETE, &path, None).await?.body;
    Ok(Some(body).filter(|body| !body.is_null()))
}

/// `berth acr manifest list-metadata -r R -n X [--orderby ..] [--top N]`.
pub async fn manifest_list_metadata(
    args: AcrManifestListArgs,
    context: &Context<'_>,
) -> Result<Value> {
    let session = context.session("acr manifest list-metadata").await?;
    let registry_args =
        AcrNameArgs { name: args.registry.clone(), resource_group: args.resource_group.clone() };
    let registry = login(&session, &registry_args, context).await?;
    let scope = registry.repository_scope(&args.repository, "metadata_read");
    let client = registry.data_client(&[scope]).await?;
    let path = format!("/acr/v1/{}/_manifests", repository_path(&args.repository));
    Ok(Value::Array(collect(&client, &path, "manifests", args.top, args.orderby).await?))
}

/// `berth acr gc -n R [--dry-run]`: `POST <registry>/garbageCollect`, the server's report.
pub async fn gc(args: AcrGcArgs, context: &Context<'_>) -> Result<Value> {
    let session = context.session("acr gc").await?;
    let registry = registry_resource(&session, &args.registry, context).await?;
    let Some(id) = registry.get("id").and_then(Value::as_str) else {
        bail!("the registry '{}' has no resource id", args.registry.name);
    };
    let path = format!("{id}/garbageCollect?api-version={GARBAGE_COLLECT_API}");
    Ok(session
        .client
        .post(&path, &json!({ "dryRun": args.dry_run, "untagged": args.untagged }))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_realms() {
        assert_eq!(origin("https://127.0.0.1:8443/oauth2/token"), Some("https://127.0.0.1:8443"));
        assert_eq!(origin("https://acr.example?x=1"), Some("https://acr.example"));
        assert_eq!(origin("http://h"), Some("http://h"));
        assert_eq!(origin("/oauth2/token"), None);
        assert_eq!(origin("https:///x"), None);
    }

    #[test]
    fn next_pages_come_from_link_headers() {
        assert_eq!(
            next_page(Some("</acr/v1/a/_tags?last=v%2F1&n=2&orderby=timedesc>; rel=\"next\"")),
            Some(vec![
                ("last".to_owned(), "v%2F1".to_owned()),
                ("n".to_owned(), "2".to_owned()),
                ("orderby".to_owned(), "timedesc".to_owned()),
            ])
        );
        assert_eq!(next_page(None), None);
        assert_eq!(next_page(Some("</acr/v1/_catalog>; rel=\"next\"")), None);
    }

    #[test]
    fn repository_paths_keep_their_slashes() {
        assert_eq!(repository_path("team/app"), "team/app");
        assert_eq!(repository_path("a b/c"), "a%20b/c");
    }
}
