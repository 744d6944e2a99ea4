-- RBAC: custom role definitions, the uniqueness of role assignments, and the audit trail of authorization
-- decisions.

-- Custom roles (built-in roles are compiled into berth-authz and never stored). `name` is the lower-cased GUID;
-- role names are unique in the tenant, case-insensitively (`role_name_key`). `body` is the definition's JSON
-- (roleName, description, assignableScopes, permissions) as berth-authz reads it.
CREATE TABLE role_definitions (
    name TEXT PRIMARY KEY,
    role_name TEXT NOT NULL,
    role_name_key TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT,
    updated_by TEXT
);

-- The role's GUID (lower-case) of each assignment: ARM's uniqueness key is (scope, principal, role) whatever the
-- assignment's name, and a custom role cannot be deleted while an assignment uses it.
ALTER TABLE role_assignments ADD COLUMN role_key TEXT;
CREATE UNIQUE INDEX role_assignments_unique_grant ON role_assignments (scope_key, principal_id, role_key);
CREATE INDEX role_assignments_role ON role_assignments (role_key);

-- One row per audited authorization decision: who asked for what, where, and which assignment allowed it (or
-- none). `at` is unix milliseconds, `seq` orders rows written in the same millisecond.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    principal_id TEXT NOT NULL,
    surface TEXT NOT NULL,
    action TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    scope TEXT NOT NULL,
    repository TEXT,
    allowed BIGINT NOT NULL,
    assignment_id TEXT,
    role_name TEXT
);
CREATE INDEX audit_events_principal ON audit_events (principal_id, at);
CREATE INDEX audit_events_scope ON audit_events (scope_key, at);
CREATE INDEX audit_events_at ON audit_events (at);
