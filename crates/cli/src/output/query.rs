//! `--query`: JMESPath over a command's JSON result, as knack applies it.
//!
//! The `jmespath` crate evaluates over its own `Variable`, whose objects are sorted maps, while
//! Python's jmespath (what az runs, with `OrderedDict`) keeps key order: a multiselect hash
//! `{name:name, id:id}` yields `name` then `id`, and objects taken from the data keep the server's
//! order. Order matters for `-o tsv` and `-o table`, so the result is converted back with the order
//! restored: multiselect-hash keys in query order, other objects in the order they had in the input.

use std::collections::HashMap;

use jmespath::ast::Ast;
use jmespath::Variable;
use serde_json::{Map, Value};

/// A compiled `--query` expression.
pub struct Query {
    expression: jmespath::Expression<'static>,
    /// Key lists of every multiselect hash in the expression, in query order.
    multihash_keys: Vec<Vec<String>>,
}

/// What a query produced, plus the key orders the formatters need.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    /// Objects with exactly these keys in this order were built by the query (an `OrderedDict` in
    /// az); TSV keeps their order instead of sorting.
    pub ordered_objects: Vec<Vec<String>>,
}

impl Query {
    /// Compiles `text`; the error is JMESPath's own message.
    pub fn compile(text: &str) -> Result<Query, jmespath::JmespathError> {
        let expression = jmespath::compile(text)?;
        let mut multihash_keys = Vec::new();
        collect_multihash_keys(expression.as_ast(), &mut multihash_keys);
        Ok(Query { expression, multihash_keys })
    }

    /// Evaluates the query over `data`.
    pub fn search(&self, data: &Value) -> Result<QueryResult, jmespath::JmespathError> {
        let input = Variable::try_from(data)?;
        let found = self.expression.search(input)?;
        let mut input_orders = HashMap::new();
        collect_input_orders(data, &mut input_orders);
        let value = to_json(&found, &self.multihash_keys, &input_orders);
        Ok(QueryResult { value, ordered_objects: self.multihash_keys.clone() })
    }
}

fn collect_multihash_keys(ast: &Ast, found: &mut Vec<Vec<String>>) {
    match ast {
        Ast::MultiHash { elements, .. } => {
            let mut keys: Vec<String> = Vec::new();
            for pair in elements {
                // A repeated key keeps its first position, as in a Python dict.
                if !keys.contains(&pair.key) {
                    keys.push(pair.key.clone());
                }
                collect_multihash_keys(&pair.value, found);
            }
            found.push(keys);
        }
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => {
            collect_multihash_keys(lhs, found);
            collect_multihash_keys(rhs, found);
        }
        Ast::Condition { predicate, then, .. } => {
            collect_multihash_keys(predicate, found);
            collect_multihash_keys(then, found);
        }
        Ast::Expref { ast, .. } => collect_multihash_keys(ast, found),
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            collect_multihash_keys(node, found)
        }
        Ast::Function { args, .. } => {
            args.iter().for_each(|arg| collect_multihash_keys(arg, found))
        }
        Ast::MultiList { elements, .. } => {
            elements.iter().for_each(|element| collect_multihash_keys(element, found))
        }
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
    }
}

/// Maps each object's sorted key list to the order the keys had in the input.
fn collect_input_orders(value: &Value, orders: &mut HashMap<Vec<String>, Vec<String>>) {
    match value {
        Value::Object(map) => {
            let original: Vec<String> = map.keys().cloned().collect();
            let mut sorted = original.clone();
            sorted.sort();
            orders.entry(sorted).or_insert(original);
            map.values().for_each(|inner| collect_input_orders(inner, orders));
        }
        Value::Array(items) => items.iter().for_each(|inner| collect_input_orders(inner, orders)),
        _ => {}
    }
}

fn to_json(
    variable: &Variable,
    multihash_keys: &[Vec<String>],
    input_orders: &HashMap<Vec<String>, Vec<String>>,
) -> Value {
    match variable {
        Variable::Null | Variable::Expref(_) => Value::Null,
        Variable::Bool(b) => Value::Bool(*b),
        Variable::Number(n) => Value::Number(n.clone()),
        Variable::String(s) => Value::String(s.clone()),
        Variable::Array(items) => Value::Array(
            items.iter().map(|item| to_json(item, multihash_keys, input_orders)).collect(),
        ),
        Variable::Object(map) => {
            // BTreeMap keys come sorted.
            let sorted: Vec<String> = map.keys().cloned().collect();
            let order = multihash_keys
                .iter()
                .find(|keys| {
                    keys.len() == sorted.len() && keys.iter().all(|key| map.contains_key(key))
                })
                .or_else(|| input_orders.get(&sorted))
                .unwrap_or(&sorted);
            let mut object = Map::new();
            for key in order {
                if let Some(inner) = map.get(key) {
                    object.insert(key.clone(), to_json(inner, multihash_keys, input_orders));
                }
            }
            Value::Object(object)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn search(query: &str, data: Value) -> QueryResult {
        Query::compile(query).expect("valid query").search(&data).expect("search")
    }

    fn keys(value: &Value) -> Vec<&str> {
        value.as_object().map(|map| map.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    #[test]
    fn field_projection() {
        let result = search("id", json!({"id": "/subscriptions/s/resourceGroups/g", "name": "g"}));
        assert_eq!(result.value, json!("/subscriptions/s/resourceGroups/g"));
    }

    #[test]
    fn list_projection_and_index() {
        let data = json!([{"name": "a", "id": 1}, {"name": "b", "id": 2}]);
        assert_eq!(search("[].name", data.clone()).value, json!(["a", "b"]));
        assert_eq!(search("[0].id", data.clone()).value, json!(1));
        assert_eq!(search("[?name=='b'].id | [0]", data).value, json!(2));
    }

    #[test]
    fn missing_field_is_null() {
        assert_eq!(search("nope", json!({"a": 1})).value, Value::Null);
    }

    #[test]
    fn multiselect_hash_keeps_query_order() {
        let result = search(
            "{name:name, id:id, Loc:location}",
            json!({"id": "i", "location": "l", "name": "n"}),
        );
        assert_eq!(keys(&result.value), ["name", "id", "Loc"]);
        assert!(result.ordered_objects.contains(&vec![
            "name".to_owned(),
            "id".to_owned(),
            "Loc".to_owned()
        ]));
    }

    #[test]
    fn projected_multiselect_hash_keeps_query_order_in_every_item() {
        let result =
            search("[].{z:name, a:id}", json!([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}]));
        for item in result.value.as_array().expect("array") {
            assert_eq!(keys(item), ["z", "a"]);
        }
    }

    #[test]
    fn objects_from_the_data_keep_their_input_order() {
        let result = search(
            "properties",
            json!({"properties": {"zeta": 1, "alpha": 2, "mid": {"b": 1, "a": 2}}}),
        );
        assert_eq!(keys(&result.value), ["zeta", "alpha", "mid"]);
        assert_eq!(keys(&result.value["mid"]), ["b", "a"]);
    }

    #[test]
    fn multiselect_list_and_functions() {
        let data = json!({"name": "n", "tags": {"a": "1"}, "items": [3, 1, 2]});
        assert_eq!(search("[name, tags.a]", data.clone()).value, json!(["n", "1"]));
        assert_eq!(search("length(items)", data.clone()).value, json!(3));
        assert_eq!(search("sort(items)", data).value, json!([1, 2, 3]));
    }

    #[test]
    fn invalid_expressions_do_not_compile() {
        assert!(Query::compile("[?").is_err());
        assert!(Query::compile("foo[").is_err());
    }
}
