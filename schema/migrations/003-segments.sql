-- Version 3: network segments, hosts and their agents, dual-stack readiness.

CREATE TABLE segments (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    vlan          INTEGER CHECK (vlan IS NULL OR vlan BETWEEN 1 AND 4094),
    ipv4_prefix   TEXT NOT NULL,            -- RFC 5952 / dotted text, normalised
    ipv4_gateway  TEXT NOT NULL,
    ipv6_prefix   TEXT,                     -- NULL: no IPv6 plan yet (v4-only)
    ipv6_gateway  TEXT,
    slaac         INTEGER NOT NULL DEFAULT 0,
    interface     TEXT NOT NULL,            -- host bridge / interface name
    target_date   TEXT,                     -- YYYY-MM-DD
    -- Derived from the host reports by controller/readiness.c, recomputed
    -- in the same transaction as any report, waiver or plan change that
    -- affects it (and by the staleness sweep), so that changes can be
    -- noticed (history, audit, the regressed flag) and lists stay cheap.
    state            TEXT NOT NULL DEFAULT 'v4-only',
    regressed        INTEGER NOT NULL DEFAULT 0,
    hosts_ready      INTEGER NOT NULL DEFAULT 0,
    hosts_total      INTEGER NOT NULL DEFAULT 0,
    blocking_reason  TEXT,                  -- the most common reason hosts are held back
    state_since      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    CHECK ((ipv6_prefix IS NULL) = (ipv6_gateway IS NULL))
);

CREATE TABLE segment_departments (
    segment_id  INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    department  TEXT NOT NULL,
    PRIMARY KEY (segment_id, department)
);

CREATE TABLE hosts (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    libvirt_uri     TEXT,
    drained         INTEGER NOT NULL DEFAULT 0,
    last_seq        INTEGER NOT NULL DEFAULT 0,     -- last agent report applied
    last_report_at  TEXT,
    last_report_epoch INTEGER,                      -- freshness of every result of this host
    created_at      TEXT NOT NULL
);
CREATE INDEX hosts_last_report ON hosts(last_report_epoch);

-- Which hosts carry which segment, with their planned addresses.
CREATE TABLE host_segments (
    host_id       INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    segment_id    INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    ipv4_address  TEXT,
    ipv6_address  TEXT,
    -- The latest evaluation the host's agent reported for this segment
    -- (fresh as long as hosts.last_report_epoch is).
    status        TEXT,                     -- pass | warn | fail; NULL: never reported
    checks        TEXT,                     -- JSON array of {check,severity,reason,message}
    changed_at    TEXT,                     -- when status or checks last changed
    PRIMARY KEY (host_id, segment_id)
);
CREATE INDEX host_segments_segment ON host_segments(segment_id, host_id);

-- One-time enrollment secrets (SHA-256) bound to a host.
CREATE TABLE enrollments (
    id             INTEGER PRIMARY KEY,
    host_id        INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    secret_sha256  TEXT NOT NULL UNIQUE,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    expires_epoch  INTEGER NOT NULL,
    used_at        TEXT
);

-- Agent tokens are bound to their host.
ALTER TABLE tokens ADD COLUMN host_id INTEGER REFERENCES hosts(id);

CREATE TABLE waivers (
    id             INTEGER PRIMARY KEY,
    host_id        INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    segment_id     INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    reason         TEXT NOT NULL,
    expires_epoch  INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX waivers_segment ON waivers(segment_id, host_id);

-- Every change of a segment's readiness state, for progress over time.
CREATE TABLE segment_history (
    id           INTEGER PRIMARY KEY,
    segment_id   INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    hosts_ready  INTEGER NOT NULL,
    hosts_total  INTEGER NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX segment_history_segment ON segment_history(segment_id, id);

-- IPv6 prefixes handed out from parent prefixes.
CREATE TABLE prefix_allocations (
    id          INTEGER PRIMARY KEY,
    parent      TEXT NOT NULL,
    prefix      TEXT NOT NULL UNIQUE,
    segment_id  INTEGER REFERENCES segments(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);
