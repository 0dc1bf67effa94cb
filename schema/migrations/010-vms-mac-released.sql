-- Version 10: a decommissioned VM gives its MAC back with its addresses.
-- The MAC stays in the VM's reclaim record (freed.addresses.mac).  The
-- index of MACs in use then needs no condition on the state, so a VM's
-- moves between states no longer rewrite its entry (every move did: the
-- condition "state <> 'decommissioned'" read the state).
UPDATE vms SET mac = NULL WHERE state = 'decommissioned';
DROP INDEX IF EXISTS vms_mac;
CREATE UNIQUE INDEX vms_mac ON vms(mac) WHERE mac IS NOT NULL;
