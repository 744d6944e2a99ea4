-- Managed identities and federated identity credentials.
--
-- A managed identity is a row of `principals` (kind `UserAssignedIdentity` or `SystemAssignedIdentity`, no secret).
-- `resource_key` is the lower-cased ID of the resource it belongs to: the user-assigned identity resource itself, or
-- the resource whose system-assigned identity it is. The foreign key deletes the principal in the same statement
-- (and so the same transaction) as its resource, whether the resource or its whole group is deleted.
ALTER TABLE principals ADD COLUMN resource_key TEXT REFERENCES resources(key) ON DELETE CASCADE;
CREATE INDEX principals_resource_key ON principals (resource_key);

-- Federated identity credentials of user-assigned identities: an external OIDC issuer and subject whose tokens
-- may be exchanged for the identity's. Deleted with their identity. `audiences` is a JSON array of strings.
CREATE TABLE federated_credentials (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    identity_key TEXT NOT NULL REFERENCES resources(key) ON DELETE CASCADE,
    name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    audiences TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX federated_credentials_identity ON federated_credentials (identity_key);
CREATE UNIQUE INDEX federated_credentials_issuer_subject ON federated_credentials (identity_key, issuer, subject);
