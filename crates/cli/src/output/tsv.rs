//! `-o tsv`, as knack's `_TsvOutput` writes it, so `X=$(berth ... --query id -o tsv)` gets exactly
//! what az would give:
//! - a list result is one row per item; anything else is one row;
//! - a row that is an object prints its values, in key order (sorted, except objects built by a
//!   `--query` multiselect hash, which keep query order), tab-separated; a list row prints its items;
//! - inside a row: a list prints its length, an object prints nothing, `true`/`false` print
//!   `True`/`False`, `null` prints `None`, numbers and strings print as Python's `str()`;
//! - a row that is itself a boolean prints `true`/`false` (lower case);
//! - every row ends with `\n`.

use serde_json::{Map, Value};

use super::{python_str, RenderContext};

pub fn render(value: &Value, context: &RenderContext) -> String {
    let mut out = String::new();
    match value {
        Value::Array(items) => items.iter().for_each(|item| write_row(&mut out, item, context)),
        single => write_row(&mut out, single, context),
    }
    out
}

fn write_row(out: &mut String, row: &Value, context: &RenderContext) {
    match row {
        Value::Object(map) => write_cells(out, object_values(map, context)),
        Value::Array(items) => write_cells(out, items.iter()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        other => write_cell(out, other),
    }
    out.push('\n');
}

fn write_cells<'a>(out: &mut String, cells: impl Iterator<Item = &'a Value>) {
    for (index, cell) in cells.enumerate() {
        if index > 0 {
            out.push('\t');
        }
        write_cell(out, cell);
    }
}

fn write_cell(out: &mut String, cell: &Value) {
    match cell {
        Value::Array(items) => out.push_str(&items.len().to_string()),
        // An empty cell keeps the column count stable when other rows hold a scalar here.
        Value::Object(_) => {}
        other => out.push_str(&python_str(other)),
    }
}

fn object_values<'a>(
    map: &'a Map<String, Value>,
    context: &RenderContext,
) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    let keys: Vec<&String> = map.keys().collect();
    let built_by_query = context.ordered_objects.iter().any(|ordered| {
        ordered.len() == keys.len() && ordered.iter().zip(&keys).all(|(a, b)| a == *b)
    });
    if built_by_query {
        return Box::new(map.values());
    }
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Box::new(entries.into_iter().map(|(_, value)| value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OutputFormat;
    use crate::output::{render as render_with_query, Query};
    use serde_json::json;

    fn tsv(value: Value) -> String {
        render(&value, &RenderContext::default())
    }

    fn tsv_query(query: &str, value: Value) -> String {
        let query = Query::compile(query).expect("query");
        render_with_query(&value, Some(&query), OutputFormat::Tsv)
            .expect("render")
            .unwrap_or_default()
    }

    #[test]
    fn a_string_prints_bare_with_a_newline() {
        assert_eq!(
            tsv(json!("/subscriptions/s/resourceGroups/g")),
            "/subscriptions/s/resourceGroups/g\n"
        );
    }

    #[test]
    fn object_values_are_sorted_by_key() {
        // knack: test_output_format_dict_sort
        assert_eq!(tsv(json!({"B": 1, "A": 2})), "2\t1\n");
    }

    #[test]
    fn multiselect_hash_keeps_query_order() {
        // knack: test_output_format_ordereddict_not_sorted (a --query hash is an OrderedDict)
        assert_eq!(tsv_query("{B:b, A:a}", json!({"a": 2, "b": 1})), "1\t2\n");
    }

    #[test]
    fn list_of_objects_is_one_row_each() {
        // knack: test_output_format_ordereddict_list_not_sorted
        assert_eq!(
            tsv_query("[].{B:b, A:a}", json!([{"a": 2, "b": 1}, {"a": 4, "b": 3}])),
            "1\t2\n3\t4\n"
        );
        assert_eq!(tsv(json!([{"b": 1, "a": 2}, {"a": 3, "b": 4}])), "2\t1\n3\t4\n");
    }

    #[test]
    fn objects_from_data_are_sorted_even_under_a_query() {
        assert_eq!(
            tsv_query("properties", json!({"properties": {"z": "last", "a": "first"}})),
            "first\tlast\n"
        );
    }

    #[test]
    fn nested_object_prints_empty() {
        assert_eq!(tsv(json!({"a": "x", "b": {"c": 1}, "d": "y"})), "x\t\ty\n");
    }

    #[test]
    fn nested_list_prints_its_length() {
        assert_eq!(tsv(json!({"a": [1, 2, 3], "b": []})), "3\t0\n");
    }

    #[test]
    fn nested_booleans_are_capitalised() {
        assert_eq!(tsv(json!({"a": true, "b": false})), "True\tFalse\n");
        assert_eq!(tsv(json!([[true, false]])), "True\tFalse\n");
    }

    #[test]
    fn top_level_booleans_are_lower_case() {
        assert_eq!(tsv(json!(false)), "false\n");
        assert_eq!(tsv(json!([true, false])), "true\nfalse\n");
    }

    #[test]
    fn null_inside_a_row_prints_none() {
        assert_eq!(tsv(json!({"a": null, "b": "x"})), "None\tx\n");
        assert_eq!(tsv(json!([null])), "None\n");
    }

    #[test]
    fn null_result_prints_nothing() {
        assert_eq!(tsv_query("missing", json!({"a": 1})), "");
    }

    #[test]
    fn numbers_print_as_python_str() {
        assert_eq!(tsv(json!({"i": 3599, "f": 1.0, "g": 0.5})), "1.0\t0.5\t3599\n");
    }

    #[test]
    fn list_of_lists_is_rows_of_cells() {
        assert_eq!(
            tsv_query("[].[name, id]", json!([{"name": "a", "id": "1"}, {"name": "b", "id": "2"}])),
            "a\t1\nb\t2\n"
        );
    }

    #[test]
    fn list_of_scalars_is_one_per_line_and_empty_list_prints_nothing() {
        assert_eq!(tsv(json!(["a", "b", 3])), "a\nb\n3\n");
        assert_eq!(tsv(json!([])), "");
    }

    #[test]
    fn strings_are_not_escaped() {
        assert_eq!(tsv(json!({"a": "tab\there", "b": "x y"})), "tab\there\tx y\n");
    }
}
