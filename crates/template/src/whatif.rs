//! What-if: the difference between a resource as it is and as a deployment would make it, as ARM's what-if
//! reports it (change types `Create`, `Delete`, `Modify`, `NoChange`; property changes with their paths).

use serde_json::{Map, Value};

use crate::eval::{get_property, values_equal};
use crate::json::{child_path, index_path};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Create,
    Delete,
    Modify,
    NoChange,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Create => "Create",
            ChangeType::Delete => "Delete",
            ChangeType::Modify => "Modify",
            ChangeType::NoChange => "NoChange",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyChangeType {
    Create,
    Delete,
    Modify,
}

impl PropertyChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyChangeType::Create => "Create",
            PropertyChangeType::Delete => "Delete",
            PropertyChangeType::Modify => "Modify",
        }
    }
}

/// One changed property, by path (`properties.principalId`, `tags.env`, `properties.list[2]`).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyChange {
    pub path: String,
    pub change_type: PropertyChangeType,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    pub change_type: ChangeType,
    pub delta: Vec<PropertyChange>,
}

impl ResourceChange {
    /// ARM's `WhatIfChange` JSON (without `resourceId`, which the caller adds).
    pub fn to_json(&self, before: Option<&Value>, after: Option<&Value>) -> Value {
        let mut out = Map::new();
        out.insert("changeType".into(), Value::String(self.change_type.as_str().into()));
        out.insert("before".into(), before.cloned().unwrap_or(Value::Null));
        out.insert("after".into(), after.cloned().unwrap_or(Value::Null));
        let delta: Vec<Value> = self
            .delta
            .iter()
            .map(|d| {
                let mut entry = Map::new();
                entry.insert("path".into(), Value::String(d.path.clone()));
                entry.insert(
                    "propertyChangeType".into(),
                    Value::String(d.change_type.as_str().into()),
                );
                entry.insert("before".into(), d.before.clone().unwrap_or(Value::Null));
                entry.insert("after".into(), d.after.clone().unwrap_or(Value::Null));
                Value::Object(entry)
            })
            .collect();
        if self.change_type == ChangeType::Modify {
            out.insert("delta".into(), Value::Array(delta));
        }
        Value::Object(out)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
    /// Properties present only in `before` are not deletions (the service adds read-only ones such as
    /// `provisioningState` or `principalId` that a template never states).
    pub ignore_missing_in_after: bool,
}

/// Compares a resource as it is (`before`, `None` if absent) with what the deployment would PUT (`after`,
/// `None` if the deployment deletes it).
pub fn what_if(
    before: Option<&Value>,
    after: Option<&Value>,
    options: DiffOptions,
) -> ResourceChange {
    match (before, after) {
        (None, None) => ResourceChange { change_type: ChangeType::NoChange, delta: Vec::new() },
        (None, Some(_)) => ResourceChange { change_type: ChangeType::Create, delta: Vec::new() },
        (Some(_), None) => ResourceChange { change_type: ChangeType::Delete, delta: Vec::new() },
        (Some(before), Some(after)) => {
            let mut delta = Vec::new();
            diff("", before, after, options, &mut delta);
            let change_type =
                if delta.is_empty() { ChangeType::NoChange } else { ChangeType::Modify };
            ResourceChange { change_type, delta }
        }
    }
}

fn diff(
    path: &str,
    before: &Value,
    after: &Value,
    options: DiffOptions,
    out: &mut Vec<PropertyChange>,
) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, after_value) in a {
                let key_path = child_path(path, key);
                match get_property(b, key) {
                    Some(before_value) => diff(&key_path, before_value, after_value, options, out),
                    None => out.push(PropertyChange {
                        path: key_path,
                        change_type: PropertyChangeType::Create,
                        before: None,
                        after: Some(after_value.clone()),
                    }),
                }
            }
            if !options.ignore_missing_in_after {
                for (key, before_value) in b {
                    if get_property(a, key).is_none() {
                        out.push(PropertyChange {
                            path: child_path(path, key),
                            change_type: PropertyChangeType::Delete,
                            before: Some(before_value.clone()),
                            after: None,
                        });
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for i in 0..a.len().max(b.len()) {
                let item_path = index_path(path, i);
                match (b.get(i), a.get(i)) {
                    (Some(x), Some(y)) => diff(&item_path, x, y, options, out),
                    (None, Some(y)) => out.push(PropertyChange {
                        path: item_path,
                        change_type: PropertyChangeType::Create,
                        before: None,
                        after: Some(y.clone()),
                    }),
                    (Some(x), None) => out.push(PropertyChange {
                        path: item_path,
                        change_type: PropertyChangeType::Delete,
                        before: Some(x.clone()),
                        after: None,
                    }),
                    (None, None) => {}
                }
            }
        }
        (b, a) => {
            if !values_equal(b, a) {
                out.push(PropertyChange {
                    path: path.to_string(),
                    change_type: PropertyChangeType::Modify,
                    before: Some(b.clone()),
                    after: Some(a.clone()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_delete_and_no_change() {
        let body = json!({"location": "westeurope"});
        assert_eq!(
            what_if(None, Some(&body), DiffOptions::default()).change_type,
            ChangeType::Create
        );
        assert_eq!(
            what_if(Some(&body), None, DiffOptions::default()).change_type,
            ChangeType::Delete
        );
        let change = what_if(Some(&body), Some(&body), DiffOptions::default());
        assert_eq!(change.change_type, ChangeType::NoChange);
        assert!(change.delta.is_empty());
    }

    #[test]
    fn modify_lists_property_paths() {
        let before = json!({
            "location": "westeurope",
            "tags": {"env": "dev", "old": "x"},
            "properties": {"principalId": "p1", "list": [1, 2, 3], "provisioningState": "Succeeded"}
        });
        let after = json!({
            "location": "westeurope",
            "tags": {"env": "prod", "team a": "y"},
            "properties": {"principalId": "p1", "list": [1, 5]}
        });
        let change = what_if(Some(&before), Some(&after), DiffOptions::default());
        assert_eq!(change.change_type, ChangeType::Modify);
        let summary: Vec<(String, &str)> =
            change.delta.iter().map(|d| (d.path.clone(), d.change_type.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                ("tags.env".to_string(), "Modify"),
                ("tags['team a']".to_string(), "Create"),
                ("tags.old".to_string(), "Delete"),
                ("properties.list[1]".to_string(), "Modify"),
                ("properties.list[2]".to_string(), "Delete"),
                ("properties.provisioningState".to_string(), "Delete"),
            ]
        );
        let lenient =
            what_if(Some(&before), Some(&after), DiffOptions { ignore_missing_in_after: true });
        assert!(lenient
            .delta
            .iter()
            .all(|d| d.change_type != PropertyChangeType::Delete || d.path.contains('[')));
        let wire = change.to_json(Some(&before), Some(&after));
        assert_eq!(wire["changeType"], "Modify");
        assert_eq!(
            wire["delta"][0],
            json!({"path": "tags.env", "propertyChangeType": "Modify", "before": "dev", "after": "prod"})
        );
    }

    #[test]
    fn keys_compare_case_insensitively_and_numbers_by_value() {
        let before = json!({"Properties": {"count": 1}});
        let after = json!({"properties": {"count": 1.0}});
        assert_eq!(
            what_if(Some(&before), Some(&after), DiffOptions::default()).change_type,
            ChangeType::NoChange
        );
    }
}
