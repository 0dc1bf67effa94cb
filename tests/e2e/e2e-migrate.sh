#!/usr/bin/env bash
# e2e-migrate.sh — upgrade: a version-1 database made with the sqlite3 shell
# from schema/yunguan.sql alone (a department, a quota, tokens, a request with
# its VMs and transition, one audit entry) is migrated to the latest version
# on start, and everything in it keeps working; a database newer than the
# daemon knows is refused and left untouched.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_require sqlite3 sha256sum
yg_setup

LATEST=$(ls "$top_srcdir"/schema/migrations/[0-9]*.sql | sed 's|.*/0*\([0-9][0-9]*\)-[^/]*$|\1|' | sort -n | tail -n 1)
[ "$LATEST" -ge 2 ] 2>/dev/null || LATEST=1
diag "latest schema version from schema/migrations: $LATEST"

# ---- a version-1 database, as the first release left it ----
mkdir "$YG_TMP/v1"
DB=$YG_TMP/v1/yunguan.db
DEPT_SECRET=yg_e2e-old-department-token-0001
OPS_SECRET=yg_e2e-old-cloudops-token-0002
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
AT=2026-01-05T08:00:00.000Z
LEASE=$(yg_date_in 60)
AFTER='{"department":"health","disk_gib":80,"memory_mib":8192,"name":"legacy-portal","state":"submitted","vcpus":4,"vms":2}'
HASH1=$(yg_audit_hash "" "$AT" token:1 department request.submit request/1 '\NULL' "$AFTER")
{
    cat "$top_srcdir/schema/yunguan.sql"
    cat <<SQL
PRAGMA user_version = 1;
INSERT INTO departments (id, name, created_at) VALUES (1, 'health', '$AT');
INSERT INTO quotas (department_id, vcpus, memory_mib, disk_gib, vms, max_lease_days)
    VALUES (1, 16, 65536, 1024, 10, 365);
INSERT INTO tokens (id, secret_sha256, role, department_id, description, created_at, created_by)
    VALUES (1, '$(sha "$DEPT_SECRET")', 'department', 1, 'health ops (v1)', '$AT', 'system'),
           (2, '$(sha "$OPS_SECRET")', 'cloudops', NULL, 'cloud ops (v1)', '$AT', 'system');
INSERT INTO requests (id, department_id, name, state, purpose, security_level, lease_until, segment,
                      ipv6, total_vms, total_vcpus, total_memory_mib, total_disk_gib, source,
                      submitted_by, created_at, updated_at)
    VALUES (1, 1, 'legacy-portal', 'submitted', 'A request stored by version 1', 2, '$LEASE',
            'health-dmz', 'preferred', 2, 4, 8192, 80, 'apiVersion: yunguan/v1', 'token:1', '$AT', '$AT');
INSERT INTO request_vms (request_id, position, name, count, vcpus, memory_mib, disk_gib, image)
    VALUES (1, 0, 'web', 2, 2, 4096, 40, 'kylin-server-v10');
INSERT INTO transitions (request_id, from_state, to_state, actor, role, reason, at)
    VALUES (1, NULL, 'submitted', 'token:1', 'department', NULL, '$AT');
INSERT INTO audit (id, at, actor, role, action, object, before, after, prev_hash, hash)
    VALUES (1, '$AT', 'token:1', 'department', 'request.submit', 'request/1', NULL, '$AFTER', '', '$HASH1');
SQL
} | sqlite3 "$DB"
check_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 1 "the sqlite3 shell builds a version-1 database"

yg_daemon_start "$DB" || { not_ok "yunguand starts on the version-1 database"; yg_finish; }
ok "yunguand starts on the version-1 database"
check_match "$(cat "$YG_LOG")" "applied schema migration .*\(version 1 -> [0-9]+\)" "it logs the migration from version 1"
check_match "$(cat "$YG_LOG")" "applied schema migration .*\(version [0-9]+ -> $LATEST\)" "... up to version $LATEST"
check_match "$(cat "$YG_LOG")" "at schema version $LATEST" "it reports the schema version it runs at"

yg "$DEPT_SECRET" --json request list
check_rc 0 "the old department token works"
check_eq "$(jqr '[.items[] | "\(.id) \(.name) \(.state)"] | join(",")')" "1 legacy-portal submitted" \
    "the old request is listed"
