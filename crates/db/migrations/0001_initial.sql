-- berth metadata schema. Written in the SQL subset that SQLite and PostgreSQL share (TEXT, BIGINT), so that one
-- migration set serves both. Keys named `key` hold lower-cased ARM IDs: ARM compares IDs case-insensitively.

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    display_name TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Service principals and managed identities. `id` is the object id (principalId), `app_id` the client id.
CREATE TABLE principals (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    app_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    resource_id TEXT,
    application_object_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX principals_display_name ON principals (display_name);

-- Client secrets, stored only as argon2id hashes.
CREATE TABLE principal_secrets (
    id TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    hint TEXT NOT NULL,
    display_name TEXT,
    created_at TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX principal_secrets_principal ON principal_secrets (principal_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE resource_groups (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX resource_groups_subscription ON resource_groups (subscription_id);

-- Every other ARM resource, its envelope stored as JSON. `unique_name` enforces server-wide uniqueness where the
-- type needs it (registry names are global, like ACR's).
CREATE TABLE resources (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    group_key TEXT NOT NULL REFERENCES resource_groups(key),
    type_key TEXT NOT NULL,
    name TEXT NOT NULL,
    unique_name TEXT UNIQUE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX resources_group_type ON resources (group_key, type_key);
CREATE INDEX resources_subscription_type ON resources (subscription_id, type_key);

CREATE TABLE role_assignments (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    condition TEXT,
    condition_version TEXT,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT,
    updated_by TEXT
);
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
CREATE INDEX role_assignments_scope ON role_assignments (scope_key);
