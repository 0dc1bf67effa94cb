-- Version 12: whether a VM holds resources, in a column of its own.
-- A VM holds its host's capacity and its department's quota from its
-- creation until it is decommissioned; released_at is NULL until then and
-- is set (once) in the same UPDATE that makes it 'decommissioned'.
--
-- Host load, quota usage and reconcile read the VMs that hold resources.
-- Their indexes had the VM's state in them (005, 004), so each of a VM's
-- five moves in its life rewrote three indexes besides the row.  Partial
-- indexes on released_at are rewritten only when a VM is placed (host_id)
-- and when it is decommissioned.  The lease sweep reads the held VMs in id
-- order from vms_held; the per-state index vms_state served nothing else
-- that needs it (placement finds pending VMs through requests_state and
-- vms_request; /metrics counts by state from vms_request).
ALTER TABLE vms ADD COLUMN released_at TEXT;
UPDATE vms SET released_at = updated_at WHERE state = 'decommissioned';

DROP INDEX IF EXISTS vms_host_state;
DROP INDEX IF EXISTS vms_department_usage;
DROP INDEX IF EXISTS vms_state;
-- released_at last, though always NULL here: with it in the index, SQLite
-- answers the sums from the index alone (covering).
CREATE INDEX vms_held_by_host ON vms(host_id, vcpus, memory_mib, disk_gib, released_at)
    WHERE released_at IS NULL;
CREATE INDEX vms_held_by_department ON vms(department_id, vcpus, memory_mib, disk_gib, released_at)
    WHERE released_at IS NULL;
CREATE INDEX vms_held ON vms(id) WHERE released_at IS NULL;
