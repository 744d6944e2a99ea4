-- The registry's metadata. Blob and manifest bytes live in the blob store (content-addressed); these tables say
-- which repository may see which blob and manifest, and what tags point at. `registry` is the lower-cased
-- registry name, `repository` the name within it.

CREATE TABLE repositories (
    registry TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registry, name)
);

-- A blob is readable through a repository only when linked to it: uploaded there, mounted there, or referenced by
-- one of its manifests. This keeps one repository's private layers out of another's reach.
CREATE TABLE repository_blobs (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registry, repository, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (registry, repository, digest)
);
CREATE INDEX manifests_subject ON manifests (registry, repository, subject);
CREATE INDEX manifests_digest ON manifests (digest);

-- What a manifest references (layers, config, child manifests, subject), for deletion checks and garbage
-- collection.
CREATE TABLE manifest_references (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    manifest TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (registry, repository, manifest, target)
);
CREATE INDEX manifest_references_target ON manifest_references (target);

CREATE TABLE tags (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (registry, repository, tag)
);
CREATE INDEX tags_digest ON tags (registry, repository, digest);

-- Upload sessions; the bytes are in the blob store's upload area under the same id.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    created_at TEXT NOT NULL
);
