//! `ResourceId`: parse ARM resource IDs case-insensitively, print them with canonical keywords.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    #[error("resource id must start with `/`")]
    NotAbsolute,
    #[error("resource id has an empty segment")]
    EmptySegment,
    #[error("resource id has an unexpected segment `{0}`")]
    UnexpectedSegment(String),
    #[error("resource id ends after `{0}` without a name")]
    MissingName(String),
}

#[derive(Debug, Clone)]
enum Segment {
    Subscription(String),
    ResourceGroup(String),
    /// `providers/{namespace}/{type}/{name}[/{type}/{name}]*`; an empty list is a provider-level path.
    Provider {
        namespace: String,
        types: Vec<(String, String)>,
    },
}

/// An ARM resource ID or scope. `/` (the root scope) is the empty ID.
#[derive(Debug, Clone)]
pub struct ResourceId {
    segments: Vec<Segment>,
}

/// `Namespace/type[/childType]*`, compared case-insensitively.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub namespace: String,
    pub types: Vec<String>,
}

impl ResourceType {
    pub fn parse(s: &str) -> Option<ResourceType> {
        let mut parts = s.split('/');
        let namespace = parts.next().filter(|n| !n.is_empty())?.to_string();
        let types: Vec<String> = parts.map(str::to_string).collect();
        if types.is_empty() || types.iter().any(String::is_empty) {
            return None;
        }
        Some(ResourceType { namespace, types })
    }

    pub fn is(&self, canonical: &str) -> bool {
        self.to_string().eq_ignore_ascii_case(canonical)
    }
}

impl PartialEq for ResourceType {
    fn eq(&self, other: &Self) -> bool {
        self.to_string().eq_ignore_ascii_case(&other.to_string())
    }
}
impl Eq for ResourceType {}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.namespace)?;
        for t in &self.types {
            write!(f, "/{t}")?;
        }
        Ok(())
    }
}

impl ResourceId {
    /// The root scope `/`.
    pub fn root() -> Self {
        ResourceId { segments: Vec::new() }
    }

    pub fn subscription(id: impl Into<String>) -> Self {
        ResourceId { segments: vec![Segment::Subscription(id.into())] }
    }

    pub fn resource_group(subscription: impl Into<String>, group: impl Into<String>) -> Self {
        ResourceId {
            segments: vec![
                Segment::Subscription(subscription.into()),
                Segment::ResourceGroup(group.into()),
            ],
        }
    }

    /// `self/providers/{namespace}/{type}/{name}`, e.g. a registry inside a resource group.
    pub fn provider_resource(&self, resource_type: &ResourceType, name: &str) -> Self {
        let mut segments = self.segments.clone();
        let mut types: Vec<(String, String)> =
            resource_type.types.iter().map(|t| (t.clone(), String::new())).collect();
        if let Some(last) = types.last_mut() {
            last.1 = name.to_string();
        }
        segments.push(Segment::Provider { namespace: resource_type.namespace.clone(), types });
        ResourceId { segments }
    }