yg "$DEPT_SECRET" --json request show 1
check_eq "$(jqr '.request.vms[0] | "\(.name) \(.count) \(.vcpus) \(.memory_mib) \(.disk_gib)"')" "web 2 2 4096 40" \
    "its VMs are there"
check_eq "$(jqr '[.request.transitions[] | "\(.from)>\(.to)"] | join(",")')" "null>submitted" \
    "its transition is there"

yg "$OPS_SECRET" request approve 1
check_rc 0 "the old cloudops token approves the old request"
yg "$DEPT_SECRET" --json quota show health
check_eq "$(jqr '.quota.usage | "\(.vcpus) \(.memory_mib) \(.disk_gib) \(.vms)"')" "4 8192 80 2" \
    "the old request counts against the old quota"

yg "$OPS_SECRET" audit verify
check_rc 1 "cloudops may not verify the audit trail (sanity check of the roles)"
[ -s "$YG_TMP/v1/admin.token" ] && ADMIN=$(cat "$YG_TMP/v1/admin.token")
check_match "${ADMIN:-}" '^yg_' "a first admin token was made (version 1 had none)"
yg "$ADMIN" --json audit list
check_eq "$(jqr '.items[0].hash')" "$HASH1" "the old audit entry is kept as it was"
# Approval also creates the request's VMs (pending, waiting for a host).
check_eq "$(jqr '[.items[].action] | join(",")')" \
    "request.submit,token.create,request.approve,vm.create,vm.create,request.waiting" \
    "new entries follow the old one"
yg "$ADMIN" audit verify
check_rc 0 "audit verify: the migrated trail is intact"
yg "$ADMIN" --json audit verify
check_eq "$(jqr '"\(.ok) \(.entries)"')" "true 6" "... six entries, the old one first"

# Version 2's idempotency table works.
doc=$(yg_request after-upgrade health)
yg "$DEPT_SECRET" request submit --idempotency-key upgrade-1 "$doc"
check_rc 0 "a new submission with an idempotency key works after the upgrade"
yg "$DEPT_SECRET" request submit --idempotency-key upgrade-1 "$doc"
check_match "$(cat "$YG_OUT")" 'already submitted with this idempotency key' "... and is replayed"

yg_daemon_stop
check_eq "$yg_daemon_status" 0 "the daemon stops with status 0"
check_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" "$LATEST" "PRAGMA user_version is now $LATEST"
check_eq "$(sqlite3 "$DB" "SELECT count(*) FROM sqlite_master WHERE name IN ('idempotency_keys', 'audit_head')")" 2 \
    "the version-2 tables exist"
check_eq "$(sqlite3 "$DB" 'SELECT h.last_id = (SELECT max(id) FROM audit) AND h.last_hash = (SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit_head h')" 1 \
    "audit_head names the newest entry"

yg_daemon_start "$DB" || not_ok "yunguand starts again on the migrated database"
check_no_match "$(cat "$YG_LOG")" 'applied schema migration' "a second start migrates nothing"
yg "$ADMIN" audit verify
check_rc 0 "the trail still verifies after the second start"
yg_daemon_stop

# The first audit entry's hash as computed here must be what yunguand
# computes: a wrong one is reported as altered (guards the helper itself).
mkdir "$YG_TMP/badhash"
cp "$YG_TMP/v1/yunguan.db" "$YG_TMP/badhash/yunguan.db"
sqlite3 "$YG_TMP/badhash/yunguan.db" "UPDATE audit SET after = replace(after, '\"vcpus\":4', '\"vcpus\":40') WHERE id = 1"
if yg_daemon_start "$YG_TMP/badhash/yunguan.db"; then
    yg "$ADMIN" --json audit verify
    check_eq "$(jqr '[.problems[] | "\(.id):\(.problem)"] | join(" ")')" "1:altered" \
        "changing the old entry is found (the chain was really checked)"
    yg_daemon_stop
else
    not_ok "yunguand starts on the changed copy"
fi

