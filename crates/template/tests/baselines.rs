//! Bicep's own compiled samples (tests/data/baselines, from the Bicep repository) deployed end to end through the
//! engine: every wave evaluated, nested modules planned as deployments of their own, outputs read back.
//!
//! The "cloud" here is the caller's side of the contract: it stores each evaluated body under its planned ID and
//! adds the read-only properties a resource provider returns (an identity's `principalId`, a registry's
//! `loginServer`, a public IP's `fqdn`), which is what `reference()` then reads.

use std::collections::HashMap;

use berth_template::{
    arm_guid, DeploymentContext, Diagnostics, ParameterValues, Plan, ResourceGroupInfo,
    ResourceSnapshot, Template,
};
use serde_json::{json, Map, Value};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

#[derive(Default)]
struct Cloud {
    resources: ResourceSnapshot,
    groups: HashMap<String, ResourceGroupInfo>,
    /// Every PUT, in order: (resource ID, body).
    puts: Vec<(String, Value)>,
}

impl Cloud {
    fn with_group(name: &str) -> Cloud {
        let mut cloud = Cloud::default();
        cloud.groups.insert(
            name.into(),
            ResourceGroupInfo {
                name: name.into(),
                location: "westeurope".into(),
                tags: Map::new(),
                managed_by: None,
            },
        );
        cloud
    }

    /// Stores a resource as its provider would answer a GET after the PUT.
    fn put(&mut self, id: &str, resource_type: &str, mut body: Value) {
        self.puts.push((id.to_string(), body.clone()));
        let properties =
            body.as_object_mut().unwrap().entry("properties").or_insert_with(|| json!({}));
        match resource_type.to_ascii_lowercase().as_str() {
            "microsoft.managedidentity/userassignedidentities" => {
                properties["principalId"] = json!(arm_guid(&["principal", id]));
                properties["clientId"] = json!(arm_guid(&["client", id]));
            }
            "microsoft.containerregistry/registries" => {
                let name = body["name"].as_str().unwrap().to_string();
                body["properties"]["loginServer"] = json!(format!("{name}.localhost:8443"));
            }
            "microsoft.network/publicipaddresses" => {
                let label = body["properties"]["dnsSettings"]["domainNameLabel"]
                    .as_str()
                    .unwrap()
                    .to_string();
                body["properties"]["dnsSettings"]["fqdn"] =
                    json!(format!("{label}.westeurope.cloudapp.example"));
            }
            "microsoft.resources/resourcegroups" => {
                let name = body["name"].as_str().unwrap().to_string();
                let location = body["location"].as_str().unwrap().to_string();
                self.groups.insert(
                    name.clone(),
                    ResourceGroupInfo { name, location, tags: Map::new(), managed_by: None },
                );
            }
            _ => {}
        }
        body["id"] = json!(id);
        self.resources.insert(id, body);
    }

    /// Deploys a template: waves in order, nested deployments recursively; returns the outputs.
    fn deploy(
        &mut self,
        template: Template,
        parameters: &ParameterValues,
        ctx: DeploymentContext,
    ) -> Result<Map<String, Value>, Diagnostics> {
        let plan = Plan::new(template, parameters, ctx)?;
        for wave in plan.waves() {
            for &i in wave {
                let resource = &plan.resources()[i];
                let body = plan.evaluate_resource(i, &self.resources)?;
                if resource.is_nested_deployment() {
                    let nested = plan.nested_deployment(i, &body)?;
                    let group = nested
                        .target_resource_group(plan.context())
                        .map(|name| self.groups[name].clone());
                    let ctx = nested.context(plan.context(), group);
                    let outputs = self.deploy(nested.template.clone(), &nested.parameters, ctx)?;
                    let record = json!({"name": resource.name, "properties": {"provisioningState": "Succeeded", "outputs": outputs}});
                    self.resources.insert(&resource.id, record);
                } else {
                    self.put(&resource.id.clone(), &resource.resource_type.clone(), body);
                }
            }
        }
        plan.evaluate_outputs(&self.resources)
    }
}

fn baseline(name: &str) -> Template {
    let path = format!("{}/tests/data/baselines/{name}.json", env!("CARGO_MANIFEST_DIR"));
    Template::parse(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|d| panic!("{name}: {d}"))
}

