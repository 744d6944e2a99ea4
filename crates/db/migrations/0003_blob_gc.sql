-- Garbage collection of blobs that nothing references any more, safe while pushes continue.
--
-- `blobs` has one row per digest whose bytes the blob store holds for some repository (a layer, a config, a
-- manifest): it is the lock both sides take. Every change that makes a digest reachable (an upload's commit, a
-- mount, a manifest put, which also writes the manifest's own bytes) first inserts or updates the digest's row,
-- and only then writes the bytes and the link in the same transaction; garbage collection locks the row, checks
-- that no link and no manifest uses the digest, and deletes the file before it commits the row's deletion. So a
-- file is only ever deleted while nobody can link its digest, and a push that comes after finds no row and writes
-- the bytes again. `last_linked_at` (RFC 3339) is the last time a link or manifest put touched the row.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    last_linked_at TEXT NOT NULL
);

INSERT INTO blobs (digest, size, last_linked_at)
SELECT digest, MAX(size), MAX(created_at) FROM (
    SELECT digest, size, created_at FROM repository_blobs
    UNION ALL
    SELECT digest, size, created_at FROM manifests
) AS reachable
GROUP BY digest;

-- When the link was last made (an upload or mount of a blob already linked refreshes it): garbage collection
-- keeps links that no manifest references for a grace period after this, so a push's blobs survive until its
-- manifest arrives.
ALTER TABLE repository_blobs ADD COLUMN linked_at TEXT NOT NULL DEFAULT '';
UPDATE repository_blobs SET linked_at = created_at;