# ---- a version-11 database with VMs (migration 12: released_at) ----
# Migration 12 moves "does this VM hold resources" from the state into
# released_at; a VM decommissioned before it must not count again.
mkdir "$YG_TMP/v11"
DB11=$YG_TMP/v11/yunguan.db
{
    cat "$top_srcdir/schema/yunguan.sql"
    for m in "$top_srcdir"/schema/migrations/0*.sql; do
        n=$(basename "$m" | sed 's/^0*\([0-9][0-9]*\)-.*/\1/')
        [ "$n" -le 11 ] && cat "$m"
    done
    cat <<SQL
PRAGMA user_version = 11;
INSERT INTO departments (id, name, created_at) VALUES (1, 'health', '$AT');
INSERT INTO quotas (department_id, vcpus, memory_mib, disk_gib, vms, max_lease_days)
    VALUES (1, 16, 65536, 1024, 10, 365);
INSERT INTO tokens (id, secret_sha256, role, department_id, description, created_at, created_by)
    VALUES (1, '$(sha "$DEPT_SECRET")', 'department', 1, 'health ops (v11)', '$AT', 'system');
INSERT INTO requests (id, department_id, name, state, purpose, security_level, lease_until, segment,
                      ipv6, total_vms, total_vcpus, total_memory_mib, total_disk_gib, source,
                      submitted_by, created_at, updated_at)
    VALUES (1, 1, 'two-vms', 'active', 'A request stored by version 11', 2, '$LEASE',
            'health-dmz', 'off', 2, 6, 6144, 60, 'apiVersion: yunguan/v1', 'token:1', '$AT', '$AT');
INSERT INTO vms (id, request_id, department_id, name, group_position, vcpus, memory_mib, disk_gib,
                 image, ipv6_mode, state, lease_until, created_at, updated_at)
    VALUES (1, 1, 1, 'web-1', 0, 2, 2048, 20, 'kylin', 'off', 'running', '$LEASE', '$AT', '$AT'),
           (2, 1, 1, 'web-2', 0, 4, 4096, 40, 'kylin', 'off', 'decommissioned', '$LEASE', '$AT',
            '2026-01-06T09:00:00.000Z');
SQL
} | sqlite3 "$DB11"
check_eq "$(sqlite3 "$DB11" 'PRAGMA user_version')" 11 "the sqlite3 shell builds a version-11 database with two VMs"
if yg_daemon_start "$DB11"; then
    check_match "$(cat "$YG_LOG")" "applied schema migration 012-vms-released.sql \(version 11 -> 12\)" \
        "yunguand migrates it from version 11"
    yg "$DEPT_SECRET" --json quota show health
    check_eq "$(jqr '.quota.usage | "\(.vcpus) \(.memory_mib) \(.disk_gib) \(.vms)"')" "2 2048 20 1" \
        "only the running VM counts against the quota, not the one decommissioned before the upgrade"
    yg_daemon_stop
    check_eq "$(sqlite3 "$DB11" 'SELECT id || ":" || ifnull(released_at, "held") FROM vms ORDER BY id' | tr '\n' ' ')" \
        "1:held 2:2026-01-06T09:00:00.000Z " \
        "released_at: NULL for the running VM, the time it was decommissioned for the other"
    check_eq "$(sqlite3 "$DB11" "SELECT count(*) FROM sqlite_master WHERE name IN ('vms_state', 'vms_host_state', 'vms_department_usage')")" 0 \
        "the state-bearing indexes are gone"
else
    not_ok "yunguand starts on the version-11 database"
fi

# ---- a database from the future ----
mkdir "$YG_TMP/future"
FUTURE=$YG_TMP/future/yunguan.db
{ cat "$top_srcdir/schema/yunguan.sql"; echo "PRAGMA user_version = $((LATEST + 7));"; } | sqlite3 "$FUTURE"
before=$(sha256sum <"$FUTURE")
timeout 20 "$YUNGUAND" --db "$FUTURE" --listen 127.0.0.1:0 2>"$YG_TMP/future.log" </dev/null
status=$?
check_eq "$status" 1 "yunguand refuses to start on a database of version $((LATEST + 7)) (exit 1)"
check_match "$(cat "$YG_TMP/future.log")" "schema version $((LATEST + 7)), newer than this yunguand knows \($LATEST\)" \
    "... with a message naming both versions"
check_eq "$(sha256sum <"$FUTURE")" "$before" "... and the file is untouched"
check_eq "$(ls "$YG_TMP/future")" yunguan.db "... no other file was made beside it"

yg_finish
