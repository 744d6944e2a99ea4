//! End-to-end tests of the template engine: real templates (the az walkthrough's main.json, the Bicep-compiled
//! nested modules of the blog scenario) planned and evaluated, ARM's function vectors, and bad templates.
#![recursion_limit = "512"]

use berth_template::{
    arm_guid, parse_deployment_request, what_if, ChangeType, DeploymentContext, Diagnostics,
    DiffOptions, ParameterValues, Plan, ResourceGroupInfo, ResourceSnapshot, Template,
};
use serde_json::{json, Value};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn group(name: &str) -> ResourceGroupInfo {
    ResourceGroupInfo {
        name: name.into(),
        location: "westeurope".into(),
        tags: Default::default(),
        managed_by: None,
    }
}

fn ctx() -> DeploymentContext {
    let now = time::OffsetDateTime::from_unix_timestamp(1_680_224_438).unwrap();
    DeploymentContext::resource_group(TENANT, SUB, group("rg1"), "main", now)
}

fn rg_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1")
}

fn params(values: Value) -> ParameterValues {
    ParameterValues::from_values(values.as_object().unwrap().clone())
}

fn template(value: Value) -> Template {
    Template::from_value(value).unwrap_or_else(|d| panic!("{d}"))
}

fn plan(value: Value, parameters: Value) -> Result<Plan, Diagnostics> {
    Plan::new(Template::from_value(value)?, &params(parameters), ctx())
}

/// Evaluates expressions as template variables (every function except reference/list, which need resources).
fn evaluate(variables: Value) -> Result<serde_json::Map<String, Value>, Diagnostics> {
    let t = json!({"contentVersion": "1.0.0.0", "variables": variables, "resources": []});
    Ok(plan(t, json!({}))?.variables().clone())
}

fn az_body(template_text: &str, parameters: &str) -> String {
    // Exactly how az splices the file (reference az-wire.md §4.9): an unquoted key, the file verbatim.
    format!("{{\"properties\": {{\"parameters\": {parameters}, \"mode\": \"Incremental\", template:{template_text}}}}}")
}

#[test]
fn az_walkthrough_template_plans_and_evaluates_end_to_end() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/az-wire-main.json"
    ))
    .unwrap();
    let body = az_body(&format!("// the file as az reads it\n{text}"), r#"{"a": {"value": "b"}}"#);
    let request = parse_deployment_request(&body).unwrap();
    let plan = Plan::new(request.template, &request.parameters, ctx()).unwrap();

    let identity_id =
        format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2", rg_id());
    let resources = plan.resources();
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[0].id, identity_id);
    assert_eq!(resources[1].depends_on, vec![0]);
    assert_eq!(plan.waves(), &[vec![0], vec![1]]);
    // What an asynchronous caller must fetch before evaluating each resource.
    assert!(resources[0].references.is_empty());
    assert_eq!(resources[1].references, vec![identity_id.clone()]);
    assert!(plan.output_references().is_empty());

    let mut deployed = ResourceSnapshot::new();
    let identity = plan.evaluate_resource(0, &deployed).unwrap();
    assert_eq!(
        identity,
        json!({"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
               "name": "id2", "location": "westeurope"})
    );
    // Before the identity exists its reference() cannot be answered, and the error names it.
    let err = plan.evaluate_resource(1, &deployed).unwrap_err();
    assert_eq!(err.code(), "DeploymentFailed");
    assert!(err.to_string().contains(&identity_id), "{err}");
    assert!(
        err.to_string().starts_with(
            "resources[1].properties.principalId (line 26, column 24, characters 1..116)"
        ),
        "{err}"
    );

    deployed.insert(
        &identity_id,
        json!({"id": identity_id, "properties": {"principalId": "p-123", "clientId": "c"}}),
    );
    let assignment = plan.evaluate_resource(1, &deployed).unwrap();
    let expected_name = arm_guid(&[&rg_id(), "id2", "acrpull"]);
    assert_eq!(assignment["name"], expected_name.as_str());
    assert_eq!(
        assignment["properties"],
        json!({"roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"),
               "principalId": "p-123", "principalType": "ServicePrincipal"})
    );
    assert_eq!(plan.resources()[1].name, expected_name);
    let outputs = plan.evaluate_outputs(&deployed).unwrap();
    assert_eq!(Value::Object(outputs), json!({"a": {"type": "String", "value": "b"}}));

    // az sends only the parameters given on its command line; a missing one is named with its line.
    let request = parse_deployment_request(&az_body(&text, "{}")).unwrap();
    let err = Plan::new(request.template, &request.parameters, ctx()).unwrap_err();
    assert_eq!(err.code(), "InvalidTemplateParameter");
    assert_eq!(err.to_string(), "parameters.a (line 5, column 10): the value for the template parameter 'a' is not provided");
}

#[test]
fn deployment_request_errors_have_positions() {
    let err =
        parse_deployment_request("{\"properties\": {template: {\n  \"a\": [1,\n}}}").unwrap_err();
    assert_eq!(err.code(), "InvalidRequestContent");
    assert!(err.to_string().contains("line 3, column 1"), "{err}");
    let err = parse_deployment_request("{\"properties\": {}}").unwrap_err();
    assert!(err.to_string().contains("properties.template"), "{err}");
    let err = parse_deployment_request(&az_body(
        "{\"contentVersion\": \"1.0.0.0\",\n\"resources\": [\"[foo(]\"]}",
        "{}",
    ))
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("properties.template.resources[0] (line 2"), "{text}");
}

