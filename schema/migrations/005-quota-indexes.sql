-- Version 5: quota usage read from indexes alone.  Usage is summed at every
-- submission (the warning) and approval; with the totals in the index the
-- sum reads only index pages, not the requests' rows (which carry the
-- submitted document), however many requests the department has.

DROP INDEX IF EXISTS requests_department_state;
CREATE INDEX requests_department_state
    ON requests(department_id, state, id, total_vcpus, total_memory_mib, total_disk_gib, total_vms);

CREATE INDEX vms_department_usage
    ON vms(department_id, state, vcpus, memory_mib, disk_gib);
