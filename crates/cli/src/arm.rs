//! ARM conventions the commands share: resource paths, paged lists, and the result transforms az
//! applies before `--query` (adding `resourceGroup`, flattening SDK models' `properties`).

use anyhow::Result;
use berth_client::{encode_path_segment, encode_query_value, Client};
use serde_json::{Map, Value};

pub const RESOURCE_GROUPS_API: &str = "2024-11-01";
pub const RESOURCES_API: &str = "2024-11-01";
pub const SUBSCRIPTIONS_API: &str = "2022-12-01";
pub const REGISTRIES_API: &str = "2026-09-01-preview";
pub const REGISTRY_TYPE: &str = "Microsoft.ContainerRegistry/registries";

/// `/subscriptions/{sub}/resourcegroups/{group}` (the casing az uses for group commands).
pub fn resource_group_path(subscription: &str, group: &str) -> String {
    format!(
        "/subscriptions/{}/resourcegroups/{}",
        encode_path_segment(subscription),
        encode_path_segment(group)
    )
}

/// `/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}`.
pub fn registry_path(subscription: &str, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{REGISTRY_TYPE}/{}",
        encode_path_segment(subscription),
        encode_path_segment(group),
        encode_path_segment(name)
    )
}

/// `path?api-version=...`.
pub fn with_api_version(path: &str, api_version: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}api-version={api_version}")
}

/// The generic resource list of a subscription filtered by type, as `az acr show` without `-g` uses.
pub fn resources_of_type_path(subscription: &str, resource_type: &str) -> String {
    let filter = encode_query_value(&format!("resourceType eq '{resource_type}'"));
    format!(
        "/subscriptions/{}/resources?$filter={filter}&api-version={RESOURCES_API}",
        encode_path_segment(subscription)
    )
}

/// GETs a list and follows `nextLink` until the end; returns every item of every page.
pub async fn list_all(client: &Client, path: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(url) = next.take() {
        let mut page = client.get(&url).await?;
        if let Some(Value::Array(values)) = page.get_mut("value").map(Value::take) {
            items.extend(values);
        }
        next = page
            .get("nextLink")
            .and_then(Value::as_str)
            .filter(|link| !link.is_empty())
            .map(str::to_owned);
    }
    Ok(items)
}

/// The resource group named in an ARM ID (`/subscriptions/s/resourceGroups/{g}/...`), any casing.
pub fn resource_group_of(id: &str) -> Option<&str> {
    let segments: Vec<&str> = id.split('/').collect();
    segments
        .windows(2)
        .find(|pair| pair[0].eq_ignore_ascii_case("resourcegroups"))
        .map(|pair| pair[1])
        .filter(|group| !group.is_empty())
}

/// az's result transform (azure-cli-core `_resource_group_transform`): every object whose `id` is a
/// resource below a resource group (at least 9 path parts) gains `resourceGroup`, at any depth.
pub fn add_resource_group(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(add_resource_group),
        Value::Object(map) => {
            if !map.contains_key("resourceGroup") {
                if let Some(group) =
                    map.get("id").and_then(Value::as_str).and_then(group_of_resource_id)
                {
                    map.insert("resourceGroup".to_owned(), Value::String(group));
                }
            }
            map.values_mut().for_each(add_resource_group);
        }
        _ => {}
    }
}

fn group_of_resource_id(id: &str) -> Option<String> {
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() > 8 && parts[3].eq_ignore_ascii_case("resourcegroups") {
        Some(parts[4].to_owned())
    } else {
        None
    }
}

/// The Python SDK flattens `properties` of resources such as registries into the model, so az
/// prints `loginServer` at the top level (and `--query loginServer` works). Top-level fields win.
pub fn flatten_properties(value: Value) -> Value {
    let Value::Object(mut map) = value else { return value };
    let Some(Value::Object(properties)) = map.remove("properties") else {
        return Value::Object(map);
    };
    let mut flattened = Map::new();
    for (key, inner) in map {
        flattened.insert(key, inner);
    }
    for (key, inner) in properties {
        flattened.entry(key).or_insert(inner);
    }
    Value::Object(flattened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_encode_their_segments() {
        assert_eq!(resource_group_path("s", "my rg"), "/subscriptions/s/resourcegroups/my%20rg");
        assert_eq!(
            registry_path("s", "g", "myacr"),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/myacr"
        );
        assert_eq!(with_api_version("/x", "1"), "/x?api-version=1");
        assert_eq!(with_api_version("/x?a=b", "1"), "/x?a=b&api-version=1");
        assert_eq!(
            resources_of_type_path("s", REGISTRY_TYPE),
            "/subscriptions/s/resources?$filter=resourceType%20eq%20%27Microsoft.ContainerRegistry%2Fregistries%27&api-version=2024-11-01"
        );
    }

    #[test]
    fn resource_group_of_ids() {
        let id = "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/r";
        assert_eq!(resource_group_of(id), Some("rg1"));
        assert_eq!(resource_group_of("/subscriptions/s/resourcegroups/RG"), Some("RG"));
        assert_eq!(resource_group_of("/subscriptions/s"), None);
    }

    #[test]
    fn resource_group_is_added_to_resources_but_not_to_groups() {
        let mut value = json!([
            {"id": "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/r"},
            {"id": "/subscriptions/s/resourceGroups/rg1"},
            {"id": "/subscriptions/s/resourcegroups/rg2/providers/P/t/n", "resourceGroup": "kept"},
            {"nested": {"id": "/subscriptions/s/resourceGroups/rg3/providers/P/t/n"}},
            {"id": null}
        ]);
        add_resource_group(&mut value);
        assert_eq!(value[0]["resourceGroup"], json!("rg1"));
        assert!(value[1].get("resourceGroup").is_none());
        assert_eq!(value[2]["resourceGroup"], json!("kept"));
        assert_eq!(value[3]["nested"]["resourceGroup"], json!("rg3"));
        assert!(value[4].get("resourceGroup").is_none());
    }

    #[test]
    fn properties_are_flattened_without_overriding_top_level_fields() {
        let registry =
            json!({"id": "i", "name": "r", "properties": {"loginServer": "l", "name": "inner"}});
        assert_eq!(
            flatten_properties(registry),
            json!({"id": "i", "name": "r", "loginServer": "l"})
        );
        assert_eq!(flatten_properties(json!({"id": "i"})), json!({"id": "i"}));
        assert_eq!(flatten_properties(json!("x")), json!("x"));
    }
}