fn group_ctx() -> DeploymentContext {
    let group = ResourceGroupInfo {
        name: "rg1".into(),
        location: "westeurope".into(),
        tags: Map::new(),
        managed_by: None,
    };
    DeploymentContext::resource_group(TENANT, SUB, group, "main", time::OffsetDateTime::UNIX_EPOCH)
}

fn subscription_ctx() -> DeploymentContext {
    let mut ctx = group_ctx();
    ctx.resource_group = None;
    ctx.location = Some("westeurope".into());
    ctx
}

fn params(values: Value) -> ParameterValues {
    ParameterValues::from_values(values.as_object().unwrap().clone())
}

fn values(outputs: &Map<String, Value>) -> Value {
    Value::Object(outputs.iter().map(|(k, v)| (k.clone(), v["value"].clone())).collect())
}

#[test]
fn hello_world() {
    let mut cloud = Cloud::with_group("rg1");
    let outputs = cloud
        .deploy(baseline("01-hello-world"), &params(json!({"yourName": "berth"})), group_ctx())
        .unwrap();
    assert_eq!(values(&outputs), json!({"helloWorld": "Hello World! - Hi berth"}));
    assert_eq!(outputs["helloWorld"]["type"], "String");
}

#[test]
fn string_functions() {
    let mut cloud = Cloud::with_group("rg1");
    let outputs = cloud
        .deploy(baseline("10-string-functions"), &ParameterValues::default(), group_ctx())
        .unwrap();
    assert_eq!(
        values(&outputs),
        json!({
            "arrayFromString": [{"element": "a"}, {"element": "b"}, {"element": "c"}, {"element": "d"}],
            "found": "Found \"this\"", "index": 4, "indexNotFound": -1, "substr": "ThisInString"
        })
    );
}

#[test]
fn array_loops() {
    let mut cloud = Cloud::with_group("rg1");
    let outputs =
        cloud.deploy(baseline("20-array-loop"), &ParameterValues::default(), group_ctx()).unwrap();
    let expected = json!([{"element": "Michael"}, {"element": "Dwight"}, {"element": "Jim"}, {"element": "Pam"}]);
    for name in ["out1", "out2", "out3"] {
        assert_eq!(outputs[name]["value"], expected, "{name}");
    }
}