    /// A child resource: `self/{type}/{name}` (e.g. `federatedIdentityCredentials/{name}`).
    pub fn child(&self, child_type: &str, name: &str) -> Option<Self> {
        let mut out = self.clone();
        match out.segments.last_mut() {
            Some(Segment::Provider { types, .. }) if !types.is_empty() => {
                types.push((child_type.to_string(), name.to_string()));
                Some(out)
            }
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Result<ResourceId, ResourceIdError> {
        if s == "/" {
            return Ok(ResourceId::root());
        }
        let rest = s.strip_prefix('/').ok_or(ResourceIdError::NotAbsolute)?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ResourceIdError::EmptySegment);
        }
        let mut segments = Vec::new();
        let mut i = 0;
        while i < parts.len() {
            let keyword = parts[i];
            let value = |i: usize| {
                parts
                    .get(i + 1)
                    .map(|v| v.to_string())
                    .ok_or(ResourceIdError::MissingName(keyword.to_string()))
            };
            if keyword.eq_ignore_ascii_case("subscriptions") && segments.is_empty() {
                segments.push(Segment::Subscription(value(i)?));
                i += 2;
            } else if keyword.eq_ignore_ascii_case("resourceGroups")
                && matches!(segments.last(), Some(Segment::Subscription(_)))
            {
                segments.push(Segment::ResourceGroup(value(i)?));
                i += 2;
            } else if keyword.eq_ignore_ascii_case("providers") {
                let namespace = value(i)?;
                i += 2;
                let mut types = Vec::new();
                while i < parts.len() && !parts[i].eq_ignore_ascii_case("providers") {
                    let t = parts[i].to_string();
                    let name = parts.get(i + 1).ok_or(ResourceIdError::MissingName(t.clone()))?;
                    types.push((t, name.to_string()));
                    i += 2;
                }
                segments.push(Segment::Provider { namespace, types });
            } else {
                return Err(ResourceIdError::UnexpectedSegment(keyword.to_string()));
            }
        }
        Ok(ResourceId { segments })
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn subscription_id(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Subscription(s)) => Some(s),
            _ => None,
        }
    }

    pub fn resource_group_name(&self) -> Option<&str> {
        match self.segments.get(1) {
            Some(Segment::ResourceGroup(g)) => Some(g),
            _ => None,
        }
    }

    /// True for `/subscriptions/{sub}` exactly.
    pub fn is_subscription(&self) -> bool {
        matches!(self.segments.as_slice(), [Segment::Subscription(_)])
    }

    /// True for `/subscriptions/{sub}/resourceGroups/{rg}` exactly.
    pub fn is_resource_group(&self) -> bool {
        matches!(self.segments.as_slice(), [Segment::Subscription(_), Segment::ResourceGroup(_)])
    }

    /// The type of the resource this ID names, or `None` for subscriptions, groups and the root.
    pub fn resource_type(&self) -> Option<ResourceType> {
        match self.segments.last() {
            Some(Segment::Provider { namespace, types }) if !types.is_empty() => {
                Some(ResourceType {
                    namespace: namespace.clone(),
                    types: types.iter().map(|(t, _)| t.clone()).collect(),
                })
            }
            _ => None,
        }
    }

    /// The last name in the ID (resource name, group name or subscription id).
    pub fn name(&self) -> Option<&str> {
        match self.segments.last()? {
            Segment::Subscription(s) => Some(s),
            Segment::ResourceGroup(g) => Some(g),
            Segment::Provider { types, .. } => types.last().map(|(_, n)| n.as_str()),
        }
    }

    /// The scopes that contain this ID, outermost first, ending with the ID itself; role assignments at any of
    /// them apply here. The root scope `/` is included.
    pub fn scope_chain(&self) -> Vec<ResourceId> {
        let mut chain = vec![ResourceId::root()];
        let mut prefix = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Provider { namespace, types } => {
                    for n in 1..=types.len() {
                        let mut p = prefix.clone();
                        p.push(Segment::Provider {
                            namespace: namespace.clone(),
                            types: types[..n].to_vec(),
                        });
                        chain.push(ResourceId { segments: p });
                    }
                }
                other => {
                    let mut p = prefix.clone();
                    p.push(other.clone());
                    chain.push(ResourceId { segments: p });
                }
            }
            prefix.push(segment.clone());
        }
        chain
    }

    /// Whether `self` equals `scope` or lies below it (case-insensitive, segment-wise).
    pub fn is_within(&self, scope: &ResourceId) -> bool {
        let mine = self.key();
        let theirs = scope.key();
        theirs == "/" || mine == theirs || mine.starts_with(&format!("{theirs}/"))
    }

    /// The lower-cased canonical form: the key for storage and comparisons.
    pub fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for ResourceId {}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            match segment {
                Segment::Subscription(s) => write!(f, "/subscriptions/{s}")?,
                Segment::ResourceGroup(g) => write!(f, "/resourceGroups/{g}")?,
                Segment::Provider { namespace, types } => {
                    write!(f, "/providers/{namespace}")?;
                    for (t, n) in types {
                        write!(f, "/{t}/{n}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for ResourceId {
    type Err = ResourceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_prints_canonically() {
        let id = ResourceId::parse(
            "/SUBSCRIPTIONS/s1/resourcegroups/My-RG/PROVIDERS/Microsoft.ContainerRegistry/registries/MyAcr",
        )
        .unwrap();
        assert_eq!(
            id.to_string(),
            "/subscriptions/s1/resourceGroups/My-RG/providers/Microsoft.ContainerRegistry/registries/MyAcr"
        );
        assert_eq!(id.subscription_id(), Some("s1"));
        assert_eq!(id.resource_group_name(), Some("My-RG"));
        assert_eq!(id.name(), Some("MyAcr"));
        assert!(id.resource_type().unwrap().is("microsoft.containerregistry/REGISTRIES"));
        assert_eq!(
            id,
            ResourceId::parse(
                &id.to_string().to_uppercase().replace("/SUBSCRIPTIONS/S1", "/subscriptions/S1")
            )
            .unwrap()
        );
    }

    #[test]
    fn scope_chain_and_within() {
        let id = ResourceId::parse(
            "/subscriptions/s1/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i/federatedIdentityCredentials/f",
        )
        .unwrap();
        let chain: Vec<String> = id.scope_chain().iter().map(|s| s.to_string()).collect();
        assert_eq!(
            chain,
            [
                "/",
                "/subscriptions/s1",
                "/subscriptions/s1/resourceGroups/g",
                "/subscriptions/s1/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i",
                "/subscriptions/s1/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i/federatedIdentityCredentials/f",
            ]
        );
        let group = ResourceId::resource_group("S1", "G");
        assert!(id.is_within(&group));
        assert!(!ResourceId::resource_group("s1", "g2").is_within(&group));
        // `g` is not a prefix of `g2` by segment.
        assert!(!ResourceId::resource_group("s1", "gg").is_within(&group));
    }

    #[test]
    fn extension_resources_parse() {
        let id = ResourceId::parse(
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r/providers/Microsoft.Authorization/roleAssignments/a",
        )
        .unwrap();
        assert_eq!(id.name(), Some("a"));
        assert!(id.resource_type().unwrap().is("Microsoft.Authorization/roleAssignments"));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(ResourceId::parse("subscriptions/s"), Err(ResourceIdError::NotAbsolute));
        assert_eq!(ResourceId::parse("/subscriptions//x"), Err(ResourceIdError::EmptySegment));
        assert!(matches!(
            ResourceId::parse("/subscriptions"),
            Err(ResourceIdError::MissingName(_))
        ));
        assert!(matches!(
            ResourceId::parse("/foo/bar"),
            Err(ResourceIdError::UnexpectedSegment(_))
        ));
        assert!(matches!(
            ResourceId::parse("/subscriptions/s/providers/Microsoft.X/t"),
            Err(ResourceIdError::MissingName(_))
        ));
    }

    #[test]
    fn builders_match_parse() {
        let rt = ResourceType::parse("Microsoft.ContainerRegistry/registries").unwrap();
        let id = ResourceId::resource_group("s", "g").provider_resource(&rt, "r");
        assert_eq!(
            id.to_string(),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r"
        );
        assert_eq!(ResourceId::parse(&id.to_string()).unwrap(), id);
    }
}