/// The blog scenario's corrected main.bicep as Bicep compiles it (reference §7.2): two inner-scope modules.
fn blog_main() -> Value {
    json!({
      "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
      "contentVersion": "1.0.0.0",
      "metadata": {"_generator": {"name": "bicep", "version": "dev", "templateHash": "1"}},
      "parameters": {
        "acrName": {"type": "string"},
        "identityName": {"type": "string"},
        "location": {"type": "string", "defaultValue": "[resourceGroup().location]"}
      },
      "resources": [
        {
          "type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "managedIdentity",
          "properties": {
            "expressionEvaluationOptions": {"scope": "inner"}, "mode": "Incremental",
            "parameters": {"identityName": {"value": "[parameters('identityName')]"}, "location": {"value": "[parameters('location')]"}},
            "template": {
              "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
              "contentVersion": "1.0.0.0",
              "parameters": {"identityName": {"type": "string"}, "location": {"type": "string", "defaultValue": "[resourceGroup().location]"}},
              "resources": [
                {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2018-11-30",
                 "name": "[parameters('identityName')]", "location": "[parameters('location')]"}
              ],
              "outputs": {
                "principalId": {"type": "string",
                  "value": "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('identityName')), '2018-11-30').principalId]"}
              }
            }
          }
        },
        {
          "type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "roleAssignment",
          "properties": {
            "expressionEvaluationOptions": {"scope": "inner"}, "mode": "Incremental",
            "parameters": {
              "acrName": {"value": "[parameters('acrName')]"},
              "principalId": {"value": "[reference(resourceId('Microsoft.Resources/deployments', 'managedIdentity'), '2025-04-01').outputs.principalId.value]"}
            },
            "template": {
              "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
              "contentVersion": "1.0.0.0",
              "parameters": {"acrName": {"type": "string"}, "principalId": {"type": "string"}},
              "variables": {"acrpullRoleId": "7f951dda-4ed3-4680-a7ca-43fe172d538d"},
              "resources": [
                {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2020-04-01-preview",
                 "scope": "[resourceId('Microsoft.ContainerRegistry/registries', parameters('acrName'))]",
                 "name": "[guid(resourceId('Microsoft.ContainerRegistry/registries', parameters('acrName')), parameters('principalId'), 'AcrPull')]",
                 "properties": {
                   "roleDefinitionId": "[format('/subscriptions/{0}/providers/Microsoft.Authorization/roleDefinitions/{1}', subscription().subscriptionId, variables('acrpullRoleId'))]",
                   "principalId": "[parameters('principalId')]",
                   "principalType": "ServicePrincipal"}}
              ]
            }
          },
          "dependsOn": ["[resourceId('Microsoft.Resources/deployments', 'managedIdentity')]"]
        }
      ]
    })
}

#[test]
fn nested_inner_scope_modules_deploy_in_order_and_pass_outputs() {
    let parent = plan(blog_main(), json!({"acrName": "myacr", "identityName": "id1"})).unwrap();
    assert_eq!(parent.waves(), &[vec![0], vec![1]]);
    let mut deployed = ResourceSnapshot::new();

    // Module 1: the identity.
    let body = parent.evaluate_resource(0, &deployed).unwrap();
    let nested = parent.nested_deployment(0, &body).unwrap();
    assert!(nested.inner_scope);
    assert_eq!(nested.target_resource_group(parent.context()), Some("rg1"));
    let child_ctx = nested.context(parent.context(), Some(group("rg1")));
    let child = Plan::new(nested.template.clone(), &nested.parameters, child_ctx).unwrap();
    let identity = child.evaluate_resource(0, &deployed).unwrap();
    assert_eq!(identity["name"], "id1");
    assert_eq!(identity["location"], "westeurope");
    let identity_id = child.resources()[0].id.clone();
    deployed.insert(
        &identity_id,
        json!({"properties": {"principalId": "11111111-2222-3333-4444-555555555555"}}),
    );
    assert_eq!(child.output_references(), vec![identity_id.clone()]);
    let child_outputs = child.evaluate_outputs(&deployed).unwrap();
    assert_eq!(child_outputs["principalId"]["value"], "11111111-2222-3333-4444-555555555555");
    let deployment_id = parent.resources()[0].id.clone();
    assert_eq!(
        deployment_id,
        format!("{}/providers/Microsoft.Resources/deployments/managedIdentity", rg_id())
    );
    deployed.insert(&deployment_id, json!({"properties": {"outputs": child_outputs}}));

    assert_eq!(parent.resources()[1].references, vec![deployment_id.clone()]);
    // Module 2: the role assignment on the registry, with the first module's output.
    let body = parent.evaluate_resource(1, &deployed).unwrap();
    assert_eq!(
        body["properties"]["parameters"]["principalId"]["value"],
        "11111111-2222-3333-4444-555555555555"
    );
    // The inner template is passed on untouched: its expressions are the child's.
    assert_eq!(
        body["properties"]["template"]["resources"][0]["properties"]["principalId"],
        "[parameters('principalId')]"
    );
    let nested = parent.nested_deployment(1, &body).unwrap();
    let child = Plan::new(
        nested.template.clone(),
        &nested.parameters,
        nested.context(parent.context(), Some(group("rg1"))),
    )
    .unwrap();
    let registry_id = format!("{}/providers/Microsoft.ContainerRegistry/registries/myacr", rg_id());
    let assignment = child.evaluate_resource(0, &deployed).unwrap();
    let name = arm_guid(&[&registry_id, "11111111-2222-3333-4444-555555555555", "AcrPull"]);
    assert_eq!(assignment["name"], name.as_str());
    assert_eq!(assignment["scope"], registry_id.as_str());
    assert_eq!(
        assignment["properties"]["roleDefinitionId"],
        format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d")
    );
    // An extension resource's ID hangs below its scope.
    assert_eq!(
        child.resources()[0].id,
        format!("{registry_id}/providers/Microsoft.Authorization/roleAssignments/{name}")
    );
}

#[test]
fn nested_outer_scope_sees_the_parents_parameters() {
    let t = json!({
      "contentVersion": "1.0.0.0",
      "parameters": {"prefix": {"type": "string", "defaultValue": "web"}},
      "variables": {"suffix": "01"},
      "resources": [{
        "type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "inner", "resourceGroup": "other-rg",
        "properties": {"mode": "Incremental", "template": {
          "contentVersion": "1.0.0.0",
          "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
                         "name": "[concat(parameters('prefix'), variables('suffix'))]", "location": "[[resourceGroup().location]"}]
        }}
      }]
    });
    let parent = plan(t, json!({})).unwrap();
    assert_eq!(parent.resources()[0].id, format!("/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.Resources/deployments/inner"));
    let body = parent.evaluate_resource(0, &ResourceSnapshot::new()).unwrap();
    let nested = parent.nested_deployment(0, &body).unwrap();
    assert!(!nested.inner_scope);
    assert_eq!(nested.target_resource_group(parent.context()), Some("other-rg"));
    let mut other = group("other-rg");
    other.location = "northeurope".into();
    let child = Plan::new(
        nested.template.clone(),
        &nested.parameters,
        nested.context(parent.context(), Some(other)),
    )
    .unwrap();
    let identity = child.evaluate_resource(0, &ResourceSnapshot::new()).unwrap();
    assert_eq!(identity["name"], "web01");
    // The escaped expression survived the parent's evaluation and runs in the child's resource group.
    assert_eq!(identity["location"], "northeurope");
}

