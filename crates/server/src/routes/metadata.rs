//! `GET /metadata/endpoints`: the cloud description `az cloud register` reads (one JSON object).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn endpoints(State(state): State<Arc<AppState>>) -> Json<Value> {
    let base = format!("{}/", state.public_url);
    let acr_suffix = state.registry_domain.clone().unwrap_or_else(|| state.public_host.clone());
    Json(json!({
        "name": "berth",
        "resourceManager": base,
        "portal": base,
        "graph": base,
        "graphAudience": base,
        "gallery": base,
        "batch": base,
        "media": base,
        "sqlManagement": base,
        "activeDirectoryDataLake": base,
        "microsoftGraphResourceId": base,
        "vmImageAliasDoc": format!("{base}vmimagealiases.json"),
        "authentication": {
            "loginEndpoint": base,
            "audiences": [base, state.public_url],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {
            "acrLoginServer": acr_suffix,
            "keyVaultDns": "vault.berth.invalid",
            "storage": "storage.berth.invalid",
            "sqlServerHostname": "sql.berth.invalid",
        },
    }))
}
