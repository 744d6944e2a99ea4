//! Modules that are not Bicep files: ARM templates (`module m './x.json'`) and registry artifacts (`br:`,
//! `br/<alias>:`) mapped by the loader to their restored templates. The nested deployment carries the JSON
//! template as it is (the real compiler's `ArmTemplateWriter`), its parameters and outputs checked against the
//! template's `parameters`/`outputs`; unrestored or failed artifacts get BCP190/BCP192 in the real words.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use berth_bicep::registry::ArtifactReference;
use berth_bicep::{Compilation, FileLoader, Restored};
use serde_json::{json, Value};

/// Memory files plus restored registry modules (reference text → template path) and failures.
struct Loader {
    files: HashMap<PathBuf, String>,
    restored: HashMap<String, PathBuf>,
    failed: HashMap<String, String>,
    blocked: bool,
}

impl Loader {
    fn new(files: &[(&str, &str)]) -> Loader {
        Loader {
            files: files.iter().map(|(p, t)| (PathBuf::from(p), (*t).to_owned())).collect(),
            restored: HashMap::new(),
            failed: HashMap::new(),
            blocked: false,
        }
    }

    fn compile(&self, root: &str) -> Compilation {
        berth_bicep::compile_with(Path::new(root), self)
    }
}

impl FileLoader for Loader {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files.read(path)
    }

    fn registry_module(&self, reference: &ArtifactReference) -> Restored {
        let key = reference.to_string();
        if self.blocked {
            return Restored::Blocked;
        }
        if let Some(message) = self.failed.get(&key) {
            return Restored::Failed(message.clone());
        }
        match self.restored.get(&key) {
            Some(path) => Restored::Template(path.clone()),
            None => Restored::NotRestored,
        }
    }
}

const STORAGE_TEMPLATE: &str = r#"{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "metadata": { "_generator": { "name": "bicep", "version": "0.30.23.60470", "templateHash": "123" } },
  "parameters": {
    "name": { "type": "string" },
    "location": { "type": "string", "defaultValue": "[resourceGroup().location]" },
    "tags": { "type": "object", "nullable": true }
  },
  "resources": [
    {
      "type": "Microsoft.Storage/storageAccounts",
      "apiVersion": "2023-01-01",
      "name": "[parameters('name')]",
      "location": "[parameters('location')]",
      "sku": { "name": "Standard_LRS" },
      "kind": "StorageV2",
      "properties": { "minimumTlsVersion": "TLS1_2", "big": 12345678901234 }
    }
  ],
  "outputs": {
    "id": { "type": "string", "value": "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]" }
  }
}"#;

fn errors(compilation: &Compilation) -> Vec<String> {
    compilation
        .diagnostics()
        .filter(|(_, d)| d.is_error())
        .map(|(_, d)| format!("{} {}", d.code, d.message))
        .collect()
}

fn template(compilation: &Compilation) -> Value {
    assert!(errors(compilation).is_empty(), "{:#?}", errors(compilation));
    compilation.template.clone().expect("a template")
}

const CALLER: &str = "module stg '{PATH}' = {\n  name: 'stg'\n  params: {\n    name: 'acct1'\n  }\n}\noutput id string = stg.outputs.id\n";

fn caller(path: &str) -> String {
    CALLER.replace("{PATH}", path)
}

#[test]
fn an_arm_template_module_is_inlined_as_it_is() {
    let main = caller("modules/storage.json");
    let loader = Loader::new(&[("main.bicep", &main), ("modules/storage.json", STORAGE_TEMPLATE)]);
    let compiled = loader.compile("main.bicep");
    let t = template(&compiled);
    let nested = &t["resources"][0];
    assert_eq!(nested["type"], "Microsoft.Resources/deployments");
    assert_eq!(nested["name"], "stg");
    assert_eq!(nested["properties"]["expressionEvaluationOptions"], json!({"scope": "inner"}));
    assert_eq!(nested["properties"]["parameters"], json!({"name": {"value": "acct1"}}));
    let inlined: Value = serde_json::from_str(STORAGE_TEMPLATE).unwrap();
    assert_eq!(nested["properties"]["template"], inlined);
    // Key order and numbers survive as written.
    let text = compiled.template_text().unwrap();
    assert!(text.contains("\"big\": 12345678901234"), "{text}");
    let keys: Vec<&String> = nested["properties"]["template"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["$schema", "contentVersion", "metadata", "parameters", "resources", "outputs"]
    );
    assert_eq!(
        t["outputs"]["id"]["value"],
        "[reference(resourceId('Microsoft.Resources/deployments', 'stg'), '2025-04-01').outputs.id.value]"
    );
}

