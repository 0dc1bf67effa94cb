-- Version 7: playbook runs (doc/PLAYBOOKS.md "Runs") and their per-host
-- tasks (doc/AGENT.md "Playbook tasks").  controller/playbook-run.c owns
-- both tables; every change of state is one transaction with its audit
-- entries, so a restarted controller carries on from here.
CREATE TABLE playbook_runs (
    id              INTEGER PRIMARY KEY,
    playbook        TEXT NOT NULL,              -- metadata.name
    playbook_sha256 TEXT NOT NULL,              -- of playbook_text
    playbook_text   TEXT NOT NULL,              -- the exact YAML the run used
    segment_id      INTEGER NOT NULL REFERENCES segments(id),
    segment         TEXT NOT NULL,              -- its name when the run was made
    mode            TEXT NOT NULL CHECK (mode IN ('check', 'apply')),
    params          TEXT NOT NULL,              -- JSON object, values as given
    batch_size      INTEGER NOT NULL CHECK (batch_size >= 1),
    canary          TEXT,                       -- host name (apply only)
    batches         INTEGER NOT NULL,           -- batch numbers 0 .. batches-1
    current_batch   INTEGER NOT NULL DEFAULT 0, -- the newest batch released
    state           TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    message         TEXT,                       -- why it stopped / ended
    created_by      TEXT NOT NULL,
    created_role    TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX playbook_runs_segment ON playbook_runs(segment, id);
CREATE INDEX playbook_runs_state ON playbook_runs(state, id);

-- One row per host of a run; its id is the task id agents see.
CREATE TABLE playbook_tasks (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES playbook_runs(id),
    host_id         INTEGER NOT NULL REFERENCES hosts(id),
    host            TEXT NOT NULL,
    batch           INTEGER NOT NULL,           -- 0: canary (apply) or every host (check)
    state           TEXT NOT NULL CHECK (state IN ('waiting', 'sent', 'running', 'succeeded',
                                                   'failed', 'unknown', 'skipped', 'cancelled')),
    segment_json    TEXT NOT NULL,              -- segment + plan the steps were rendered from
    steps           TEXT NOT NULL,              -- rendered steps (JSON array)
    step_wait_seconds INTEGER NOT NULL,         -- longest bounded wait of one step
    results         TEXT,                       -- the agent's step results (JSON array)
    rolled_back     INTEGER,
    rollback_ok     INTEGER,
    message         TEXT,
    released_at     TEXT,                       -- its batch started: may be fetched
    sent_at         TEXT,
    started_at      TEXT,                       -- as the agent reported
    finished_at     TEXT,
    updated_at      TEXT NOT NULL,
    -- While released and not finished: when the host is given up as
    -- 'unknown' unless it fetches or reports progress first.
    deadline_epoch  INTEGER,
    late_result     TEXT,                       -- a result that came after 'unknown'
    UNIQUE (run_id, host_id)
);
CREATE INDEX playbook_tasks_run ON playbook_tasks(run_id, batch, host);
-- The agent's fetch: its released, undelivered tasks.
CREATE INDEX playbook_tasks_host ON playbook_tasks(host_id, state);
-- The timeout sweep.
CREATE INDEX playbook_tasks_deadline ON playbook_tasks(deadline_epoch) WHERE deadline_epoch IS NOT NULL;
