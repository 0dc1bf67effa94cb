-- Version 6: the audit entries of one object (a VM's history, read with
-- every 'yunguan vm show') from an index, not a scan of the whole trail.
CREATE INDEX audit_object ON audit(object, id);