#[test]
fn an_arm_templates_parameters_and_outputs_are_the_interface() {
    // `name` is required (no default, not nullable); `location` and `tags` are not.
    let missing =
        "module stg 'storage.json' = {\n  name: 'stg'\n  params: {\n    location: 'x'\n  }\n}\n";
    let loader = Loader::new(&[("main.bicep", missing), ("storage.json", STORAGE_TEMPLATE)]);
    let codes: Vec<String> = loader
        .compile("main.bicep")
        .diagnostics()
        .filter(|(_, d)| d.is_error())
        .map(|(_, d)| d.code.to_string())
        .collect();
    assert_eq!(codes, ["BCP035"]);

    let unknown = "module stg 'storage.json' = {\n  name: 'stg'\n  params: {\n    name: 'a'\n    nope: 1\n  }\n}\noutput x string = stg.outputs.missing\n";
    let loader = Loader::new(&[("main.bicep", unknown), ("storage.json", STORAGE_TEMPLATE)]);
    let codes: Vec<String> = loader
        .compile("main.bicep")
        .diagnostics()
        .filter(|(_, d)| d.is_error())
        .map(|(_, d)| d.code.to_string())
        .collect();
    assert_eq!(codes, ["BCP037", "BCP053"]);
}

#[test]
fn a_subscription_template_module_gets_a_location() {
    let sub = r#"{"$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#", "contentVersion": "1.0.0.0", "resources": []}"#;
    let main = "targetScope = 'subscription'\nmodule s 'sub.json' = {\n  name: 's'\n}\n";
    let loader = Loader::new(&[("main.bicep", main), ("sub.json", sub)]);
    let t = template(&loader.compile("main.bicep"));
    assert_eq!(t["resources"][0]["location"], "[deployment().location]");
}

#[test]
fn a_broken_arm_template_is_bcp188() {
    let main = caller("bad.json");
    let loader = Loader::new(&[("main.bicep", &main), ("bad.json", "{ not json")]);
    let compiled = loader.compile("main.bicep");
    assert!(compiled.template.is_none());
    assert_eq!(
        errors(&compiled),
        ["BCP188 The referenced ARM template has errors. Please see https://aka.ms/arm-template for information on how to diagnose and fix the template."]
    );
}

#[test]
fn a_registry_module_compiles_from_its_restored_template() {
    let reference = "br:127.0.0.1:8443/acr/modules/storage:v1";
    let main = caller(reference);
    let mut loader = Loader::new(&[
        ("main.bicep", &main),
        ("/cache/br/127.0.0.1$8443/acr$modules$storage/v1$/main.json", STORAGE_TEMPLATE),
    ]);

    // Not restored: BCP190, and the compilation lists what to restore.
    let compiled = loader.compile("main.bicep");
    assert_eq!(
        errors(&compiled),
        [format!("BCP190 The artifact with reference \"{reference}\" has not been restored.")]
    );
    assert_eq!(compiled.artifacts, [ArtifactReference::parse(reference).unwrap()]);

    // A failed restore: BCP192 with the registry's words.
    loader.failed.insert(
        reference.to_owned(),
        "Service request failed. Status: 401 (Unauthorized) UNAUTHORIZED: authentication required"
            .to_owned(),
    );
    let compiled = loader.compile("main.bicep");
    assert_eq!(
        errors(&compiled),
        [format!("BCP192 Unable to restore the artifact with reference \"{reference}\": Service request failed. Status: 401 (Unauthorized) UNAUTHORIZED: authentication required")]
    );
    loader.failed.clear();

    // An untrusted registry: BCP446 in the real words.
    loader.blocked = true;
    assert_eq!(
        errors(&loader.compile("main.bicep")),
        ["BCP446 Restore from registry \"127.0.0.1:8443\" is blocked because it is not in the trusted registries list. See https://aka.ms/bicep/registry-trust for details."]
    );
    loader.blocked = false;

    // Restored: the same nested deployment as the local JSON module.
    loader.restored.insert(
        reference.to_owned(),
        PathBuf::from("/cache/br/127.0.0.1$8443/acr$modules$storage/v1$/main.json"),
    );
    let from_registry = template(&loader.compile("main.bicep"));
    let local = caller("storage.json");
    let local = Loader::new(&[("main.bicep", &local), ("storage.json", STORAGE_TEMPLATE)]);
    let from_file = template(&local.compile("main.bicep"));
    assert_eq!(from_registry["resources"], from_file["resources"]);
    assert_eq!(from_registry["outputs"], from_file["outputs"]);
}

