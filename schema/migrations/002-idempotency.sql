-- Version 2: idempotent submissions, the chain head of the audit trail
-- (so that removing the newest entries is detected too), and an index for
-- listing a department's requests in one state.

CREATE TABLE idempotency_keys (
    principal     TEXT NOT NULL,            -- "token:ID" of the submitter
    key           TEXT NOT NULL,
    body_sha256   TEXT NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (principal, key)
);

CREATE TABLE audit_head (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id     INTEGER NOT NULL,
    last_hash   TEXT NOT NULL
);
INSERT INTO audit_head (singleton, last_id, last_hash)
    SELECT 1, COALESCE(MAX(id), 0),
           COALESCE((SELECT hash FROM audit ORDER BY id DESC LIMIT 1), '')
    FROM audit;

CREATE INDEX requests_department_state ON requests(department_id, state, id);
