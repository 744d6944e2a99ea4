//! Docker/ACR token scopes, e.g. `repository:team/app:pull,push` or `registry:catalog:*`.
//!
//! Grammar (distribution `scope.md`):
//! ```text
//! scope         := resourcescope [ ' ' resourcescope ]*
//! resourcescope := resourcetype ":" resourcename ":" action [ ',' action ]*
//! resourcetype  := resourcetypevalue [ '(' resourcetypevalue ')' ]
//! ```
//! The name may itself contain `:` (`host:5000/app`), so the type ends at the first `:` and the actions start after
//! the last. `repository(plugin)` authorizes exactly like `repository`: the class is kept apart from the type.
//! The grammar says `[a-z0-9]+` for types and `[a-z]*` for actions; ACR also uses `artifact-repository`,
//! `metadata_read` and `*`, so types allow `-` and `_` and actions allow `_`, `-` and `*`.

use std::fmt;
use std::str::FromStr;

use crate::OciError;

/// One `type:name:actions` element of a scope string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// `repository`, `registry`, `artifact-repository`, … without the class.
    pub resource_type: String,
    /// The `plugin` of `repository(plugin)`; ignored when authorizing.
    pub resource_class: Option<String>,
    pub name: String,
    /// Distinct actions in request order; may be empty (`repository:a:`).
    pub actions: Vec<String>,
}

impl Scope {
    pub fn new(resource_type: &str, name: &str, actions: &[&str]) -> Scope {
        Scope {
            resource_type: resource_type.to_owned(),
            resource_class: None,
            name: name.to_owned(),
            actions: actions.iter().map(|action| (*action).to_owned()).collect(),
        }
    }

    /// Parses a single `type:name:actions` element.
    pub fn parse(text: &str) -> Result<Scope, OciError> {
        let invalid = |reason| OciError::InvalidScope { value: text.to_owned(), reason };
        let (type_text, rest) =
            text.split_once(':').ok_or_else(|| invalid("expected `type:name:actions`"))?;
        let (name, actions_text) =
            rest.rsplit_once(':').ok_or_else(|| invalid("expected `type:name:actions`"))?;
        let (resource_type, resource_class) = match type_text.split_once('(') {
            Some((base, class)) => {
                let class = class
                    .strip_suffix(')')
                    .ok_or_else(|| invalid("unclosed `(` in resource type"))?;
                if !is_type_value(class) {
                    return Err(invalid("malformed resource class"));
                }
                (base, Some(class.to_owned()))
            }
            None => (type_text, None),
        };
        if !is_type_value(resource_type) {
            return Err(invalid("malformed resource type"));
        }
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(invalid("malformed resource name"));
        }
        let mut actions: Vec<String> = Vec::new();
        for action in actions_text.split(',').filter(|action| !action.is_empty()) {
            if !action
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*".contains(&b))
            {
                return Err(invalid("malformed action"));
            }
            if !actions.iter().any(|known| known == action) {
                actions.push(action.to_owned());
            }
        }
        Ok(Scope {
            resource_type: resource_type.to_owned(),
            resource_class,
            name: name.to_owned(),
            actions,
        })
    }

    /// Whether the scope asks for `action` (or for `*`).
    pub fn has_action(&self, action: &str) -> bool {
        self.actions.iter().any(|wanted| wanted == action || wanted == "*")
    }
}

fn is_type_value(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Parses a space-separated scope string (one `scope=` value). Empty input gives no scopes.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, OciError> {
    text.split(' ').filter(|element| !element.is_empty()).map(Scope::parse).collect()
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource_type)?;
        if let Some(class) = &self.resource_class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:{}", self.name, self.actions.join(","))
    }
}

impl FromStr for Scope {
    type Err = OciError;
    fn from_str(text: &str) -> Result<Scope, OciError> {
        Scope::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_spec_examples() {
        let scopes =
            parse_scopes("repository:samalba/my-app:pull,push registry:catalog:*").unwrap();
        assert_eq!(
            scopes,
            [
                Scope::new("repository", "samalba/my-app", &["pull", "push"]),
                Scope::new("registry", "catalog", &["*"])
            ]
        );
        assert!(scopes[1].has_action("pull"));
        assert!(scopes[0].has_action("push") && !scopes[0].has_action("delete"));
    }

    #[test]
    fn name_with_port_and_plugin_class() {
        let scope = Scope::parse("repository(plugin):localhost:5000/tools/app:pull").unwrap();
        assert_eq!(scope.resource_type, "repository");
        assert_eq!(scope.resource_class.as_deref(), Some("plugin"));
        assert_eq!(scope.name, "localhost:5000/tools/app");
        assert_eq!(scope.actions, ["pull"]);
        assert_eq!(scope.to_string(), "repository(plugin):localhost:5000/tools/app:pull");
    }

    #[test]
    fn acr_vocabulary() {
        let scopes = parse_scopes(
            "repository:foo:metadata_read,delete  registry:*:*  artifact-repository:repo:pull",
        )
        .unwrap();
        assert_eq!(scopes.len(), 3);
        assert_eq!(scopes[0].actions, ["metadata_read", "delete"]);
        assert_eq!(scopes[1].name, "*");
        assert_eq!(scopes[2].resource_type, "artifact-repository");
    }

    #[test]
    fn empty_and_duplicate_actions() {
        assert_eq!(Scope::parse("repository:a:").unwrap().actions, Vec::<String>::new());
        assert_eq!(Scope::parse("repository:a:pull,,pull").unwrap().actions, ["pull"]);
        assert!(parse_scopes("").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_scopes() {
        for text in [
            "repository",
            "repository:a",
            ":a:pull",
            "repository::pull",
            "Repo:a:pull",
            "repository(x:a:pull",
            "repository:a:PULL",
            "repository:a:pull;rm",
        ] {
            assert!(Scope::parse(text).is_err(), "{text}");
        }
        assert!(parse_scopes("repository:a:pull bogus").is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(
            resource_type in "[a-z0-9]{1,10}",
            class in proptest::option::of("[a-z0-9]{1,8}"),
            name in "[a-z0-9./:_-]{1,30}",
            actions in proptest::collection::vec("[a-z_*]{1,8}", 0..4),
        ) {
            let mut actions_unique: Vec<String> = Vec::new();
            for action in actions {
                if !actions_unique.contains(&action) {
                    actions_unique.push(action);
                }
            }
            let scope = Scope { resource_type, resource_class: class, name, actions: actions_unique };
            prop_assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope);
        }

        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            let _ = parse_scopes(&text);
        }
    }
}
