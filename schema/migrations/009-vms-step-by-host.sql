-- Version 9: the journal's index by host.
-- The engine hands each idle host a batch of its VMs whose journal has a
-- step to run, oldest first.  With the index keyed by (host, id) that is a
-- range read per idle host; keyed by the step text it was every journalled
-- VM of every host, joined to its host and sorted, at each dispatch.  Still
-- partial: only VMs with a step under way are in it.
DROP INDEX IF EXISTS vms_step;
CREATE INDEX vms_step ON vms(host_id, id) WHERE step IS NOT NULL;
