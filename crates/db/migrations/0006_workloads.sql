-- Workloads: resources registered to fetch their managed identities' tokens from berth's workload endpoints.
--
-- A workload is keyed by the lower-cased ID of its resource (a registry, a site, a user-assigned identity) and
-- deleted with it by foreign key. `header_hash` is the SHA-256 (hex) of the App Service protocol's
-- `X-IDENTITY-HEADER` secret: the secret itself is shown once, when it is issued, and never stored.
-- `imds_port` is the loopback port of the workload's own metadata listener (the listener identifies the workload
-- for the IMDS protocol, which has no secret).
CREATE TABLE workloads (
    resource_key TEXT PRIMARY KEY REFERENCES resources(key) ON DELETE CASCADE,
    resource_id TEXT NOT NULL,
    header_hash TEXT NOT NULL,
    imds_port BIGINT,
    created_at TEXT NOT NULL,
    rotated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX workloads_header_hash ON workloads (header_hash);
