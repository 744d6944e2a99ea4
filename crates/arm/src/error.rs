//! ARM error codes and the `{"error":{"code","message"}}` body, kept apart from any HTTP type.

use serde::{Deserialize, Serialize};

/// The ARM error codes berth answers with. The wire spelling is ARM's own (PascalCase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArmErrorCode {
    AuthenticationFailed,
    InvalidAuthenticationToken,
    InvalidAuthenticationTokenAudience,
    ExpiredAuthenticationToken,
    AuthorizationFailed,
    SubscriptionNotFound,
    ResourceGroupNotFound,
    ResourceNotFound,
    ParentResourceNotFound,
    InvalidResourceName,
    InvalidResourceGroupName,
    InvalidResourceType,
    InvalidRequestContent,
    InvalidRequestFormat,
    MissingApiVersionParameter,
    LocationRequired,
    AlreadyExists,
    RegistryNameNotAvailable,
    Conflict,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
    BadRequest,
    InvalidResourceGroupLocation,
    InvalidResourceLocation,
    FailedIdentityOperation,
    LinkedAuthorizationFailed,
    RoleAssignmentExists,
    RoleAssignmentUpdateNotPermitted,
    RoleAssignmentNotFound,
    PrincipalNotFound,
    RoleDefinitionDoesNotExist,
    RoleDefinitionWithSameNameExists,
    RoleDefinitionHasAssignments,
    InvalidRoleAssignmentId,
    InvalidRoleDefinitionId,
    InvalidCondition,
    InvalidTemplate,
    InvalidTemplateParameter,
    DeploymentFailed,
    DeploymentNotFound,
    DeploymentActive,
    InternalServerError,
}

impl ArmErrorCode {
    pub fn as_str(self) -> &'static str {
        use ArmErrorCode::*;
        match self {
            AuthenticationFailed => "AuthenticationFailed",
            InvalidAuthenticationToken => "InvalidAuthenticationToken",
            InvalidAuthenticationTokenAudience => "InvalidAuthenticationTokenAudience",
            ExpiredAuthenticationToken => "ExpiredAuthenticationToken",
            AuthorizationFailed => "AuthorizationFailed",
            SubscriptionNotFound => "SubscriptionNotFound",
            ResourceGroupNotFound => "ResourceGroupNotFound",
            ResourceNotFound => "ResourceNotFound",
            ParentResourceNotFound => "ParentResourceNotFound",
            InvalidResourceName => "InvalidResourceName",
            InvalidResourceGroupName => "InvalidResourceGroupName",
            InvalidResourceType => "InvalidResourceType",
            InvalidRequestContent => "InvalidRequestContent",
            InvalidRequestFormat => "InvalidRequestFormat",
            MissingApiVersionParameter => "MissingApiVersionParameter",
            LocationRequired => "LocationRequired",
            AlreadyExists => "AlreadyExists",
            RegistryNameNotAvailable => "RegistryNameNotAvailable",
            Conflict => "Conflict",
            RequestEntityTooLarge => "RequestEntityTooLarge",
            UnsupportedMediaType => "UnsupportedMediaType",
            MethodNotAllowed => "MethodNotAllowed",
            BadRequest => "BadRequest",
            InvalidResourceGroupLocation => "InvalidResourceGroupLocation",
            InvalidResourceLocation => "InvalidResourceLocation",
            FailedIdentityOperation => "FailedIdentityOperation",
            LinkedAuthorizationFailed => "LinkedAuthorizationFailed",
            RoleAssignmentExists => "RoleAssignmentExists",
            RoleAssignmentUpdateNotPermitted => "RoleAssignmentUpdateNotPermitted",
            RoleAssignmentNotFound => "RoleAssignmentNotFound",
            PrincipalNotFound => "PrincipalNotFound",
            RoleDefinitionDoesNotExist => "RoleDefinitionDoesNotExist",
            RoleDefinitionWithSameNameExists => "RoleDefinitionWithSameNameExists",
            RoleDefinitionHasAssignments => "RoleDefinitionHasAssignments",
            InvalidRoleAssignmentId => "InvalidRoleAssignmentId",
            InvalidRoleDefinitionId => "InvalidRoleDefinitionId",
            InvalidCondition => "InvalidCondition",
            InvalidTemplate => "InvalidTemplate",
            InvalidTemplateParameter => "InvalidTemplateParameter",
            DeploymentFailed => "DeploymentFailed",
            DeploymentNotFound => "DeploymentNotFound",
            DeploymentActive => "DeploymentActive",
            InternalServerError => "InternalServerError",
        }
    }

    /// The HTTP status ARM pairs with the code.
    pub fn http_status(self) -> u16 {
        use ArmErrorCode::*;
        match self {
            AuthenticationFailed
            | InvalidAuthenticationToken
            | InvalidAuthenticationTokenAudience
            | ExpiredAuthenticationToken => 401,
            AuthorizationFailed | LinkedAuthorizationFailed => 403,
            SubscriptionNotFound
            | ResourceGroupNotFound
            | ResourceNotFound
            | ParentResourceNotFound
            | RoleAssignmentNotFound
            | RoleDefinitionDoesNotExist
            | DeploymentNotFound => 404,
            AlreadyExists
            | RegistryNameNotAvailable
            | Conflict
            | InvalidResourceGroupLocation
            | InvalidResourceLocation
            | RoleAssignmentExists
            | RoleAssignmentUpdateNotPermitted
            | RoleDefinitionWithSameNameExists
            | RoleDefinitionHasAssignments
            | DeploymentActive => 409,
            RequestEntityTooLarge => 413,
            UnsupportedMediaType => 415,
            MethodNotAllowed => 405,
            InternalServerError => 500,
            InvalidResourceName
            | InvalidResourceGroupName
            | InvalidResourceType
            | InvalidRequestContent
            | InvalidRequestFormat
            | MissingApiVersionParameter
            | LocationRequired
            | FailedIdentityOperation
            | PrincipalNotFound
            | InvalidRoleAssignmentId
            | InvalidRoleDefinitionId
            | InvalidCondition
            | InvalidTemplate
            | InvalidTemplateParameter
            | DeploymentFailed
            | BadRequest => 400,
        }
    }
}

impl std::fmt::Display for ArmErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A domain error in ARM's terms: a code and a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("({code}) {message}")]
pub struct ArmError {
    pub code: ArmErrorCode,
    pub message: String,
}

impl ArmError {
    pub fn new(code: ArmErrorCode, message: impl Into<String>) -> Self {
        ArmError { code, message: message.into() }
    }

    pub fn body(&self) -> ArmErrorBody {
        ArmErrorBody {
            error: ArmErrorDetail {
                code: self.code.as_str().to_string(),
                message: self.message.clone(),
                target: None,
            },
        }
    }
}

/// `{"error":{"code","message"}}`, the wire body of every ARM error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArmErrorBody {
    pub error: ArmErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArmErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_arm_shape() {
        let err = ArmError::new(
            ArmErrorCode::ResourceGroupNotFound,
            "Resource group 'g' could not be found.",
        );
        let json = serde_json::to_value(err.body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error":{"code":"ResourceGroupNotFound","message":"Resource group 'g' could not be found."}})
        );
        assert_eq!(err.code.http_status(), 404);
    }
}
