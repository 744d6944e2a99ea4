//! `-o table`, as knack's `_TableOutput` feeds `tabulate(..., headers="keys", tablefmt="simple",
//! disable_numparse=True)`:
//! - each item of a list result is a row (a single result is one row);
//! - an object row keeps its scalar values only (no `null`, list or object), skips `id`, `type` and
//!   `etag`, and names columns by the key with its first letter upper-cased; keys are sorted unless
//!   a `--query` is active (then they keep the result's order);
//! - a list row becomes `Column1`, `Column2`, ...; a scalar row becomes `Result`;
//! - columns are the union of all rows' keys in first-seen order, every cell left-aligned, each
//!   column as wide as its widest cell and at least its header plus two; columns are separated by
//!   two spaces, a dashed line follows the header, and trailing spaces are trimmed.

use serde_json::Value;

use super::{python_repr, python_str, OutputError, RenderContext};

const SKIPPED_KEYS: &[&str] = &["id", "type", "etag"];
const COLUMN_GAP: &str = "  ";
/// tabulate pads every column to at least its header width plus this.
const MIN_PADDING: usize = 2;

pub fn render(value: &Value, context: &RenderContext) -> Result<String, OutputError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if items.is_empty() {
        return Ok("\n".to_owned());
    }
    let rows: Vec<Vec<(String, String)>> =
        items.iter().map(|item| row_cells(item, !context.query_active)).collect();

    let mut headers: Vec<String> = Vec::new();
    for row in &rows {
        for (header, _) in row {
            if !headers.contains(header) {
                headers.push(header.clone());
            }
        }
    }
    if headers.is_empty() {
        return Err(OutputError::TableUnavailable);
    }
    let cell = |row: &Vec<(String, String)>, header: &str| -> String {
        row.iter().find(|(h, _)| h == header).map(|(_, c)| c.clone()).unwrap_or_default()
    };
    let widths: Vec<usize> = headers
        .iter()
        .map(|header| {
            let widest_cell = rows.iter().map(|row| width(&cell(row, header))).max().unwrap_or(0);
            (width(header) + MIN_PADDING).max(widest_cell)
        })
        .collect();

    let mut out = String::new();
    let header_line: Vec<String> =
        headers.iter().zip(&widths).map(|(header, w)| pad(header, *w)).collect();
    push_line(&mut out, &header_line);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    push_line(&mut out, &rule);
    for row in &rows {
        let line: Vec<String> =
            headers.iter().zip(&widths).map(|(header, w)| pad(&cell(row, header), *w)).collect();
        push_line(&mut out, &line);
    }
    Ok(out)
}

/// The (column, cell) pairs of one item.
fn row_cells(item: &Value, sort_keys: bool) -> Vec<(String, String)> {
    match item {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            entries
                .into_iter()
                .filter(|(key, value)| {
                    !SKIPPED_KEYS.contains(&key.as_str())
                        && !matches!(value, Value::Null | Value::Array(_) | Value::Object(_))
                })
                .map(|(key, value)| (capitalize_first(key), python_str(value)))
                .collect()
        }
        Value::Array(values) => values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let cell = match value {
                    Value::Null => String::new(),
                    Value::String(_) | Value::Bool(_) | Value::Number(_) => python_str(value),
                    nested => python_repr(nested),
                };
                (format!("Column{}", index + 1), cell)
            })
            .collect(),
        Value::Null => vec![("Result".to_owned(), String::new())],
        scalar => vec![("Result".to_owned(), python_str(scalar))],
    }
}

fn capitalize_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn pad(text: &str, width_wanted: usize) -> String {
    let missing = width_wanted.saturating_sub(width(text));
    format!("{text}{}", " ".repeat(missing))
}

fn push_line(out: &mut String, cells: &[String]) {
    out.push_str(cells.join(COLUMN_GAP).trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OutputFormat;
    use crate::output::{render as render_with_query, Query};
    use serde_json::json;

    fn table(value: Value) -> String {
        render(&value, &RenderContext::default()).expect("table")
    }

    #[test]
    fn scalar_columns_sorted_when_no_query() {
        // knack: test_out_table_no_query_no_transformer_order
        let value =
            json!({"name": "qwerty", "val": "0b1f6472qwerty", "active": true, "sub": "0b1f6472"});
        assert_eq!(
            table(value),
            "Active    Name    Sub       Val\n--------  ------  --------  --------------\nTrue      qwerty  0b1f6472  0b1f6472qwerty\n"
        );
    }

    #[test]
    fn numbers_are_left_aligned_text() {
        // knack: test_out_table (an OrderedDict; here sorted, which gives the same order)
        let value = json!({"active": true, "val": "0b1f6472", "lun": 0});
        assert_eq!(
            table(value),
            "Active    Lun    Val\n--------  -----  --------\nTrue      0      0b1f6472\n"
        );
    }

    #[test]
    fn nested_values_nulls_and_id_type_etag_are_skipped() {
        // knack: test_out_table_complex_obj
        let value = json!({"name": "qwerty", "val": "0b1f6472qwerty", "sub": ["1"], "id": "/x", "type": "t", "etag": "e", "none": null, "props": {"a": 1}});
        assert_eq!(table(value), "Name    Val\n------  --------------\nqwerty  0b1f6472qwerty\n");
    }

    #[test]
    fn list_of_lists_gets_numbered_columns() {
        // knack: test_out_table_list_of_lists
        assert_eq!(
            table(json!([["a", "b"], ["c", "d"]])),
            "Column1    Column2\n---------  ---------\na          b\nc          d\n"
        );
    }

    #[test]
    fn number_like_strings_are_kept_verbatim() {
        // knack: test_out_table_with_number
        assert_eq!(table(json!({"Sku": "6.10"})), "Sku\n-----\n6.10\n");
    }

    #[test]
    fn query_order_is_kept() {
        let query = Query::compile("{Name:name, Val:val, Active:active}").expect("query");
        let value =
            json!({"name": "qwerty", "val": "0b1f6472qwerty", "active": true, "sub": "0b1f6472"});
        let out = render_with_query(&value, Some(&query), OutputFormat::Table).expect("render");
        assert_eq!(out.as_deref(), Some("Name    Val             Active\n------  --------------  --------\nqwerty  0b1f6472qwerty  True\n"));
    }

    #[test]
    fn scalar_results_are_a_result_column() {
        assert_eq!(table(json!("westeurope")), "Result\n----------\nwesteurope\n");
        assert_eq!(table(json!(["a", "bb"])), "Result\n--------\na\nbb\n");
    }

    #[test]
    fn rows_missing_a_column_get_empty_cells() {
        let value = json!([{"name": "a", "location": "x"}, {"name": "b"}]);
        assert_eq!(
            table(value),
            "Location    Name\n----------  ------\nx           a\n            b\n"
        );
    }

    #[test]
    fn empty_list_prints_an_empty_line() {
        assert_eq!(table(json!([])), "\n");
    }

    #[test]
    fn objects_without_scalars_cannot_be_tabled() {
        assert!(matches!(
            render(&json!({"a": {"b": 1}}), &RenderContext::default()),
            Err(OutputError::TableUnavailable)
        ));
    }
}