#[test]
fn function_results_match_the_arm_engine_vectors() {
    // ARM JSON forms of bicep's baselines_bicepparam/Expressions inputs; expected values are the ARM engine's
    // output recorded in that baseline's parameters.json.
    let got = evaluate(json!({"o": {
        "base64ToString": "[base64ToString(base64('abc'))]",
        "base64ToJson": "[base64ToJson(base64('{\"hi\": \"there\"}')).hi]",
        "bool": "[bool(true)]",
        "concat": "[concat(createArray('abc'), createArray('def'))]",
        "contains": "[contains('foo/bar', '/')]",
        "dataUriToString": "[dataUriToString(dataUri('abc'))]",
        "dateTimeAdd": "[dateTimeAdd(dateTimeFromEpoch(1680224438), 'P1D')]",
        "dateTimeToEpoch": "[dateTimeToEpoch(dateTimeFromEpoch(1680224438))]",
        "empty": "[empty(createArray())]",
        "endsWith": "[endsWith('foo', 'o')]",
        "filter": "[filter(createArray(1, 2), lambda('i', less(lambdaVariables('i'), 2)))]",
        "first": "[first(createArray(124, 25))]",
        "flatten": "[flatten(createArray(createArray('abc'), createArray('def')))]",
        "format": "[format('->{0}<-', 123)]",
        "guid": "[guid('asdf')]",
        "indexOf": "[indexOf('abc', 'b')]",
        "int": "[int(123)]",
        "intersection": "[intersection(createArray(1, 2, 3), createArray(2, 3, 4))]",
        "items": "[items(createObject('foo', 'abc', 'bar', 123))]",
        "join": "[join(createArray('abc', 'def', 'ghi'), '/')]",
        "last": "[last(createArray(1, 2))]",
        "lastIndexOf": "[lastIndexOf('abcba', 'b')]",
        "length": "[length(createArray(0, 1, 2))]",
        "map": "[map(range(0, 3), lambda('i', format('Hi {0}!', lambdaVariables('i'))))]",
        "max": "[max(1, 2, 3)]",
        "min": "[min(1, 2, 3)]",
        "padLeft": "[padLeft(13, 5)]",
        "range": "[range(0, 3)]",
        "reduce": "[reduce(createArray('a', 'b', 'c'), '', lambda('a', 'b', format('{0}-{1}', lambdaVariables('a'), lambdaVariables('b'))))]",
        "replace": "[replace('abc', 'b', '/')]",
        "skip": "[skip(createArray(1, 2, 3), 1)]",
        "sort": "[sort(createArray('c', 'd', 'a'), lambda('a', 'b', less(lambdaVariables('a'), lambdaVariables('b'))))]",
        "split": "[split('a/b/c', '/')]",
        "startsWith": "[startsWith('abc', 'a')]",
        "string": "[string('asdf')]",
        "substring": "[substring('asdfasf', 3)]",
        "take": "[take(createArray(1, 2, 3), 2)]",
        "toLower": "[toLower('AiKInIniIN')]",
        "toObject": "[toObject(createArray('a', 'b', 'c'), lambda('x', lambdaVariables('x')), lambda('x', format('Hi {0}!', lambdaVariables('x'))))]",
        "toUpper": "[toUpper('AiKInIniIN')]",
        "trim": "[trim('  adf asdf  ')]",
        "union": "[union(createObject('abc', 'def'), createObject('def', 'ghi'))]",
        "uniqueString": "[uniqueString('asd', 'asdf', 'asdf')]",
        "uri": "[uri('https://github.com', 'Azure/bicep')]",
        "uriComponent": "[uriComponent('UB*8h 0+=_)9h9n')]",
        "uriComponentToString": "[uriComponentToString('%20%25%20')]"
      },
      "myArray": ["[if(true(), 'a', 'b')]", "[not(true())]", "[add(123, 456)]", "[sub(456, 123)]", "[mul(2, 3)]",
                  "[div(10, 2)]", "[less(1, 2)]", "[greater(1, 2)]", "[greaterOrEquals(1, 2)]", "[lessOrEquals(1, 2)]"]
    }))
    .unwrap();
    let expected = json!({
        "base64ToString": "abc", "base64ToJson": "there", "bool": true, "concat": ["abc", "def"], "contains": true,
        "dataUriToString": "abc", "dateTimeAdd": "2023-04-01T01:00:38Z", "dateTimeToEpoch": 1680224438, "empty": true,
        "endsWith": true, "filter": [1], "first": 124, "flatten": ["abc", "def"], "format": "->123<-",
        "guid": "228d27cc-6fdb-5934-b7ac-1efccebade04", "indexOf": 1, "int": 123, "intersection": [2, 3],
        "items": [{"key": "bar", "value": 123}, {"key": "foo", "value": "abc"}], "join": "abc/def/ghi", "last": 2,
        "lastIndexOf": 3, "length": 3, "map": ["Hi 0!", "Hi 1!", "Hi 2!"], "max": 3, "min": 1, "padLeft": "   13",
        "range": [0, 1, 2], "reduce": "-a-b-c", "replace": "a/c", "skip": [2, 3], "sort": ["a", "c", "d"],
        "split": ["a", "b", "c"], "startsWith": true, "string": "asdf", "substring": "fasf", "take": [1, 2],
        "toLower": "aikininiin", "toObject": {"a": "Hi a!", "b": "Hi b!", "c": "Hi c!"}, "toUpper": "AIKININIIN",
        "trim": "adf asdf", "union": {"abc": "def", "def": "ghi"}, "uniqueString": "iizpqit7ih3cc",
        "uri": "https://github.com/Azure/bicep", "uriComponent": "UB%2A8h%200%2B%3D_%299h9n", "uriComponentToString": " % "
    });
    let object = got["o"].as_object().unwrap();
    for (key, want) in expected.as_object().unwrap() {
        assert_eq!(&object[key], want, "{key}");
    }
    assert_eq!(got["myArray"], json!(["a", false, 579, 333, 6, 5, true, false, false, true]));
}

