-- yunguan store, schema version 1 (the baseline).
-- Later changes go to schema/migrations/NNN-*.sql, applied in order at start;
-- PRAGMA user_version records the version reached.  Never edit a released file.

CREATE TABLE departments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- Limits per department.  Usage is never stored: it is counted from the
-- requests (and later VMs) in live states.
CREATE TABLE quotas (
    department_id   INTEGER PRIMARY KEY REFERENCES departments(id),
    vcpus           INTEGER NOT NULL CHECK (vcpus >= 0),
    memory_mib      INTEGER NOT NULL CHECK (memory_mib >= 0),
    disk_gib        INTEGER NOT NULL CHECK (disk_gib >= 0),
    vms             INTEGER NOT NULL CHECK (vms >= 0),
    max_lease_days  INTEGER NOT NULL CHECK (max_lease_days >= 0)
);

-- Bearer tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id             INTEGER PRIMARY KEY,
    secret_sha256  TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('admin','cloudops','netops','auditor','department','agent')),
    department_id  INTEGER REFERENCES departments(id),
    description    TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    revoked_at     TEXT,
    CHECK ((role = 'department') = (department_id IS NOT NULL))
);

CREATE TABLE requests (
    id              INTEGER PRIMARY KEY,
    department_id   INTEGER NOT NULL REFERENCES departments(id),
    name            TEXT NOT NULL,
    state           TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    security_level  INTEGER NOT NULL,
    lease_until     TEXT NOT NULL,
    segment         TEXT NOT NULL,
    ipv6            TEXT NOT NULL,
    -- Totals over the request's VM groups: facts of the request, fixed at
    -- submission, summed for quota usage.
    total_vms         INTEGER NOT NULL,
    total_vcpus       INTEGER NOT NULL,
    total_memory_mib  INTEGER NOT NULL,
    total_disk_gib    INTEGER NOT NULL,
    source          TEXT NOT NULL,          -- the document as submitted
    submitted_by    TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX requests_department ON requests(department_id, id);
CREATE INDEX requests_state ON requests(state, id);
-- A name is unique within its department among requests that are not finished.
CREATE UNIQUE INDEX requests_live_name ON requests(department_id, name)
    WHERE state NOT IN ('rejected', 'withdrawn', 'closed');

CREATE TABLE request_vms (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    count       INTEGER NOT NULL,
    vcpus       INTEGER NOT NULL,
    memory_mib  INTEGER NOT NULL,
    disk_gib    INTEGER NOT NULL,
    image       TEXT NOT NULL,
    UNIQUE (request_id, position)
);

CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    reason      TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX transitions_request ON transitions(request_id, id);

-- Append-only, hash-chained audit trail.  hash = SHA-256 over prev_hash and
-- the length-prefixed fields (see controller/audit.c).
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    object      TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
