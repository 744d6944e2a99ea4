//! The ARM control plane: subscriptions, resource groups, registries, generic lists, authorization, bad input.

use berth_test_support::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

/// A second service principal with no role anywhere, made through the Graph subset like `ad sp create-for-rbac`.
async fn stranger(ts: &TestServer, owner: &str) -> (String, String, String) {
    let (status, app) = call(
        ts,
        Method::POST,
        "/v1.0/applications",
        Some(owner),
        Some(json!({"displayName": "stranger"})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    let (status, sp) = call(
        ts,
        Method::POST,
        "/v1.0/servicePrincipals",
        Some(owner),
        Some(json!({"appId": app["appId"]})),
    )
    .await;
    assert_eq!(status, 201, "{sp}");
    let (status, password) = call(
        ts,
        Method::POST,
        &format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap()),
        Some(owner),
        Some(json!({"passwordCredential": {"displayName": "rbac"}})),
    )
    .await;
    assert_eq!(status, 200, "{password}");
    let app_id = app["appId"].as_str().unwrap().to_string();
    let secret = password["secretText"].as_str().unwrap().to_string();
    let token =
        ts.token_for(&app_id, &secret, "https://management.azure.com/.default").await.unwrap();
    (app_id, sp["id"].as_str().unwrap().to_string(), token)
}

#[tokio::test]
async fn subscriptions_are_listed_and_shown() {
    each_backend(|ts| async move {
        let token = ts.owner_token().await.unwrap();
        let (status, body) =
            call(&ts, Method::GET, "/subscriptions?api-version=2022-12-01", Some(&token), None)
                .await;
        assert_eq!(status, 200);
        let sub = &body["value"][0];
        assert_eq!(sub["id"], format!("/subscriptions/{}", ts.subscription_id));
        assert_eq!(sub["tenantId"], ts.tenant_id.as_str());
        assert_eq!(sub["state"], "Enabled");
        let (status, body) = call(
            &ts,
            Method::GET,
            &format!("/subscriptions/{}", ts.subscription_id),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(
            (status, body["subscriptionId"].as_str()),
            (200, Some(ts.subscription_id.as_str()))
        );
        let (status, body) = call(
            &ts,
            Method::GET,
            "/subscriptions/00000000-0000-0000-0000-000000000009",
            Some(&token),
            None,
        )
        .await;
        assert_eq!((status, error_code(&body)), (404, "SubscriptionNotFound"));
        let (status, body) = ts
            .http
            .get(ts.url("/subscriptions"))
            .bearer_auth(&token)
            .send()
            .await
            .map(|r| (r.status().as_u16(), r))
            .unwrap();
        let body: Value = body.json().await.unwrap();
        assert_eq!((status, error_code(&body)), (400, "MissingApiVersionParameter"));
    })
    .await;
}

#[tokio::test]
async fn resource_groups_lifecycle() {
    each_backend(|ts| async move {
        let token = ts.owner_token().await.unwrap();
        let t = Some(token.as_str());
        let (status, body) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "Rg-One"),
            t,
            Some(json!({"location": "westeurope", "tags": {"team": "a"}})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["id"],
            format!("/subscriptions/{}/resourceGroups/Rg-One", ts.subscription_id)
        );
        assert_eq!(body["type"], "Microsoft.Resources/resourceGroups");
        assert_eq!(body["properties"]["provisioningState"], "Succeeded");
        assert_eq!(body["tags"]["team"], "a");
        assert!(body["systemData"]["createdAt"].is_string());
        // Same group, other casing: an update (200), keeping the original casing.
        let (status, body) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "rg-one"),
            t,
            Some(json!({"location": "WestEurope"})),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["name"], "Rg-One");
        let (status, body) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "rg-one"),
            t,
            Some(json!({"location": "eastus"})),
        )
        .await;
        assert_eq!((status, error_code(&body)), (409, "InvalidResourceGroupLocation"));
        let (status, body) = call(
            &ts,
            Method::PATCH,
            &group_path(&ts, "RG-ONE"),
            t,
            Some(json!({"tags": {"env": "x"}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tags"], json!({"env": "x"}));
        let (status, body) = call(&ts, Method::GET, &group_path(&ts, "rg-one"), t, None).await;
        assert_eq!((status, body["location"].as_str()), (200, Some("WestEurope")));
        let (status, _) = call(&ts, Method::HEAD, &group_path(&ts, "rg-one"), t, None).await;
        assert_eq!(status, 204);
        let (status, body) = call(
            &ts,
            Method::GET,
            &format!("/subscriptions/{}/resourcegroups", ts.subscription_id),
            t,
            None,
        )
        .await;
        assert_eq!((status, body["value"].as_array().unwrap().len()), (200, 1));

        let (status, body) = call(&ts, Method::DELETE, &group_path(&ts, "rg-one"), t, None).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = call(&ts, Method::GET, &group_path(&ts, "rg-one"), t, None).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceGroupNotFound"));
        let (status, _) = call(&ts, Method::HEAD, &group_path(&ts, "rg-one"), t, None).await;
        assert_eq!(status, 404);
        let (status, body) = call(&ts, Method::DELETE, &group_path(&ts, "rg-one"), t, None).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceGroupNotFound"));
    })
    .await;
}

#[tokio::test]
async fn registries_lifecycle_and_lists() {
    each_backend(|ts| async move {
        let token = ts.owner_token().await.unwrap();
        let t = Some(token.as_str());
        call(&ts, Method::PUT, &group_path(&ts, "g1"), t, Some(json!({"location": "westeurope"}))).await;
        call(&ts, Method::PUT, &group_path(&ts, "g2"), t, Some(json!({"location": "westeurope"}))).await;
        let api = "api-version=2026-09-01-preview";
        let path = format!("{}?{api}", registry_path(&ts, "g1", "MyAcr1"));
        let (status, body) = call(&ts, Method::PUT, &path, t, Some(json!({"location": "westeurope", "sku": {"name": "basic"}, "properties": {"adminUserEnabled": false}}))).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["type"], "Microsoft.ContainerRegistry/registries");
        assert_eq!(body["sku"], json!({"name": "Basic", "tier": "Basic"}));
        let props = &body["properties"];
        assert_eq!(props["loginServer"], format!("{}/myacr1", ts.local_addr));
        assert_eq!(props["adminUserEnabled"], false);
        assert_eq!(props["anonymousPullEnabled"], false);
        assert_eq!(props["roleAssignmentMode"], "LegacyRegistryPermissions");
        assert_eq!(props["provisioningState"], "Succeeded");

        // Global name uniqueness, case-insensitive.
        let (status, body) = call(&ts, Method::PUT, &format!("{}?{api}", registry_path(&ts, "g2", "myacr1")), t, Some(json!({"location": "westeurope", "sku": {"name": "Basic"}}))).await;
        assert_eq!((status, error_code(&body)), (409, "RegistryNameNotAvailable"), "{body}");
        let (status, body) = call(&ts, Method::POST, &format!("/subscriptions/{}/providers/Microsoft.ContainerRegistry/checkNameAvailability?{api}", ts.subscription_id), t, Some(json!({"name": "MYACR1", "type": "Microsoft.ContainerRegistry/registries"}))).await;
        assert_eq!((status, body["nameAvailable"].as_bool()), (200, Some(false)));

        // PATCH changes only what it names; anonymous pull needs Standard or Premium.
        let (status, body) = call(&ts, Method::PATCH, &path, t, Some(json!({"properties": {"anonymousPullEnabled": true}}))).await;
        assert_eq!((status, error_code(&body)), (400, "BadRequest"));
        let (status, body) = call(&ts, Method::PATCH, &path, t, Some(json!({"sku": {"name": "Standard"}, "properties": {"anonymousPullEnabled": true, "roleAssignmentMode": "AbacRepositoryPermissions"}, "tags": {"a": "b"}}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sku"]["name"], "Standard");
        assert_eq!(body["properties"]["anonymousPullEnabled"], true);
        assert_eq!(body["properties"]["roleAssignmentMode"], "AbacRepositoryPermissions");
        let created = body["properties"]["creationDate"].clone();
        let (status, body) = call(&ts, Method::GET, &registry_path(&ts, "G1", "myacr1"), t, None).await;
        assert_eq!((status, &body["properties"]["creationDate"]), (200, &created));
        assert_eq!(body["name"], "MyAcr1");

        call(&ts, Method::PUT, &format!("{}?{api}", registry_path(&ts, "g2", "second2")), t, Some(json!({"location": "westeurope", "sku": {"name": "Premium"}}))).await;
        let (_, by_group) = call(&ts, Method::GET, &format!("/subscriptions/{}/resourceGroups/g1/providers/Microsoft.ContainerRegistry/registries", ts.subscription_id), t, None).await;
        assert_eq!(by_group["value"].as_array().unwrap().len(), 1);
        let (_, by_sub) = call(&ts, Method::GET, &format!("/subscriptions/{}/providers/Microsoft.ContainerRegistry/registries", ts.subscription_id), t, None).await;
        assert_eq!(by_sub["value"].as_array().unwrap().len(), 2);
        let (status, generic) = call(&ts, Method::GET, &format!("/subscriptions/{}/resources?$filter=resourceType eq 'Microsoft.ContainerRegistry/registries'", ts.subscription_id), t, None).await;
        assert_eq!(status, 200);
        let names: Vec<&str> = generic["value"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["MyAcr1", "second2"]);
        assert!(generic["value"][0]["sku"].is_object());
        assert!(generic["value"][0].get("properties").is_none(), "the generic list is the short form");
        let (_, in_group) = call(&ts, Method::GET, &format!("/subscriptions/{}/resourceGroups/g2/resources", ts.subscription_id), t, None).await;
        assert_eq!(in_group["value"].as_array().unwrap().len(), 1);
        let (status, body) = call(&ts, Method::GET, &format!("/subscriptions/{}/resources?$filter=location eq 'x'", ts.subscription_id), t, None).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidRequestFormat"));

        let (status, _) = call(&ts, Method::DELETE, &registry_path(&ts, "g1", "myacr1"), t, None).await;
        assert_eq!(status, 200);
        let (status, body) = call(&ts, Method::GET, &registry_path(&ts, "g1", "myacr1"), t, None).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceNotFound"));
        let (status, _) = call(&ts, Method::DELETE, &registry_path(&ts, "g1", "myacr1"), t, None).await;
        assert_eq!(status, 204);
        // Deleting a group deletes its registries and frees their names.
        call(&ts, Method::DELETE, &group_path(&ts, "g2"), t, None).await;
        let (_, by_sub) = call(&ts, Method::GET, &format!("/subscriptions/{}/providers/Microsoft.ContainerRegistry/registries", ts.subscription_id), t, None).await;
        assert_eq!(by_sub["value"].as_array().unwrap().len(), 0);
        let (status, _) = call(&ts, Method::PUT, &registry_path(&ts, "g1", "second2"), t, Some(json!({"location": "westeurope", "sku": {"name": "Basic"}}))).await;
        assert_eq!(status, 201);
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_arm_errors_never_500() {
    each_backend(|ts| async move {
        let token = ts.owner_token().await.unwrap();
        let t = Some(token.as_str());
        call(&ts, Method::PUT, &group_path(&ts, "g"), t, Some(json!({"location": "westeurope"}))).await;
        let raw = |path: String, body: &'static str| {
            let http = ts.http.clone();
            let token = token.clone();
            async move {
                let r = http.put(path).bearer_auth(token).header("content-type", "application/json").body(body).send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let reg = ts.url(&format!("{}?{API}", registry_path(&ts, "g", "goodname")));
        for body in ["{", "[1,2]", "\"x\"", "{\"location\": 5}", "{\"location\":\"x\",\"sku\":\"Basic\"}", "{\"location\":\"x\",\"sku\":{\"name\":\"Gold\"}}", "{\"location\":\"x\",\"sku\":{\"name\":\"Basic\"},\"properties\":{\"adminUserEnabled\":\"yes\"}}", "{\"location\":\"x\",\"sku\":{\"name\":\"Basic\"},\"properties\":{\"roleAssignmentMode\":\"Open\"}}", "{\"location\":\"x\",\"sku\":{\"name\":\"Basic\"},\"tags\":[1]}"] {
            let (status, body_json) = raw(reg.clone(), body).await;
            assert_eq!(status, 400, "{body} -> {body_json}");
            assert!(body_json["error"]["code"].is_string(), "{body} -> {body_json}");
        }
        let (status, body) = call(&ts, Method::PUT, &registry_path(&ts, "g", "goodname"), t, Some(json!({"sku": {"name": "Basic"}}))).await;
        assert_eq!((status, error_code(&body)), (400, "LocationRequired"));
        let (status, body) = call(&ts, Method::PUT, &registry_path(&ts, "g", "no-dashes"), t, Some(json!({"location": "x", "sku": {"name": "Basic"}}))).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidResourceName"));
        let (status, body) = call(&ts, Method::PUT, &group_path(&ts, "bad%20name"), t, Some(json!({"location": "x"}))).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidResourceGroupName"));
        let (status, body) = call(&ts, Method::PUT, &registry_path(&ts, "nogroup", "goodname"), t, Some(json!({"location": "x", "sku": {"name": "Basic"}}))).await;
        assert_eq!((status, error_code(&body)), (404, "ResourceGroupNotFound"));
        let (status, body) = call(&ts, Method::PUT, &format!("/subscriptions/{}/resourceGroups/g/providers/Microsoft.Nope/things/x", ts.subscription_id), t, Some(json!({}))).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidResourceType"));
        let (status, body) = call(&ts, Method::GET, &format!("/subscriptions/{}/whatever", ts.subscription_id), t, None).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidResourceType"));
        let (status, body) = call(&ts, Method::POST, &group_path(&ts, "g"), t, None).await;
        assert_eq!((status, error_code(&body)), (405, "MethodNotAllowed"));
        let (status, body) = call(&ts, Method::PUT, &registry_path(&ts, "g", "goodname"), t, Some(json!({"location": "x", "sku": {"name": "Basic"}, "properties": {"adminUserEnabled": true}}))).await;
        assert_eq!((status, error_code(&body)), (400, "BadRequest"));
        // Oversized body: refused with 413 before it is buffered.
        let big = format!("{{\"location\":\"x\",\"tags\":{{\"a\":\"{}\"}}}}", "x".repeat(2 * 1024 * 1024));
        let r = ts.http.put(ts.url(&format!("{}?{API}", group_path(&ts, "big")))).bearer_auth(&token).header("content-type", "application/json").body(big).send().await.unwrap();
        assert_eq!(r.status(), 413);
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), "RequestEntityTooLarge");
        let (status, _) = call(&ts, Method::GET, "/no/such/path", t, None).await;
        assert_eq!(status, 404);
    })
    .await;
}

#[tokio::test]
async fn principal_without_rights_gets_authorization_failed() {
    each_backend(|ts| async move {
        let owner = ts.owner_token().await.unwrap();
        call(
            &ts,
            Method::PUT,
            &group_path(&ts, "g"),
            Some(&owner),
            Some(json!({"location": "westeurope"})),
        )
        .await;
        call(
            &ts,
            Method::PUT,
            &registry_path(&ts, "g", "owned1"),
            Some(&owner),
            Some(json!({"location": "westeurope", "sku": {"name": "Basic"}})),
        )
        .await;
        let (app_id, object_id, token) = stranger(&ts, &owner).await;
        let t = Some(token.as_str());

        let (status, body) = call(
            &ts,
            Method::PUT,
            &group_path(&ts, "mine"),
            t,
            Some(json!({"location": "westeurope"})),
        )
        .await;
        assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"), "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&app_id)
                && message.contains(&object_id)
                && message.contains("resourceGroups/write"),
            "{message}"
        );
        // Existing or not, the answer is the same: no existence leak.
        let (s1, b1) = call(&ts, Method::GET, &group_path(&ts, "g"), t, None).await;
        let (s2, b2) = call(&ts, Method::GET, &group_path(&ts, "nope"), t, None).await;
        assert_eq!((s1, error_code(&b1)), (403, "AuthorizationFailed"));
        assert_eq!((s2, error_code(&b2)), (403, "AuthorizationFailed"));
        let (status, _) = call(&ts, Method::GET, &registry_path(&ts, "g", "owned1"), t, None).await;
        assert_eq!(status, 403);
        let (status, _) =
            call(&ts, Method::DELETE, &registry_path(&ts, "g", "owned1"), t, None).await;
        assert_eq!(status, 403);
        // Lists are filtered, and the subscription is hidden.
        let (status, body) = call(&ts, Method::GET, "/subscriptions", t, None).await;
        assert_eq!((status, body["value"].as_array().unwrap().len()), (200, 0));
        let (status, body) = call(
            &ts,
            Method::GET,
            &format!("/subscriptions/{}/resourcegroups", ts.subscription_id),
            t,
            None,
        )
        .await;
        assert_eq!((status, body["value"].as_array().unwrap().len()), (200, 0));
        let (status, body) =
            call(&ts, Method::GET, &format!("/subscriptions/{}", ts.subscription_id), t, None)
                .await;
        assert_eq!((status, error_code(&body)), (404, "SubscriptionNotFound"));
        // It cannot make principals either.
        let (status, body) =
            call(&ts, Method::POST, "/v1.0/applications", t, Some(json!({"displayName": "x"})))
                .await;
        assert_eq!((status, error_code(&body)), (403, "AuthorizationFailed"));

        // The owner is unaffected; the registry still exists.
        let (status, _) =
            call(&ts, Method::GET, &registry_path(&ts, "g", "owned1"), Some(&owner), None).await;
        assert_eq!(status, 200);
    })
    .await;
}

#[tokio::test]
async fn metadata_endpoints_is_one_object() {
    let ts = TestServer::start().await.unwrap();
    let body: Value = ts
        .http
        .get(ts.url("/metadata/endpoints?api-version=2022-09-01"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.is_object());
    assert_eq!(body["resourceManager"], format!("{}/", ts.endpoint));
    assert_eq!(body["authentication"]["loginEndpoint"], format!("{}/", ts.endpoint));
}