#[test]
fn scope_and_resource_id_functions() {
    let got = evaluate(json!({
        "rg": "[resourceGroup()]",
        "sub": "[subscription().subscriptionId]",
        "deploymentName": "[deployment().name]",
        "id1": "[resourceId('Microsoft.Sql/servers/databases', 'srv', 'db')]",
        "id2": "[resourceId('other-rg', 'Microsoft.Web/sites', 'app')]",
        "id3": "[resourceId('sub2', 'other-rg', 'Microsoft.Web/sites', 'app')]",
        "id4": "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'r1')]",
        "id5": "[subscriptionResourceId('sub2', 'Microsoft.Authorization/roleDefinitions', 'r1')]",
        "id6": "[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]",
        "id7": "[extensionResourceId(resourceId('Microsoft.ContainerRegistry/registries', 'acr'), 'Microsoft.Authorization/roleAssignments', 'x')]",
        "access": "[createObject('a', createArray(1, createObject('b', 'deep')))['a'][1].B]",
        "escaped": "[[not an expression]",
        "quote": "[concat('it''s', ' ', string(1), string(true()), string(createObject('k', 'v')))]",
        "fmt": "[format('{0:N0} {1,3}|', 1234567, 'x')]"
    }))
    .unwrap();
    assert_eq!(got["rg"]["id"], rg_id().as_str());
    assert_eq!(got["rg"]["location"], "westeurope");
    assert_eq!(got["sub"], SUB);
    assert_eq!(got["deploymentName"], "main");
    assert_eq!(got["id1"], format!("{}/providers/Microsoft.Sql/servers/srv/databases/db", rg_id()));
    assert_eq!(
        got["id2"],
        format!("/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.Web/sites/app")
    );
    assert_eq!(
        got["id3"],
        "/subscriptions/sub2/resourceGroups/other-rg/providers/Microsoft.Web/sites/app"
    );
    assert_eq!(
        got["id4"],
        format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/r1")
    );
    assert_eq!(
        got["id5"],
        "/subscriptions/sub2/providers/Microsoft.Authorization/roleDefinitions/r1"
    );
    assert_eq!(got["id6"], "/providers/Microsoft.Management/managementGroups/mg");
    assert_eq!(
        got["id7"],
        format!("{}/providers/Microsoft.ContainerRegistry/registries/acr/providers/Microsoft.Authorization/roleAssignments/x", rg_id())
    );
    assert_eq!(got["access"], "deep");
    assert_eq!(got["escaped"], "[not an expression]");
    assert_eq!(got["quote"], "it's 1True{\"k\":\"v\"}");
    assert_eq!(got["fmt"], "1,234,567   x|");

    let err = evaluate(json!({"bad": "[resourceId('Microsoft.Sql/servers/databases', 'srv')]"}))
        .unwrap_err();
    assert!(
        err.to_string().contains("2 segment(s) after its namespace but 1 name segment(s)"),
        "{err}"
    );
}

#[test]
fn subscription_scope_ids() {
    let t = template(json!({
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "variables": {"rd": "[resourceId('Microsoft.Authorization/roleDefinitions', 'x')]"},
        "resources": [
            {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2024-11-01", "name": "newrg", "location": "westeurope"},
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "inrg", "resourceGroup": "newrg",
             "dependsOn": ["[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'newrg')]"],
             "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
                            "template": {"contentVersion": "1.0.0.0", "resources": []}}}
        ]
    }));
    let mut c = ctx();
    c.resource_group = None;
    c.location = Some("westeurope".into());
    let plan = Plan::new(t, &ParameterValues::default(), c).unwrap();
    assert_eq!(
        plan.variables()["rd"],
        format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/x")
    );
    assert_eq!(plan.resources()[0].id, format!("/subscriptions/{SUB}/resourceGroups/newrg"));
    assert_eq!(plan.resources()[1].id, format!("/subscriptions/{SUB}/resourceGroups/newrg/providers/Microsoft.Resources/deployments/inrg"));
    assert_eq!(plan.waves(), &[vec![0], vec![1]]);
    assert!(plan.evaluate_resource(0, &ResourceSnapshot::new()).is_ok());
}

fn identity(name: &str) -> Value {
    json!({"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": name, "location": "westeurope"})
}

#[test]
fn independent_resources_share_a_wave() {
    let mut c = identity("c");
    c["dependsOn"] =
        json!(["a", "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'b')]"]);
    let mut d = identity("d");
    d["properties"] = json!({"x": "[reference('c').principalId]"});
    let t = json!({"contentVersion": "1.0.0.0", "resources": [identity("a"), identity("b"), c, d, identity("e")]});
    let plan = plan(t, json!({})).unwrap();
    assert_eq!(plan.waves(), &[vec![0, 1, 4], vec![2], vec![3]]);
    assert_eq!(plan.resources()[3].depends_on, vec![2]);
}

#[test]
fn copy_loops_conditions_and_serial_batches() {
    let t = json!({
      "contentVersion": "1.0.0.0",
      "parameters": {"names": {"type": "array", "defaultValue": ["x", "y", "z"]}, "withExtra": {"type": "bool", "defaultValue": false}},
      "variables": {"copy": [{"name": "labels", "count": "[length(parameters('names'))]", "input": "[concat('label-', copyIndex('labels'))]"}]},
      "resources": [
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
         "name": "[parameters('names')[copyIndex()]]", "location": "westeurope",
         "copy": {"name": "ids", "count": "[length(parameters('names'))]"},
         "properties": {"copy": [{"name": "items", "count": 2, "input": {"n": "[copyIndex('items', 1)]", "of": "[copyIndex()]"}}]}},
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
         "name": "[concat('serial', copyIndex())]", "location": "westeurope",
         "copy": {"name": "chain", "count": 3, "mode": "serial", "batchSize": 1}},
        {"condition": "[parameters('withExtra')]", "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
         "apiVersion": "2023-01-31", "name": "extra", "location": "westeurope"},
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
         "name": "after", "location": "westeurope", "dependsOn": ["ids", "extra"]}
      ],
      "outputs": {"names": {"type": "array", "copy": {"count": 2, "input": "[variables('labels')[copyIndex()]]"}}}
    });
    let plan = plan(t, json!({})).unwrap();
    let names: Vec<&str> = plan.resources().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["x", "y", "z", "serial0", "serial1", "serial2", "extra", "after"]);
    assert!(!plan.resources()[6].deploy);
    // "after" waits for the whole "ids" loop; the skipped "extra" is not waited for.
    assert_eq!(plan.waves(), &[vec![0, 1, 2, 3], vec![4, 7], vec![5]]);
    assert_eq!(plan.variables()["labels"], json!(["label-0", "label-1", "label-2"]));
    let y = plan.evaluate_resource(1, &ResourceSnapshot::new()).unwrap();
    assert_eq!(y["properties"], json!({"items": [{"n": 1, "of": 1}, {"n": 2, "of": 1}]}));
    let outputs = plan.evaluate_outputs(&ResourceSnapshot::new()).unwrap();
    assert_eq!(outputs["names"]["value"], json!(["label-0", "label-1"]));
}

