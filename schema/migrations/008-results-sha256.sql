-- Version 8: compact agent heartbeats (doc/AGENT.md, "Heartbeats").
-- The agent's SHA-256 of the results last applied for the host; a heartbeat
-- that carries only this hash refreshes the stored results when it matches.
-- NULL: unknown (no report yet, a full report without a hash, or the plan
-- changed since): a hash-only heartbeat is then answered with a resync.
ALTER TABLE hosts ADD COLUMN results_sha256 TEXT;

-- What the agent evaluates changed: its stored fingerprint no longer
-- vouches for the stored results, so its next heartbeat must be full (and
-- the resync answer makes it fetch the new desired state first).
CREATE TRIGGER host_segments_added_forget_results AFTER INSERT ON host_segments
BEGIN
    UPDATE hosts SET results_sha256 = NULL WHERE id = NEW.host_id;
END;
CREATE TRIGGER host_segments_removed_forget_results AFTER DELETE ON host_segments
BEGIN
    UPDATE hosts SET results_sha256 = NULL WHERE id = OLD.host_id;
END;
CREATE TRIGGER host_segments_plan_forget_results
AFTER UPDATE OF host_id, segment_id, ipv4_address, ipv6_address ON host_segments
WHEN OLD.host_id IS NOT NEW.host_id OR OLD.segment_id IS NOT NEW.segment_id
  OR OLD.ipv4_address IS NOT NEW.ipv4_address OR OLD.ipv6_address IS NOT NEW.ipv6_address
BEGIN
    UPDATE hosts SET results_sha256 = NULL WHERE id IN (OLD.host_id, NEW.host_id);
END;
CREATE TRIGGER segments_plan_forget_results
AFTER UPDATE OF name, interface, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, slaac ON segments
WHEN OLD.name IS NOT NEW.name OR OLD.interface IS NOT NEW.interface
  OR OLD.ipv4_prefix IS NOT NEW.ipv4_prefix OR OLD.ipv4_gateway IS NOT NEW.ipv4_gateway
  OR OLD.ipv6_prefix IS NOT NEW.ipv6_prefix OR OLD.ipv6_gateway IS NOT NEW.ipv6_gateway
  OR OLD.slaac IS NOT NEW.slaac
BEGIN
    UPDATE hosts SET results_sha256 = NULL
     WHERE id IN (SELECT host_id FROM host_segments WHERE segment_id = NEW.id);
END;