#[test]
fn module_with_outputs_and_new_guid_default() {
    let mut cloud = Cloud::with_group("rg1");
    let outputs =
        cloud.deploy(baseline("basic-publicip"), &ParameterValues::default(), group_ctx()).unwrap();
    let fqdn = outputs["ipFqdn"]["value"].as_str().unwrap();
    // publicIpDnsLabel defaults to '<name>-<newGuid()>', evaluated inside the module.
    let label = fqdn.strip_suffix(".westeurope.cloudapp.example").unwrap();
    let guid = label.strip_prefix("mypublicip-").unwrap();
    assert_eq!(guid.len(), 36, "{label}");
    let (id, body) = &cloud.puts[0];
    assert_eq!(id, &format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/mypublicip"));
    assert_eq!(body["properties"]["publicIPAllocationMethod"], "Dynamic");
    assert_eq!(body["location"], "westeurope");
}

#[test]
fn container_registry_with_constrained_parameters() {
    let mut cloud = Cloud::with_group("rg1");
    let outputs = cloud
        .deploy(baseline("container-registry"), &params(json!({"acrName": "myacr01"})), group_ctx())
        .unwrap();
    assert_eq!(outputs["acrLoginServer"]["value"], "myacr01.localhost:8443");
    let (_, body) = &cloud.puts[0];
    assert_eq!(body["sku"]["name"], "Basic");
    assert_eq!(body["tags"]["container.registry"], "myacr01");
    // The template's own constraints: minLength 5, allowed SKUs.
    let err =
        Plan::new(baseline("container-registry"), &params(json!({"acrName": "acr"})), group_ctx())
            .unwrap_err();
    assert!(err.to_string().contains("below the minimum length 5"), "{err}");
    let err = Plan::new(
        baseline("container-registry"),
        &params(json!({"acrName": "myacr01", "acrSku": "Gold"})),
        group_ctx(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("'Gold' is not part of the allowed values 'Basic, Standard, Premium'"),
        "{err}"
    );
}

#[test]
fn managed_identity_and_role_assignment() {
    let mut cloud = Cloud::with_group("rg1");
    cloud
        .deploy(
            baseline("create-managedidentity-rbac"),
            &params(json!({"managedIdentityName": "mi1", "location": "westeurope"})),
            group_ctx(),
        )
        .unwrap();
    let identity_id = format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi1");
    assert_eq!(cloud.puts[0].0, identity_id);
    let (id, assignment) = &cloud.puts[1];
    let name = arm_guid(&[
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        &format!("/subscriptions/{SUB}/resourceGroups/rg1"),
    ]);
    assert_eq!(id, &format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/{name}"));
    assert_eq!(
        assignment["properties"]["principalId"],
        json!(arm_guid(&["principal", &identity_id]))
    );
    assert_eq!(
        assignment["properties"]["roleDefinitionId"],
        format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c")
    );
}

#[test]
fn subscription_deployment_creates_a_group_then_deploys_into_it() {
    let mut cloud = Cloud::default();
    let principal = "11111111-1111-1111-1111-111111111111";
    cloud
        .deploy(
            baseline("create-rg-lock-role-assignment"),
            &params(
                json!({"rgName": "newrg", "rgLocation": "northeurope", "principalId": principal}),
            ),
            subscription_ctx(),
        )
        .unwrap();
    let ids: Vec<&str> = cloud.puts.iter().map(|(id, _)| id.as_str()).collect();
    let group = format!("/subscriptions/{SUB}/resourceGroups/newrg");
    // The module names it guid(roleAssignmentName), whose default is guid(principalId, roleDefinitionId, rgName).
    let assignment_name =
        arm_guid(&[&arm_guid(&[principal, "b24988ac-6180-42a0-ab88-20f7382dd24c", "newrg"])]);
    assert_eq!(
        ids,
        [
            group.clone(),
            format!("{group}/providers/Microsoft.Authorization/locks/DontDelete"),
            format!("{group}/providers/Microsoft.Authorization/roleAssignments/{assignment_name}"),
        ]
    );
    assert_eq!(cloud.groups["newrg"].location, "northeurope");
}

#[test]
fn custom_role_definition_and_assignment_at_subscription_scope() {
    let mut cloud = Cloud::default();
    cloud
        .deploy(
            baseline("custom-role-definition-assignment"),
            &params(json!({"principalId": "p1"})),
            subscription_ctx(),
        )
        .unwrap();
    let role = arm_guid(&["Bicep Custom Role demo"]);
    let role_id =
        format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}");
    assert_eq!(cloud.puts[0].0, role_id);
    assert_eq!(
        cloud.puts[0].1["properties"]["assignableScopes"],
        json!([format!("/subscriptions/{SUB}")])
    );
    assert_eq!(cloud.puts[1].1["properties"]["roleDefinitionId"], role_id.as_str());
    assert_eq!(cloud.puts[1].1["name"], arm_guid(&["Bicep Custom Role demo", "p1", SUB]).as_str());
}

#[test]
fn lock_on_an_existing_resource() {
    let mut cloud = Cloud::with_group("rg1");
    cloud
        .deploy(
            baseline("resource-with-lock-existing"),
            &params(json!({"accountName": "store1"})),
            group_ctx(),
        )
        .unwrap();
    let storage = format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/store1");
    assert_eq!(
        cloud.puts[0].0,
        format!("{storage}/providers/Microsoft.Authorization/locks/DontDelete")
    );
    assert_eq!(cloud.puts[0].1["scope"], storage.as_str());
}

#[test]
fn redeploying_the_same_template_puts_the_same_bodies() {
    // Idempotence starts here: the same template and parameters give the same IDs and bodies.
    let run = || {
        let mut cloud = Cloud::with_group("rg1");
        cloud
            .deploy(
                baseline("create-managedidentity-rbac"),
                &params(json!({"managedIdentityName": "mi1", "location": "westeurope"})),
                group_ctx(),
            )
            .unwrap();
        cloud.puts
    };
    assert_eq!(run(), run());
}