#[test]
fn symbolic_name_templates() {
    let t = json!({
      "languageVersion": "2.0", "contentVersion": "1.0.0.0",
      "resources": {
        "acr": {"existing": true, "type": "Microsoft.ContainerRegistry/registries", "apiVersion": "2023-07-01", "name": "myacr"},
        "id": {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "id1", "location": "westeurope"},
        "ra": {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01",
               "scope": "[resourceId('Microsoft.ContainerRegistry/registries', 'myacr')]",
               "name": "[guid('x')]",
               "properties": {"principalId": "[reference('id').principalId]", "login": "[reference('acr').loginServer]"},
               "dependsOn": ["id", "acr"]}
      },
      "outputs": {"clientId": {"type": "string", "value": "[reference('id').clientId]"}}
    });
    let plan = plan(t, json!({})).unwrap();
    assert_eq!(plan.resources()[0].symbolic_name.as_deref(), Some("acr"));
    assert!(!plan.resources()[0].deploy, "existing resources are not deployed");
    assert_eq!(plan.waves(), &[vec![1], vec![2]]);
    let mut deployed = ResourceSnapshot::new();
    deployed
        .insert(&plan.resources()[0].id, json!({"properties": {"loginServer": "myacr.example"}}));
    deployed.insert(
        &plan.resources()[1].id,
        json!({"properties": {"principalId": "p", "clientId": "c"}}),
    );
    let ra = plan.evaluate_resource(2, &deployed).unwrap();
    assert_eq!(ra["properties"], json!({"principalId": "p", "login": "myacr.example"}));
    assert_eq!(plan.evaluate_outputs(&deployed).unwrap()["clientId"]["value"], "c");
}

