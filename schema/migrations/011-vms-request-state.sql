-- Version 11: a request's VMs indexed with their state.
-- A request's state follows its VMs' (vms_request_check(): active when
-- none is pending or provisioning, failed on an error, closed when all are
-- decommissioned), and that count runs each time its VMs move (twice per
-- VM in a VM's life).  With the state in the index the count reads index
-- entries only, not every VM row of the request.  SQLite ends every index
-- with the rowid, so a request's VMs of one state still come in id order.
DROP INDEX IF EXISTS vms_request;
CREATE INDEX vms_request ON vms(request_id, state);
