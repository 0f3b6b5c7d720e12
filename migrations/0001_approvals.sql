-- Held tools/call requests and their approvals (src/approvals). Portable SQL:
-- the same file runs on SQLite and PostgreSQL through sqlx's Any driver.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    -- SHA-256 (hex) over caller, surface, server, tool, canonical arguments
    -- and the policy digest: a grant is usable only by the identical call.
    binding TEXT NOT NULL,
    requester TEXT NOT NULL,
    issuer TEXT NOT NULL,
    surface TEXT NOT NULL,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    -- Canonical JSON of the arguments (shown to approvers), and its digest.
    arguments TEXT NOT NULL,
    arguments_digest TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    -- pending | approved | rejected | expired | used
    status TEXT NOT NULL,
    -- 1 once a rejection or expiry was reported to the caller.
    reported BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    decided_ms BIGINT,
    approver TEXT,
    comment TEXT,
    used_ms BIGINT
);
CREATE INDEX approvals_by_binding ON approvals (binding, created_ms);
CREATE INDEX approvals_by_status ON approvals (status, created_ms);
-- At most one pending request per binding, across replicas.
CREATE UNIQUE INDEX approvals_one_pending ON approvals (binding) WHERE status = 'pending';
