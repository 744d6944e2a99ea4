//! The functions Bicep knows (the `sys` and `az` namespaces of the subset), with their argument
//! counts and result types, and the ARM functions Bicep refuses in favour of an operator.

/// `(name, namespace, min args, max args (None = unbounded), result type)`.
const FUNCTIONS: &[(&str, &str, usize, Option<usize>, &str)] = &[
    ("any", "sys", 1, Some(1), "any"),
    ("array", "sys", 1, Some(1), "array"),
    ("base64", "sys", 1, Some(1), "string"),
    ("base64ToJson", "sys", 1, Some(1), "any"),
    ("base64ToString", "sys", 1, Some(1), "string"),
    ("bool", "sys", 1, Some(1), "bool"),
    ("coalesce", "sys", 1, None, "any"),
    ("concat", "sys", 1, None, "any"),
    ("contains", "sys", 2, Some(2), "bool"),
    ("dataUri", "sys", 1, Some(1), "string"),
    ("dataUriToString", "sys", 1, Some(1), "string"),
    ("dateTimeAdd", "sys", 2, Some(3), "string"),
    ("dateTimeFromEpoch", "sys", 1, Some(1), "string"),
    ("dateTimeToEpoch", "sys", 1, Some(1), "int"),
    ("empty", "sys", 1, Some(1), "bool"),
    ("endsWith", "sys", 2, Some(2), "bool"),
    ("filter", "sys", 2, Some(2), "array"),
    ("first", "sys", 1, Some(1), "any"),
    ("flatten", "sys", 1, Some(1), "array"),
    ("format", "sys", 1, None, "string"),
    ("groupBy", "sys", 2, Some(2), "object"),
    ("guid", "sys", 1, None, "string"),
    ("indexOf", "sys", 2, Some(2), "int"),
    ("int", "sys", 1, Some(1), "int"),
    ("intersection", "sys", 2, None, "any"),
    ("items", "sys", 1, Some(1), "array"),
    ("join", "sys", 2, Some(2), "string"),
    ("json", "sys", 1, Some(1), "any"),
    ("last", "sys", 1, Some(1), "any"),
    ("lastIndexOf", "sys", 2, Some(2), "int"),
    ("length", "sys", 1, Some(1), "int"),
    ("loadFileAsBase64", "sys", 1, Some(1), "string"),
    ("loadJsonContent", "sys", 1, Some(3), "any"),
    ("loadTextContent", "sys", 1, Some(2), "string"),
    ("map", "sys", 2, Some(2), "array"),
    ("mapValues", "sys", 2, Some(2), "object"),
    ("max", "sys", 1, None, "int"),
    ("min", "sys", 1, None, "int"),
    ("newGuid", "sys", 0, Some(0), "string"),
    ("objectKeys", "sys", 1, Some(1), "array"),
    ("padLeft", "sys", 2, Some(3), "string"),
    ("range", "sys", 2, Some(2), "array"),
    ("reduce", "sys", 3, Some(3), "any"),
    ("replace", "sys", 3, Some(3), "string"),
    ("shallowMerge", "sys", 1, Some(1), "object"),
    ("skip", "sys", 2, Some(2), "any"),
    ("sort", "sys", 2, Some(2), "array"),
    ("split", "sys", 2, Some(2), "array"),
    ("startsWith", "sys", 2, Some(2), "bool"),
    ("string", "sys", 1, Some(1), "string"),
    ("substring", "sys", 2, Some(3), "string"),
    ("take", "sys", 2, Some(2), "any"),
    ("toLower", "sys", 1, Some(1), "string"),
    ("toObject", "sys", 2, Some(3), "object"),
    ("toUpper", "sys", 1, Some(1), "string"),
    ("trim", "sys", 1, Some(1), "string"),
    ("tryGet", "sys", 2, None, "any"),
    ("union", "sys", 1, None, "any"),
    ("uniqueString", "sys", 1, None, "string"),
    ("uri", "sys", 2, Some(2), "string"),
    ("uriComponent", "sys", 1, Some(1), "string"),
    ("uriComponentToString", "sys", 1, Some(1), "string"),
    ("utcNow", "sys", 0, Some(1), "string"),
    ("externalInput", "sys", 1, Some(2), "any"),
    ("readEnvironmentVariable", "sys", 1, Some(2), "string"),
    ("deployer", "az", 0, Some(0), "object"),
    ("deployment", "az", 0, Some(0), "object"),
    ("environment", "az", 0, Some(0), "object"),
    ("extensionResourceId", "az", 3, None, "string"),
    ("managementGroup", "az", 0, Some(1), "object"),
    ("managementGroupResourceId", "az", 2, None, "string"),
    ("pickZones", "az", 3, Some(5), "array"),
    ("providers", "az", 1, Some(2), "any"),
    ("reference", "az", 1, Some(3), "any"),
    ("resourceGroup", "az", 0, Some(2), "object"),
    ("resourceId", "az", 2, None, "string"),
    ("subscription", "az", 0, Some(1), "object"),
    ("subscriptionResourceId", "az", 2, None, "string"),
    ("tenant", "az", 0, Some(0), "object"),
    ("tenantResourceId", "az", 2, None, "string"),
    ("toLogicalZone", "az", 4, Some(4), "string"),
    ("toPhysicalZone", "az", 4, Some(4), "string"),
    ("getSecret", "az", 4, Some(5), "string"),
];

#[derive(Debug, Clone, Copy)]
pub struct FunctionInfo {
    pub namespace: &'static str,
    pub min_args: usize,
    pub max_args: Option<usize>,
    pub result: &'static str,
}

/// A function by its exact name (Bicep function names are case-sensitive).
pub fn lookup(name: &str) -> Option<FunctionInfo> {
    FUNCTIONS.iter().find(|f| f.0 == name).map(|&(_, namespace, min_args, max_args, result)| {
        FunctionInfo { namespace, min_args, max_args, result }
    })
}

/// `list*` resource functions (`listKeys`, ...) are open-ended in ARM.
pub fn is_list_function(name: &str) -> bool {
    name.starts_with("list")
}

/// ARM functions Bicep refuses because an operator does the job (BCP069).
pub fn operator_instead(name: &str) -> Option<&'static str> {
    Some(match name {
        "equals" => "==",
        "not" => "!",
        "and" => "&&",
        "or" => "||",
        "add" => "+",
        "sub" => "-",
        "mul" => "*",
        "div" => "/",
        "mod" => "%",
        "less" => "<",
        "lessOrEquals" => "<=",
        "greater" => ">",
        "greaterOrEquals" => ">=",
        _ => return None,
    })
}

/// Names for "did you mean" suggestions.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.0)
}

/// Decorators of the subset: `(name, min args, max args)`.
pub const DECORATORS: &[(&str, usize, usize)] = &[
    ("description", 1, 1),
    ("allowed", 1, 1),
    ("minLength", 1, 1),
    ("maxLength", 1, 1),
    ("minValue", 1, 1),
    ("maxValue", 1, 1),
    ("secure", 0, 0),
    ("metadata", 1, 1),
    ("batchSize", 1, 1),
    ("sealed", 0, 0),
    ("export", 0, 0),
];
