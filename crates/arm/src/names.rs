//! Name rules of the resource types berth serves, with ARM's error codes and words.

use crate::{ArmError, ArmErrorCode};

/// Resource group names: 1–90 characters of letters, digits, `_`, `(`, `)`, `-`, `.`; not ending in `.`.
pub fn validate_resource_group_name(name: &str) -> Result<(), ArmError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 90
        && !name.ends_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '(' | ')' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ArmError::new(
            ArmErrorCode::InvalidResourceGroupName,
            format!(
                "The provided resource group name '{name}' has these invalid characters or length. The name can be \
                 1-90 characters of letters, digits, underscores, parentheses, hyphens and periods, and cannot end \
                 in a period."
            ),
        ))
    }
}

/// Registry names follow ACR: 5–50 ASCII letters and digits.
pub fn validate_registry_name(name: &str) -> Result<(), ArmError> {
    let ok = (5..=50).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ArmError::new(
            ArmErrorCode::InvalidResourceName,
            format!(
                "The resource name '{name}' is invalid. A registry name must be 5-50 characters long and contain \
                 only alphanumeric characters."
            ),
        ))
    }
}

/// The generic rule for other resources: 1–128 characters of letters, digits, `-`, `_`, `.`, starting with a
/// letter or digit.
pub fn validate_resource_name(name: &str) -> Result<(), ArmError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ArmError::new(
            ArmErrorCode::InvalidResourceName,
            format!("The resource name '{name}' is invalid."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        assert!(validate_resource_group_name("rg-1_(x).y").is_ok());
        assert!(validate_resource_group_name("").is_err());
        assert!(validate_resource_group_name("ends.").is_err());
        assert!(validate_resource_group_name("has space").is_err());
        assert!(validate_resource_group_name(&"a".repeat(91)).is_err());
    }

    #[test]
    fn registry_names() {
        assert!(validate_registry_name("myacr").is_ok());
        assert!(validate_registry_name("acr").is_err());
        assert!(validate_registry_name("my-acr").is_err());
        assert!(validate_registry_name(&"a".repeat(51)).is_err());
        assert_eq!(
            validate_registry_name("x").unwrap_err().code,
            ArmErrorCode::InvalidResourceName
        );
    }
}
