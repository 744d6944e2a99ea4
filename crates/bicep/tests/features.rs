//! Compiler features beyond the public baselines, checked against the real compiler's emission
//! rules (bicep `Emit/*`): loops of every form, conditions, nested and child resources, scopes,
//! escapes; and the semantic diagnostics with their BCP codes.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{json, Value};

fn compile_files(files: &[(&str, &str)]) -> berth_bicep::Compilation {
    let loader: HashMap<PathBuf, String> =
        files.iter().map(|(p, t)| (PathBuf::from(p), (*t).to_owned())).collect();
    berth_bicep::compile_with(&PathBuf::from(files[0].0), &loader)
}

fn compile(source: &str) -> Value {
    let compilation = compile_files(&[("main.bicep", source)]);
    let errors: Vec<String> = compilation
        .diagnostics()
        .filter(|(_, d)| d.is_error())
        .map(|(f, d)| f.view().bicep_line(d))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    compilation.template.unwrap()
}

fn codes(source: &str) -> Vec<String> {
    compile_files(&[("main.bicep", source)])
        .diagnostics()
        .map(|(_, d)| d.code.to_string())
        .collect()
}

fn messages(source: &str) -> Vec<String> {
    compile_files(&[("main.bicep", source)])
        .diagnostics()
        .map(|(_, d)| format!("{} {}", d.code, d.message))
        .collect()
}

#[test]
fn resource_loop_with_index_and_condition() {
    let t = compile(
        "param names array\nresource stg 'Microsoft.Storage/storageAccounts@2023-01-01' = [for (name, i) in names: if (i > 0) {\n  name: '${name}${i}'\n  location: 'westeurope'\n}]\noutput first string = stg[0].id\n",
    );
    assert_eq!(
        t["resources"][0],
        json!({
            "copy": {"name": "stg", "count": "[length(parameters('names'))]"},
            "condition": "[greater(copyIndex(), 0)]",
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-01-01",
            "name": "[format('{0}{1}', parameters('names')[copyIndex()], copyIndex())]",
            "location": "westeurope"
        })
    );
    assert_eq!(
        t["outputs"]["first"]["value"],
        "[resourceId('Microsoft.Storage/storageAccounts', format('{0}{1}', parameters('names')[0], 0))]"
    );
}

#[test]
fn variable_and_property_loops() {
    let t = compile(
        "var subnets = [for i in range(0, 2): {\n  name: 'subnet${i}'\n}]\nresource vnet 'Microsoft.Network/virtualNetworks@2023-04-01' = {\n  name: 'vnet'\n  properties: {\n    subnets: [for s in subnets: {\n      name: s.name\n    }]\n    enableDdosProtection: false\n  }\n}\n",
    );
    assert_eq!(
        t["variables"],
        json!({"copy": [{"name": "subnets", "count": "[length(range(0, 2))]", "input": {"name": "[format('subnet{0}', range(0, 2)[copyIndex('subnets')])]"}}]})
    );
    assert_eq!(
        t["resources"][0]["properties"],
        json!({
            "enableDdosProtection": false,
            "copy": [{"name": "subnets", "count": "[length(variables('subnets'))]", "input": {"name": "[variables('subnets')[copyIndex('subnets')].name]"}}]
        })
    );
}

#[test]
fn nested_and_parent_child_resources() {
    let t = compile(
        "resource vnet 'Microsoft.Network/virtualNetworks@2023-04-01' = {\n  name: 'vnet'\n  location: 'westeurope'\n  resource subnet 'subnets' = {\n    name: 'default'\n  }\n}\nresource nsg 'Microsoft.Network/virtualNetworks/subnets@2023-04-01' = {\n  parent: vnet\n  name: 'other'\n}\noutput id string = vnet::subnet.id\n",
    );
    assert_eq!(t["resources"][1]["type"], "Microsoft.Network/virtualNetworks/subnets");
    assert_eq!(t["resources"][1]["name"], "[format('{0}/{1}', 'vnet', 'default')]");
    assert_eq!(
        t["resources"][1]["dependsOn"],
        json!(["[resourceId('Microsoft.Network/virtualNetworks', 'vnet')]"])
    );
    assert_eq!(t["resources"][2]["name"], "[format('{0}/{1}', 'vnet', 'other')]");
    assert_eq!(
        t["resources"][2]["dependsOn"],
        json!(["[resourceId('Microsoft.Network/virtualNetworks', 'vnet')]"])
    );
    assert_eq!(
        t["outputs"]["id"]["value"],
        "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]"
    );
}

