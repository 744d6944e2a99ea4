-- Web apps (`Microsoft.Web/sites`): the host agent's work on each site.
--
-- One row per site, deleted with the site's resource row (and so with its group) by foreign key. `generation` is
-- bumped by every change that asks for a new pull (a PUT of the image, a restart); the agent records the outcome
-- of the generation it worked on, so a restart during a pull makes the next round pull again. `lease_owner` and
-- `lease_until` (Unix milliseconds) make sure that with several nodes on one database only one works a site at a
-- time: a node takes the lease with a conditional UPDATE, and it expires if that node dies.
CREATE TABLE site_states (
    site_key TEXT PRIMARY KEY REFERENCES resources(key) ON DELETE CASCADE,
    site_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    status TEXT NOT NULL,
    run_state TEXT NOT NULL,
    image TEXT NOT NULL,
    digest TEXT,
    error_code TEXT,
    error_message TEXT,
    last_attempt TEXT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL
);
CREATE INDEX site_states_due ON site_states (next_attempt_at);

-- The agent's log of each site (pull steps and outcomes, runtime hand-off), newest kept, oldest pruned.
CREATE TABLE site_log (
    site_key TEXT NOT NULL REFERENCES resources(key) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX site_log_site ON site_log (site_key, at, seq);
