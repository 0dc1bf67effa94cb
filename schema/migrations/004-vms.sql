-- Version 4: VMs through libvirt — hypervisor hosts with their capacity,
-- VMs with a step journal, reclaim records, decommission requests, lease
-- policies (controller/hypervisor.c, hosts.c, vms.c, placement.c).

-- A host is a hypervisor once it has a libvirt URI and a storage pool
-- (rows made by segment lists have neither until 'yunguan host add').
ALTER TABLE hosts ADD COLUMN storage_pool TEXT;
ALTER TABLE hosts ADD COLUMN registered_at TEXT;
-- Capacity as libvirt last reported it (virNodeGetInfo, virStoragePoolGetInfo).
ALTER TABLE hosts ADD COLUMN cpus INTEGER;
ALTER TABLE hosts ADD COLUMN memory_mib INTEGER;
ALTER TABLE hosts ADD COLUMN disk_gib INTEGER;
ALTER TABLE hosts ADD COLUMN disk_available_gib INTEGER;
ALTER TABLE hosts ADD COLUMN capacity_at TEXT;
-- Whether the controller can reach the host's libvirt: up | down | unknown.
ALTER TABLE hosts ADD COLUMN hv_status TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE hosts ADD COLUMN hv_error TEXT;
ALTER TABLE hosts ADD COLUMN hv_status_at TEXT;

-- Why an approved request is still waiting for placement (NULL: it is not).
ALTER TABLE requests ADD COLUMN waiting_reason TEXT;

-- Facts about this store.  'instance' is a random tag in every libvirt
-- name this store makes (yg-INSTANCE-vm-ID), so that two stores sharing a
-- hypervisor never take each other's domains or volumes.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
INSERT INTO settings (key, value) VALUES ('instance', lower(hex(randomblob(4))));

-- One row per VM of an approved request (a group of count N gives N rows).
-- Resources are counted for quotas from the rows not 'decommissioned'.
CREATE TABLE vms (
    id              INTEGER PRIMARY KEY,
    request_id      INTEGER NOT NULL REFERENCES requests(id),
    department_id   INTEGER NOT NULL REFERENCES departments(id),
    name            TEXT NOT NULL,          -- group name and ordinal: web-1
    group_position  INTEGER NOT NULL,
    vcpus           INTEGER NOT NULL,
    memory_mib      INTEGER NOT NULL,
    disk_gib        INTEGER NOT NULL,
    image           TEXT NOT NULL,
    ipv6_mode       TEXT NOT NULL,          -- required | preferred | off
    segment_id      INTEGER REFERENCES segments(id),
    host_id         INTEGER REFERENCES hosts(id),
    state           TEXT NOT NULL,
    -- The step journal: the libvirt step about to run, written (and
    -- committed) before it runs; NULL when nothing is under way.
    step            TEXT,
    step_at         TEXT,
    step_retry_epoch INTEGER,               -- after a failed step: not before then
    error           TEXT,                   -- libvirt's message for 'error'
    domain_name     TEXT UNIQUE,
    domain_uuid     TEXT UNIQUE,
    volume          TEXT,
    mac             TEXT,
    ipv4            TEXT,
    ipv6            TEXT,
    wipe_method     TEXT,                   -- set by the wipe step
    lease_until     TEXT NOT NULL,          -- YYYY-MM-DD, from the request
    lease_state     TEXT,                   -- NULL | notice | expired
    lease_notice_at TEXT,
    decommission_by TEXT,                   -- who asked for it
    decommission_approved_by TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX vms_request ON vms(request_id, id);
CREATE INDEX vms_department ON vms(department_id, id);
CREATE INDEX vms_host_state ON vms(host_id, state);
CREATE INDEX vms_state ON vms(state, id);
CREATE INDEX vms_step ON vms(step) WHERE step IS NOT NULL;
-- Addresses are unique on their segment while held; released ones are NULL.
CREATE UNIQUE INDEX vms_ipv4 ON vms(segment_id, ipv4) WHERE ipv4 IS NOT NULL;
CREATE UNIQUE INDEX vms_ipv6 ON vms(segment_id, ipv6) WHERE ipv6 IS NOT NULL;
CREATE UNIQUE INDEX vms_mac ON vms(mac) WHERE mac IS NOT NULL AND state <> 'decommissioned';

-- What a decommissioned VM gave back: one per VM.
CREATE TABLE reclaims (
    id             INTEGER PRIMARY KEY,
    vm_id          INTEGER NOT NULL UNIQUE REFERENCES vms(id),
    host           TEXT,
    domain_name    TEXT,
    freed          TEXT NOT NULL,          -- JSON: resources, volumes, addresses
    wipe_method    TEXT NOT NULL,
    requested_by   TEXT NOT NULL,
    approved_by    TEXT,
    at             TEXT NOT NULL
);

-- A department asks, cloud operations decides (policy: decommission_approval).
CREATE TABLE decommission_requests (
    id            INTEGER PRIMARY KEY,
    vm_id         INTEGER NOT NULL REFERENCES vms(id),
    state         TEXT NOT NULL CHECK (state IN ('pending','approved','rejected')),
    requested_by  TEXT NOT NULL,
    reason        TEXT,
    decided_by    TEXT,
    decision_reason TEXT,
    created_at    TEXT NOT NULL,
    decided_at    TEXT
);
CREATE UNIQUE INDEX decommission_requests_pending ON decommission_requests(vm_id) WHERE state = 'pending';

-- Lease expiry per department: a notice N days before, stop at expiry,
-- decommission after the grace period.
CREATE TABLE lease_policies (
    department_id  INTEGER PRIMARY KEY REFERENCES departments(id),
    notice_days    INTEGER NOT NULL CHECK (notice_days >= 0),
    grace_days     INTEGER NOT NULL CHECK (grace_days >= 0),
    updated_at     TEXT NOT NULL
);