#[test]
fn child_resources_take_their_parents_name_and_type() {
    let t = json!({
      "contentVersion": "1.0.0.0",
      "resources": [{
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "id1", "location": "westeurope",
        "resources": [{"type": "federatedIdentityCredentials", "apiVersion": "2023-01-31", "name": "gh",
                       "properties": {"issuer": "https://issuer", "subject": "s", "audiences": ["api://AzureADTokenExchange"]}}]
      }]
    });
    let plan = plan(t, json!({})).unwrap();
    let child = &plan.resources()[1];
    assert_eq!(
        child.resource_type,
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    );
    assert_eq!(child.name, "id1/gh");
    assert_eq!(child.id, format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/gh", rg_id()));
    assert_eq!(plan.waves(), &[vec![0], vec![1]]);
    assert_eq!(plan.evaluate_resource(1, &ResourceSnapshot::new()).unwrap()["name"], "id1/gh");
}

#[test]
fn parameter_defaults_clock_guids_and_user_functions() {
    let t = json!({
      "contentVersion": "1.0.0.0",
      "functions": [{"namespace": "berth", "members": {"label": {
          "parameters": [{"name": "n", "type": "string"}], "output": {"type": "string", "value": "[concat('lbl-', parameters('n'))]"}}}}],
      "parameters": {
        "stamp": {"type": "string", "defaultValue": "[utcNow()]"},
        "day": {"type": "string", "defaultValue": "[utcNow('yyyy-MM-dd')]"},
        "fresh": {"type": "string", "defaultValue": "[newGuid()]"},
        "fresh2": {"type": "string", "defaultValue": "[newGuid()]"},
        "derived": {"type": "string", "defaultValue": "[concat(parameters('day'), '-x')]"}
      },
      "variables": {"l": "[berth.label('a')]"},
      "resources": []
    });
    let plan = plan(t, json!({})).unwrap();
    let p = plan.parameters();
    assert_eq!(p["stamp"], "20230331T010038Z");
    assert_eq!(p["derived"], "2023-03-31-x");
    assert_ne!(p["fresh"], p["fresh2"]);
    assert_eq!(p["fresh"].as_str().unwrap().len(), 36);
    assert_eq!(plan.variables()["l"], "lbl-a");

    let err = evaluate(json!({"now": "[utcNow()]"})).unwrap_err();
    assert!(
        err.to_string().contains("'utcNow' can only be used in the default value of a parameter"),
        "{err}"
    );
}

#[test]
fn secure_parameters_stay_out_of_records_and_messages() {
    let t = json!({
      "contentVersion": "1.0.0.0",
      "parameters": {"secret": {"type": "securestring"}, "plain": {"type": "string"}},
      "variables": {"d": "[deployment().properties.parameters]"},
      "resources": [],
      "outputs": {"s": {"type": "securestring", "value": "[parameters('secret')]"}}
    });
    let plan = plan(t.clone(), json!({"secret": "hunter2", "plain": "p"})).unwrap();
    assert_eq!(plan.variables()["d"], json!({"plain": {"value": "p"}}));
    assert_eq!(plan.parameters_for_record()["secret"], json!({"type": "SecureString"}));
    assert_eq!(plan.secure_parameters(), ["secret".to_string()]);
    assert_eq!(
        plan.evaluate_outputs(&ResourceSnapshot::new()).unwrap()["s"],
        json!({"type": "SecureString"})
    );
    assert!(!format!("{plan:?}").contains("hunter2"));
    let err = self::plan(t, json!({"secret": 42, "plain": "p"})).unwrap_err();
    assert!(!err.to_string().contains("42"), "{err}");
    let leaky = json!({"contentVersion": "1.0.0.0", "parameters": {"secret": {"type": "securestring"}},
                       "variables": {"n": "[int(parameters('secret'))]"}, "resources": []});
    let err = self::plan(leaky, json!({"secret": "hunter2"})).unwrap_err();
    assert!(err.to_string().contains("the value '***' can't be converted"), "{err}");
    let allowed = json!({"contentVersion": "1.0.0.0", "parameters": {"secret": {"type": "securestring", "allowedValues": ["a"]}}, "resources": []});
    let err = self::plan(allowed, json!({"secret": "hunter2"})).unwrap_err();
    assert!(
        err.to_string().contains("is not one of its allowed values")
            && !err.to_string().contains("hunter2"),
        "{err}"
    );
}

#[test]
fn bad_parameters_get_precise_messages() {
    let t = json!({
      "contentVersion": "1.0.0.0",
      "parameters": {
        "count": {"type": "int", "minValue": 1, "maxValue": 5},
        "sku": {"type": "string", "allowedValues": ["Basic", "Standard"]},
        "name": {"type": "string", "minLength": 5, "maxLength": 8}
      },
      "resources": []
    });
    let check = |values: Value, expected: &str| {
        let err = plan(t.clone(), values).unwrap_err();
        assert_eq!(err.code(), "InvalidTemplateParameter");
        assert!(err.to_string().contains(expected), "{err}\nexpected: {expected}");
    };
    check(json!({"count": "3", "sku": "Basic", "name": "abcde"}), "parameters.count: the template parameter 'count' has type 'Int' but the value '3' is of type 'String'");
    check(
        json!({"count": 9, "sku": "Basic", "name": "abcde"}),
        "the value 9 of the template parameter 'count' is above the maximum value 5",
    );
    check(json!({"count": 0, "sku": "Basic", "name": "abcde"}), "below the minimum value 1");
    check(
        json!({"count": 1, "sku": "Premium", "name": "abcde"}),
        "'Premium' is not part of the allowed values 'Basic, Standard'",
    );
    check(
        json!({"count": 1, "sku": "Basic", "name": "abc"}),
        "has length 3, below the minimum length 5",
    );
    check(json!({"count": 1, "sku": "Basic", "name": "abcdefghij"}), "above the maximum length 8");
    check(
        json!({"count": 1, "sku": "Basic", "name": "abcde", "extra": 1}),
        "the template parameters 'extra' are not valid",
    );
    // Every problem at once.
    let err = plan(t.clone(), json!({})).unwrap_err();
    assert_eq!(err.len(), 3);
}

#[test]
fn bad_templates_get_precise_diagnostics() {
    let text = "{\n  \"contentVersion\": \"1.0.0.0\",\n  \"variables\": {\n    \"a\": \"[concat('x', nosuch(1))]\",\n    \"b\": \"[concat('x']\",\n    \"c\": \"[if(true())]\"\n  },\n  \"resources\": []\n}";
    let err = Template::parse(text).unwrap_err();
    let lines: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "variables.a (line 4, column 10, characters 13..19): the template function 'nosuch' is not valid (unknown function)".to_string(),
            "variables.b (line 5, column 10, characters 11..11): invalid expression: expected ',' or ')' in the arguments of 'concat', found the end of the expression".to_string(),
            "variables.c (line 6, column 10, characters 1..3): the template function 'if' expects 3 argument(s), got 1".to_string(),
        ]
    );

    let err = Template::parse("{\"contentVersion\": \"1.0.0.0\", \"resources\": [], \"extra\": 1}")
        .unwrap_err();
    assert!(err.to_string().contains("'extra' is not a template section"), "{err}");
    let err = Template::parse("{\"resources\": [{\"type\": \"Microsoft.X/y\", \"name\": \"n\"}]}")
        .unwrap_err();
    assert!(err.to_string().contains("'contentVersion'"), "{err}");
    assert!(err.to_string().contains("needs an 'apiVersion'"), "{err}");
    let err = Template::parse("[1, 2").unwrap_err();
    assert_eq!(err.code(), "InvalidRequestContent");

    // A mistake inside an inner nested template is reported with the parent's path.
    let mut main = blog_main();
    main["resources"][0]["properties"]["template"]["outputs"]["principalId"]["value"] =
        json!("[referencee('x')]");
    let err = Template::from_value(main).unwrap_err();
    assert!(
        err.to_string().starts_with("resources[0].properties.template.outputs.principalId.value (characters 1..11): the template function 'referencee'"),
        "{err}"
    );
}

#[test]
fn cycles_are_named() {
    let mut a = identity("a");
    a["dependsOn"] = json!(["c"]);
    let mut b = identity("b");
    b["dependsOn"] = json!(["a"]);
    let mut c = identity("c");
    c["properties"] = json!({"p": "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'b')).principalId]"});
    let t = json!({"contentVersion": "1.0.0.0", "resources": [identity("free"), a, b, c]});
    let err = plan(t, json!({})).unwrap_err();
    assert_eq!(err.code(), "InvalidTemplate");
    let text = err.to_string();
    assert!(text.contains("circular dependency detected: "), "{text}");
    assert!(text.contains("'a' -> ") && text.contains("'b'") && text.contains("'c'"), "{text}");
    assert!(!text.contains("'free'"), "{text}");

    let mut selfish = identity("s");
    selfish["dependsOn"] = json!(["nothere"]);
    let err =
        plan(json!({"contentVersion": "1.0.0.0", "resources": [selfish]}), json!({})).unwrap_err();
    assert_eq!(err.to_string(), "resources[0].dependsOn[0]: the resource 'nothere' in 'dependsOn' is not defined in the template");
}

