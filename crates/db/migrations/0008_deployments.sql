-- Template deployments (`Microsoft.Resources/deployments`) and their operations.
--
-- A deployment is keyed by its lower-cased ID; `scope_key` is the lower-cased ID of the resource group or
-- subscription it targets. A resource-group deployment names its group in `group_key`, so deleting the group deletes
-- its deployments (and, through them, their operations) in the same statement. `parameters` never hold the values of
-- secure parameters. A run owns the row through `run_id`; while it runs it renews `lease_until` (Unix
-- milliseconds), and a reader that finds a running deployment whose lease expired (its node died) marks it Failed.
CREATE TABLE deployments (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    group_key TEXT REFERENCES resource_groups(key) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL,
    name TEXT NOT NULL,
    location TEXT,
    template_hash TEXT NOT NULL,
    template TEXT NOT NULL,
    parameters TEXT NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    outputs TEXT,
    output_resources TEXT,
    error TEXT,
    correlation_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
CREATE INDEX deployments_scope ON deployments (scope_key);
CREATE INDEX deployments_group ON deployments (group_key);

-- One row per resource a run deployed or tried to, in ARM's operation shape (JSON), in the order they started.
CREATE TABLE deployment_operations (
    deployment_key TEXT NOT NULL REFERENCES deployments(key) ON DELETE CASCADE,
    operation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (deployment_key, operation_id)
);