#[test]
fn runtime_variables_are_inlined_and_literals_escaped() {
    let t = compile(
        "resource id 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {\n  name: 'id'\n  location: 'westeurope'\n}\nvar principal = id.properties.principalId\nvar bracket = '[not an expression]'\nvar braces = 'a{b}${principal}'\nvar mixed = -1 + (2 * 3) % 4\noutput p string = principal\noutput l string = id.location\noutput b string = bracket\noutput c string = braces\noutput m int = mixed\noutput t bool = !(1 != 2) && 'A' =~ 'a' || null ?? true\n",
    );
    assert_eq!(
        t["variables"],
        json!({"bracket": "[[not an expression]", "mixed": "[add(-1, mod(mul(2, 3), 4))]"})
    );
    assert_eq!(t["outputs"]["p"]["value"], "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id'), '2023-01-31').principalId]");
    assert_eq!(t["outputs"]["l"]["value"], "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id'), '2023-01-31', 'full').location]");
    assert_eq!(
        t["outputs"]["c"]["value"],
        "[format('a{{b}}{0}', reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id'), '2023-01-31').principalId)]"
    );
    assert_eq!(
        t["outputs"]["t"]["value"],
        "[coalesce(or(and(not(not(equals(1, 2))), equals(toLower('A'), toLower('a'))), null()), true())]"
    );
}

#[test]
fn modules_in_other_scopes() {
    let compilation = compile_files(&[
        ("main.bicep", "targetScope = 'subscription'\nmodule m 'mod/child.bicep' = {\n  name: 'm'\n  scope: resourceGroup('rg1')\n}\noutput o string = m.outputs.x\n"),
        ("mod/child.bicep", "output x string = 'y'\n"),
    ]);
    assert!(!compilation.has_errors());
    let t = compilation.template.unwrap();
    assert_eq!(t["resources"][0]["resourceGroup"], "rg1");
    assert_eq!(
        t["outputs"]["o"]["value"],
        "[reference(extensionResourceId(format('/subscriptions/{0}/resourceGroups/{1}', subscription().subscriptionId, 'rg1'), 'Microsoft.Resources/deployments', 'm'), '2025-04-01').outputs.x.value]"
    );
}

#[test]
fn subscription_module_from_a_resource_group_file_gets_a_location() {
    let compilation = compile_files(&[
        ("main.bicep", "module m 'sub.bicep' = {\n  name: 'm'\n  scope: subscription()\n}\n"),
        ("sub.bicep", "targetScope = 'subscription'\n"),
    ]);
    let t = compilation.template.unwrap();
    assert_eq!(t["resources"][0]["location"], "[resourceGroup().location]");
}

#[test]
fn names_and_functions() {
    assert_eq!(
        messages("output o string = nme\nparam name string\n"),
        [
            "BCP082 The name \"nme\" does not exist in the current context. Did you mean \"name\"?",
            "no-unused-params Parameter \"name\" is declared but never used.",
        ]
    );
    assert_eq!(codes("output o string = zzzzzz\n"), ["BCP057"]);
    assert_eq!(
        messages("output o string = toLower('a', 'b')\n"),
        ["BCP071 Expected 1 argument, but got 2."]
    );
    assert_eq!(codes("output o string = concat()\n"), ["BCP071"]);
    assert_eq!(codes("var v = 1\noutput o int = v()\n"), ["BCP059"]);
    assert_eq!(
        codes("param p string\noutput o string = parameters('p')\n"),
        ["no-unused-params", "BCP061"]
    );
    assert_eq!(codes("output o bool = equals(1, 2)\n"), ["BCP069"]);
    assert_eq!(codes("output o int = if(true, 1, 2)\n"), ["BCP100"]);
    assert_eq!(codes("output o string = newGuid()\n"), ["BCP065"]);
    assert_eq!(codes("output o string = az.nope()\n"), ["BCP107"]);
    assert_eq!(codes("output o object = az.resourceGroup()\n"), Vec::<String>::new());
    assert_eq!(codes("output o string = loadTextContent('x.txt')\n"), ["BRT005"]);
    assert_eq!(
        codes("resource kv 'Microsoft.KeyVault/vaults@2023-07-01' existing = {\n  name: 'kv'\n}\noutput k object = kv.listKeys()\noutput s string = kv.getSecret('s')\n"),
        ["BRT005"]
    );
}