#[test]
fn evaluation_errors_name_the_place() {
    let cases = [
        (json!({"v": "[variables('v')]"}), "refers to itself"),
        (json!({"v": "[reference('x')]"}), "'reference' is not expected at this location"),
        (json!({"v": "[parameters('nope')]"}), "the template parameter 'nope' is not found"),
        (json!({"v": "[createArray(1)[3]]"}), "the index 3 is out of range"),
        (
            json!({"v": "[createObject('a', 1).b]"}),
            "property 'b' doesn't exist, available properties are 'a'",
        ),
        (json!({"v": "[div(1, 0)]"}), "'div' by zero"),
        (json!({"v": "[substring('abc', 2, 5)]"}), "goes beyond the string of length 3"),
        (json!({"v": "[add('a', 1)]"}), "argument 1 of 'add' must be an Integer, got 'String'"),
        (json!({"v": "[copyIndex()]"}), "not inside a copy loop"),
        (json!({"v": "[json('{bad')]"}), "not valid JSON"),
        (json!({"v": "[if('yes', 1, 2)]"}), "the condition of 'if' must be a Boolean"),
        (json!({"copy": [{"name": "big", "count": 801, "input": 1}]}), "from 0 to 800"),
        (json!({"v": "[padLeft('a', 100000000)]"}), "pads to at most 16384"),
        (json!({"v": "[format('{0,100000000}', 1)]"}), "aligns to more than 16384"),
        (json!({"v": "[range(9223372036854775807, 2)]"}), "beyond a 64-bit integer"),
        (
            json!({"v": "[dateTimeAdd('2020-01-01T00:00:00Z', 'P99999999999Y')]"}),
            "not a valid ISO 8601 duration",
        ),
        (json!({"v": "[substring('abc', 1, 9223372036854775807)]"}), "goes beyond the string"),
        (json!({"v": "[mod(-9223372036854775807, 0)]"}), "'mod' by zero"),
    ];
    for (variables, expected) in cases {
        let err = evaluate(variables.clone()).unwrap_err();
        assert!(err.to_string().contains(expected), "{variables}: {err}");
        assert!(err.to_string().starts_with("variables."), "{err}");
    }
}

#[test]
fn what_if_of_a_changed_parameter_shows_exactly_the_change() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/az-wire-main.json"
    ))
    .unwrap();
    let t = Template::parse(&text).unwrap();
    let mut deployed = ResourceSnapshot::new();
    let identity_id =
        format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2", rg_id());
    deployed.insert(&identity_id, json!({"properties": {"principalId": "p-1"}}));
    let before_plan = Plan::new(t.clone(), &params(json!({"a": "b"})), ctx()).unwrap();
    let before = before_plan.evaluate_resource(1, &deployed).unwrap();
    // Same parameters: no change at all.
    let again = Plan::new(t.clone(), &params(json!({"a": "b"})), ctx())
        .unwrap()
        .evaluate_resource(1, &deployed)
        .unwrap();
    assert_eq!(
        what_if(Some(&before), Some(&again), DiffOptions::default()).change_type,
        ChangeType::NoChange
    );
    // A changed principal: exactly that property changes.
    deployed.insert(&identity_id, json!({"properties": {"principalId": "p-2"}}));
    let after = before_plan.evaluate_resource(1, &deployed).unwrap();
    let change = what_if(Some(&before), Some(&after), DiffOptions::default());
    assert_eq!(change.change_type, ChangeType::Modify);
    assert_eq!(change.delta.len(), 1);
    assert_eq!(change.delta[0].path, "properties.principalId");
    assert_eq!(change.delta[0].before, Some(json!("p-1")));
    assert_eq!(change.delta[0].after, Some(json!("p-2")));
}

#[test]
fn long_variable_chains_are_refused_not_overflowed() {
    let mut variables = serde_json::Map::new();
    for i in 0..200 {
        variables.insert(format!("v{i}"), json!(format!("[variables('v{}')]", i + 1)));
    }
    variables.insert("v200".into(), json!("end"));
    let err = evaluate(Value::Object(variables.clone())).unwrap_err();
    assert!(err.to_string().contains("nested more than 64 variables deep"), "{err}");
    // A chain of 50 is fine.
    let short: serde_json::Map<String, Value> =
        variables.into_iter().filter(|(k, _)| k[1..].parse::<usize>().unwrap() >= 150).collect();
    assert_eq!(evaluate(Value::Object(short)).unwrap()["v150"], "end");
}

#[test]
fn percent_decoding_tolerates_broken_escapes() {
    let got = evaluate(
        json!({"a": "[uriComponentToString('%é%4')]", "b": "[uriComponentToString('a%2Fb')]"}),
    )
    .unwrap();
    assert_eq!(got["a"], "%é%4");
    assert_eq!(got["b"], "a/b");
}

#[test]
fn the_deepest_accepted_expression_evaluates_without_overflowing() {
    // 127 nested calls is just under the parser's limit; evaluation must fit a default 2 MiB thread stack.
    let depth = 127;
    let nested = format!("[{}'x'{}]", "concat(".repeat(depth), ")".repeat(depth));
    assert_eq!(evaluate(json!({"v": nested})).unwrap()["v"], "x");
    let nested_if = format!("[{}1{}]", "if(true(), ".repeat(depth), ", 0)".repeat(depth));
    assert_eq!(evaluate(json!({"v": nested_if})).unwrap()["v"], 1);
    let too_deep = format!("[{}'x'{}]", "concat(".repeat(200), ")".repeat(200));
    assert!(evaluate(json!({"v": too_deep})).unwrap_err().to_string().contains("deeper than 128"));
}

#[test]
fn extension_resources_wait_for_their_scope_and_modules_for_their_group() {
    let t = json!({
      "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
      "contentVersion": "1.0.0.0",
      "resources": [
        {"type": "Microsoft.Authorization/locks", "apiVersion": "2016-09-01", "name": "lock",
         "scope": "[format('/subscriptions/{0}/resourceGroups/g1', subscription().subscriptionId)]", "properties": {"level": "CanNotDelete"}},
        {"type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "m", "resourceGroup": "g1",
         "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
                        "template": {"contentVersion": "1.0.0.0", "resources": []}}},
        {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2024-11-01", "name": "g1", "location": "westeurope"}
      ]
    });
    let mut c = ctx();
    c.resource_group = None;
    let plan = Plan::new(template(t), &ParameterValues::default(), c).unwrap();
    assert_eq!(
        plan.resources()[0].id,
        format!(
            "/subscriptions/{SUB}/resourceGroups/g1/providers/Microsoft.Authorization/locks/lock"
        )
    );
    assert_eq!(plan.waves(), &[vec![2], vec![0, 1]]);
}