#[test]
fn aliases_resolve_through_the_nearest_bicepconfig() {
    let config = r#"{
      // the organisation's registry
      "moduleAliases": { "br": { "corp": { "registry": "127.0.0.1:8443", "modulePath": "acr/modules" } } }
    }"#;
    let main = caller("br/corp:storage:v1");
    let mut loader = Loader::new(&[
        ("/src/app/main.bicep", &main),
        ("/src/bicepconfig.json", config),
        ("/t/main.json", STORAGE_TEMPLATE),
    ]);
    loader
        .restored
        .insert("br:127.0.0.1:8443/acr/modules/storage:v1".into(), "/t/main.json".into());
    let compiled = loader.compile("/src/app/main.bicep");
    template(&compiled);
    assert_eq!(compiled.artifacts[0].artifact_id(), "127.0.0.1:8443/acr/modules/storage:v1");

    // A nearer configuration wins; it does not know `corp`.
    loader.files.insert("/src/app/bicepconfig.json".into(), "{}".into());
    let compiled = loader.compile("/src/app/main.bicep");
    assert_eq!(
        errors(&compiled),
        ["BCP213 The OCI artifact module alias name \"corp\" does not exist in the Bicep configuration \"file:///src/app/bicepconfig.json\"."]
    );
    loader.files.insert("/src/app/bicepconfig.json".into(), "{ nope".into());
    let codes: Vec<String> = loader
        .compile("/src/app/main.bicep")
        .diagnostics()
        .map(|(_, d)| d.code.to_string())
        .collect();
    assert_eq!(codes, ["BCP271"]);
}

#[test]
fn bad_references_are_reported_where_they_are_written() {
    let cases = [
        ("br:example.azurecr.io", "BCP193"),
        ("br:example.azurecr.io/Mod:v1", "BCP195"),
        ("br:example.azurecr.io/mod", "BCP196"),
        ("br:example.azurecr.io/mod:.v1", "BCP198"),
        ("br/nope:mod:v1", "BCP213"),
        ("oci:example.azurecr.io/mod:v1", "BCP189"),
        ("ts:00000000-0000-0000-0000-000000000000/rg/spec:1.0", "BRT003"),
    ];
    for (reference, code) in cases {
        let main = caller(reference);
        let loader = Loader::new(&[("main.bicep", &main)]);
        let compiled = loader.compile("main.bicep");
        let found: Vec<(String, u32)> = compiled
            .diagnostics()
            .filter(|(_, d)| d.is_error())
            .map(|(_, d)| (d.code.to_string(), d.span.start))
            .collect();
        let quote = main.find('\'').unwrap() as u32;
        assert_eq!(found, [(code.to_owned(), quote)], "{reference}");
    }
}

/// The real compiler's `Registry_LF` baseline (tests/baselines/registry, from Azure/bicep 9beb0fe): each
/// `Publish/*.bicep` is compiled by berth and "published" under the target its `.metadata.json` names; `main.bicep`
/// then compiles to the real `main.json`, nested registry templates included, after the baselines' normalisation.
/// Template spec modules (`ts:`) are outside berth's subset: their declarations and their resources are left out.
#[test]
fn the_real_compilers_registry_baseline() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/baselines/registry");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let main: String = read("main.bicep")
        .split("\n\n")
        .filter(|block| !block.contains("'ts:") && !block.contains("'ts/"))
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut loader = Loader::new(&[
        ("/b/main.bicep", &main),
        ("/b/bicepconfig.json", &read("bicepconfig.json")),
    ]);
    for entry in std::fs::read_dir(dir.join("Publish")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bicep") {
            continue;
        }
        let published = berth_bicep::compile_path(&path);
        let template = template(&published);
        let metadata: Value = serde_json::from_str(
            &std::fs::read_to_string(path.with_extension("metadata.json")).unwrap(),
        )
        .unwrap();
        let target = metadata["target"].as_str().unwrap().to_owned();
        let stored =
            PathBuf::from(format!("/registry/{}/main.json", target.replace([':', '/'], "_")));
        loader.files.insert(stored.clone(), serde_json::to_string_pretty(&template).unwrap());
        loader.restored.insert(target.clone(), stored.clone());
        if target == "br:mock-registry-one.invalid/demo/plan:v2" {
            // `br/mock-registry-mocked:` maps to the same module (the baseline's test-only mock alias).
            loader.restored.insert("br:mock-registry-three.invalid/plan:v2".into(), stored);
        }
    }
    let compiled = loader.compile("/b/main.bicep");
    let mut actual = template(&compiled);
    let mut expected: Value = serde_json::from_str(&read("main.json")).unwrap();
    let template_specs = ["storageDeploy", "storageDeploy2", "vnetDeploy"];
    expected["resources"].as_array_mut().unwrap().retain(|r| {
        let name = r["copy"]["name"].as_str().or(r["name"].as_str()).unwrap_or_default();
        !template_specs.contains(&name)
    });
    normalise(&mut actual);
    normalise(&mut expected);
    let actual = serde_json::to_string_pretty(&actual).unwrap();
    let expected = serde_json::to_string_pretty(&expected).unwrap();
    assert!(actual == expected, "--- expected\n{expected}\n--- actual\n{actual}");
}

/// The baselines' normalisation: `_generator.version` and `templateHash` are not comparable.
fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(generator)) = map.get_mut("_generator") {
                generator.insert("version".into(), Value::String("<version>".into()));
                generator.insert("templateHash".into(), Value::String("<hash>".into()));
            }
            map.values_mut().for_each(normalise);
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}
