//! The body of a deployment PUT/validate/whatIf request, as the Azure CLI sends it (not strict JSON: the template
//! file is spliced in verbatim after an unquoted `template:` key, comments included).

use serde_json::Value;

use crate::context::DeploymentMode;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::json::parse_lenient;
use crate::plan::ParameterValues;
use crate::template::Template;

/// A parsed deployment request.
#[derive(Debug, Clone)]
pub struct DeploymentRequest {
    pub template: Template,
    pub parameters: ParameterValues,
    pub mode: DeploymentMode,
    pub location: Option<String>,
}

/// Parses `{"location"?, "properties": {"template", "parameters", "mode"}}`; template diagnostics carry positions
/// in the request text.
pub fn parse_deployment_request(text: &str) -> Result<DeploymentRequest, Diagnostics> {
    let (value, map) = parse_lenient(text).map_err(|e| {
        Diagnostics::one(Diagnostic {
            code: Code::InvalidRequestContent,
            path: String::new(),
            position: Some(e.position),
            span: None,
            message: e.message,
        })
    })?;
    let bad = |path: &str, message: &str| {
        Diagnostics::one(Diagnostic::new(Code::InvalidRequestContent, path, message))
    };
    let properties = value
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("properties", "the request needs a 'properties' object"))?;
    let template_value = match (properties.get("template"), properties.get("templateLink")) {
        (Some(t), _) => t.clone(),
        (None, Some(_)) => {
            return Err(bad(
                "properties.templateLink",
                "'templateLink' is not supported: send the template in 'properties.template'",
            ))
        }
        (None, None) => return Err(bad("properties", "the request needs 'properties.template'")),
    };
    let template =
        Template::from_value_with_map(template_value, map.sub_map("properties.template")).map_err(
            |d| {
                // Positions were taken from the template's own part of the text; paths say where in the request.
                Diagnostics(
                    d.0.into_iter()
                        .map(|mut x| {
                            x.path = if x.path.is_empty() {
                                "properties.template".into()
                            } else {
                                format!("properties.template.{}", x.path)
                            };
                            x
                        })
                        .collect(),
                )
            },
        )?;
    let parameters = match properties.get("parameters") {
        None | Some(Value::Null) => ParameterValues::default(),
        Some(p) => ParameterValues::from_json(p)?,
    };
    let mode = match properties.get("mode").and_then(Value::as_str) {
        None => DeploymentMode::Incremental,
        Some(m) => DeploymentMode::parse(m)
            .ok_or_else(|| bad("properties.mode", "'mode' must be 'Incremental' or 'Complete'"))?,
    };
    let location = value.get("location").and_then(Value::as_str).map(str::to_string);
    Ok(DeploymentRequest { template, parameters, mode, location })
}