#[test]
fn safe_access_merge_and_environment() {
    let got = evaluate(json!({
        "a": "[tryGet(createObject('x', createArray(1, 2)), 'x', 1)]",
        "b": "[tryGet(createObject('x', 1), 'y', 'z')]",
        "c": "[shallowMerge(createArray(createObject('a', 1, 'b', 1), createObject('b', 2)))]"
    }))
    .unwrap();
    assert_eq!(got["a"], 2);
    assert_eq!(got["b"], Value::Null);
    assert_eq!(got["c"], json!({"a": 1, "b": 2}));
    let err = evaluate(json!({"e": "[environment().name]"})).unwrap_err();
    assert!(err.to_string().contains("no cloud environment"), "{err}");
    let t = template(
        json!({"contentVersion": "1.0.0.0", "variables": {"s": "[environment().suffixes.acrLoginServer]"}, "resources": []}),
    );
    let mut c = ctx();
    c.environment = Some(json!({"name": "berth", "suffixes": {"acrLoginServer": ".localhost"}}));
    assert_eq!(
        Plan::new(t, &ParameterValues::default(), c).unwrap().variables()["s"],
        ".localhost"
    );
}

#[test]
fn a_template_deploys_only_at_its_schemas_level() {
    let t = template(json!({
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0", "resources": []
    }));
    let err = Plan::new(t, &ParameterValues::default(), ctx()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "$schema: the template's $schema is for subscription deployments, but this deployment targets a resource group"
    );
}

#[test]
fn api_versions_may_be_expressions() {
    let mut r = identity("a");
    r["apiVersion"] = json!("[variables('api')]");
    let t =
        json!({"contentVersion": "1.0.0.0", "variables": {"api": "2023-01-31"}, "resources": [r]});
    let plan = plan(t, json!({})).unwrap();
    assert_eq!(plan.resources()[0].api_version.as_deref(), Some("2023-01-31"));
    assert_eq!(
        plan.evaluate_resource(0, &ResourceSnapshot::new()).unwrap()["apiVersion"],
        "2023-01-31"
    );
}

#[test]
fn plan_what_if_shows_creates_unknowns_and_exactly_the_changed_property() {
    let t = json!({
      "contentVersion": "1.0.0.0",
      "parameters": {"env": {"type": "string"}},
      "resources": [
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "id1",
         "location": "westeurope", "tags": {"env": "[parameters('env')]"}},
        {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01", "name": "[guid('ra')]",
         "dependsOn": ["id1"],
         "properties": {"principalId": "[reference('id1').principalId]", "roleDefinitionId": "/r/acrpull"}}
      ]
    });
    let groups = |name: &str| (name == "rg1").then(|| group("rg1"));
    let identity_id =
        format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1", rg_id());
    let assignment_id = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{}",
        rg_id(),
        arm_guid(&["ra"])
    );

    // Nothing exists: both are created, and the principal is shown as the expression ARM will evaluate.
    let empty = ResourceSnapshot::new();
    let changes = plan(t.clone(), json!({"env": "dev"})).unwrap().what_if(&empty, &groups).unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.change.change_type == ChangeType::Create));
    assert_eq!(
        changes[1].after.as_ref().unwrap()["properties"]["principalId"],
        "[reference('id1').principalId]"
    );
    assert_eq!(changes[1].to_json()["resourceId"], assignment_id.as_str());

    // As deployed (GET bodies carry ids and read-only properties the template does not state).
    let mut current = ResourceSnapshot::new();
    current.insert(&identity_id, json!({"id": identity_id, "name": "id1", "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": "westeurope", "tags": {"env": "dev"}, "properties": {"principalId": "p1", "clientId": "c1"}}));
    current.insert(
        &assignment_id,
        json!({"id": assignment_id, "name": arm_guid(&["ra"]),
        "properties": {"principalId": "p1", "roleDefinitionId": "/r/acrpull", "scope": rg_id()}}),
    );
    let changes =
        plan(t.clone(), json!({"env": "dev"})).unwrap().what_if(&current, &groups).unwrap();
    assert!(changes.iter().all(|c| c.change.change_type == ChangeType::NoChange), "{changes:?}");

    let changes = plan(t, json!({"env": "prod"})).unwrap().what_if(&current, &groups).unwrap();
    assert_eq!(changes[0].change.change_type, ChangeType::Modify);
    assert_eq!(changes[0].change.delta.len(), 1);
    assert_eq!(changes[0].change.delta[0].path, "tags.env");
    assert_eq!(changes[0].change.delta[0].before, Some(json!("dev")));
    assert_eq!(changes[0].change.delta[0].after, Some(json!("prod")));
    assert_eq!(changes[1].change.change_type, ChangeType::NoChange);
}

#[test]
fn what_if_goes_into_nested_deployments() {
    let parent = plan(blog_main(), json!({"acrName": "myacr", "identityName": "id1"})).unwrap();
    let groups = |name: &str| (name == "rg1").then(|| group("rg1"));
    let changes = parent.what_if(&ResourceSnapshot::new(), &groups).unwrap();
    let ids: Vec<&str> = changes.iter().map(|c| c.resource_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids[0].ends_with("/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"));
    assert!(ids[1].contains("/providers/Microsoft.ContainerRegistry/registries/myacr/providers/Microsoft.Authorization/roleAssignments/"));
    // The module output is not known before the identity exists: the child sees the expression as its parameter.
    assert_eq!(
        changes[1].after.as_ref().unwrap()["properties"]["principalId"],
        "[reference(resourceId('Microsoft.Resources/deployments', 'managedIdentity'), '2025-04-01').outputs.principalId.value]"
    );
}

#[test]
fn depending_on_an_empty_copy_loop_is_depending_on_nothing() {
    let mut looped = identity("[concat('n', copyIndex())]");
    looped["copy"] = json!({"name": "none", "count": 0});
    let mut after = identity("after");
    after["dependsOn"] = json!(["none"]);
    let plan = plan(json!({"contentVersion": "1.0.0.0", "resources": [looped, after]}), json!({}))
        .unwrap();
    assert_eq!(plan.resources().len(), 1);
    assert_eq!(plan.waves(), &[vec![0]]);
}