#[test]
fn declarations_and_types() {
    assert_eq!(
        codes("param a string\nvar a = 1\noutput o string = a\n"),
        ["BCP028", "no-unused-vars"]
    );
    assert_eq!(
        messages("output o int = 'abc'\n"),
        ["BCP026 The output expects a value of type \"int\" but the provided value is of type \"'abc'\"."]
    );
    assert_eq!(
        messages("param p int = true\noutput o int = p\n"),
        ["BCP027 The parameter expects a default value of type \"int\" but provided value is of type \"true\"."]
    );
    assert_eq!(codes("param p string = v\nvar v = 'x'\noutput o string = p\n"), ["BCP072"]);
    assert_eq!(codes("resource r 'nope' = {\n  name: 'x'\n}\n"), ["BCP029"]);
    assert_eq!(codes("resource r 'A.B/c@1' = {\n  location: 'x'\n}\n"), ["BCP035"]);
    assert_eq!(codes("param p string\n"), ["no-unused-params"]);
    assert_eq!(codes("type t = string\n"), ["BRT001"]);
}

#[test]
fn module_parameters_are_checked() {
    let compilation = compile_files(&[
        ("main.bicep", "module m 'child.bicep' = {\n  name: 'm'\n  params: {\n    a: 'x'\n    typo: 1\n  }\n}\noutput o string = m.outputs.outx\n"),
        ("child.bicep", "param a string\nparam b string\nparam c string = 'd'\noutput out string = a\noutput other string = b\n"),
    ]);
    let messages: Vec<String> = compilation
        .diagnostics()
        .filter(|(f, _)| f.path == std::path::Path::new("main.bicep"))
        .map(|(_, d)| format!("{} {}", d.code, d.message))
        .collect();
    assert_eq!(
        messages,
        [
            "BCP035 The specified \"object\" declaration is missing the following required properties: \"b\".",
            "BCP037 The property \"typo\" is not allowed on objects of type \"params\". Permissible properties include \"b\", \"c\".",
            "BCP083 The type \"outputs\" does not contain property \"outx\". Did you mean \"out\"?",
        ]
    );
}

#[test]
fn module_files_missing_or_cyclic() {
    let compilation =
        compile_files(&[("main.bicep", "module m 'missing.bicep' = {\n  name: 'm'\n}\n")]);
    let messages: Vec<String> =
        compilation.diagnostics().map(|(_, d)| format!("{} {}", d.code, d.message)).collect();
    assert_eq!(
        messages,
        ["BCP091 An error occurred reading file. Could not find file 'missing.bicep'."]
    );
    let compilation = compile_files(&[
        ("a.bicep", "module b 'b.bicep' = {\n  name: 'b'\n}\n"),
        ("b.bicep", "module a 'a.bicep' = {\n  name: 'a'\n}\n"),
    ]);
    let codes: Vec<String> = compilation.diagnostics().map(|(_, d)| d.code.to_string()).collect();
    assert!(codes.contains(&"BCP095".to_owned()), "{codes:?}");
    let compilation = compile_files(&[("a.bicep", "module a 'a.bicep' = {\n  name: 'a'\n}\n")]);
    let codes: Vec<String> = compilation.diagnostics().map(|(_, d)| d.code.to_string()).collect();
    assert_eq!(codes, ["BCP094"]);
}
