#!/usr/bin/env bash
# e2e-audit.sh — the audit trail: every state change leaves one entry, the
# chain verifies, and tampering with the SQLite file while the daemon is down
# (an altered entry, a deleted middle entry, two entries swapped, the newest
# entry deleted) is found and named after a restart.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_require sqlite3
yg_setup

mkdir "$YG_TMP/db"
DB=$YG_TMP/db/yunguan.db
yg_daemon_start "$DB" || { not_ok "yunguand starts"; yg_finish; }
ok "yunguand starts"

# ---- some activity ----
yg_set_quota "$ADMIN" health 64 256GiB 4TiB 20 &&
HEALTH=$(yg_new_token "$ADMIN" department health) &&
OPS=$(yg_new_token "$ADMIN" cloudops) &&
AUDITOR=$(yg_new_token "$ADMIN" auditor) &&
SPARE=$(yg_new_token "$ADMIN" netops)
check_eq "$?" 0 "admin sets a quota and creates four tokens"
ids=
for name in alpha beta gamma; do
    yg "$HEALTH" --json request submit "$(yg_request "$name" health)"
    ids="$ids $(jqr .request.id)"
done
read -r R1 R2 R3 <<<"$ids"
yg "$OPS" request approve "$R1" && a=$rc
yg "$OPS" request reject "$R2" --reason "not this year" && b=$rc
yg "$HEALTH" request withdraw "$R3" && c=$rc
check_eq "$a $b $c" "0 0 0" "cloudops approves and rejects, health withdraws"
api GET /api/v1/segments "$SPARE"
check_status 200 "the netops token is accepted (and remembered by the daemon's principal cache)"
yg "$ADMIN" --json token list
yg "$ADMIN" token revoke "$(jqr '.items[] | select(.role == "netops") | .id')"
check_rc 0 "admin revokes a token"
api GET /api/v1/segments "$SPARE"
check_status 401 "the revoked token is refused at once"
yg_set_quota "$ADMIN" health 32 128GiB 2TiB 10
check_rc 0 "admin changes the quota"
# Refused attempts change nothing and leave no entry.
yg "$OPS" request approve "$R2"
yg "$HEALTH" request approve "$R3"
yg "$SPARE" request list
yg "$OPS" --json request approve "$R1"
check_eq "$rc $(jqr .error.code)" "1 illegal_transition" "refused attempts are refused"

# ---- every state change left exactly one entry ----
yg "$AUDITOR" --json audit list --all
check_rc 0 "the auditor reads the whole trail"
cp "$YG_OUT" "$YG_TMP/trail.json"
by_action=$(jq -r '[.items[].action] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$YG_TMP/trail.json")
check_eq "$by_action" \
    "department.create=1 quota.set=2 request.approve=1 request.reject=1 request.submit=3 request.waiting=1 request.withdraw=1 token.create=5 token.revoke=1 vm.create=1" \
    "one entry per state change, counted by action"
check_eq "$(jq -r '[.items[].id] | (. == [range(1; length + 1)])' "$YG_TMP/trail.json")" true \
    "entry ids run 1, 2, 3, … without gaps"
for id in $R1 $R2 $R3; do
    yg "$AUDITOR" --json request show "$id"
    transitions=$(jqr '[.request.transitions[].to] | join(",")')
    # request.waiting notes the placement outcome; it changes no state.
    entries=$(jq -r --arg o "request/$id" \
              '[.items[] | select(.object == $o and .action != "request.waiting") | .after.state] | join(",")' \
              "$YG_TMP/trail.json")
    check_eq "$entries" "$transitions" "request $id: one audit entry per transition ($transitions)"
done
check_eq "$(jq -r ".items[] | select(.action == \"request.approve\") | \"\(.object) \(.actor) \(.role) \(.before.state)>\(.after.state)\"" \
            "$YG_TMP/trail.json")" "request/$R1 token:3 cloudops submitted>approved" \
    "the approval entry names the object, the actor, the role and the change"
check_eq "$(jq -r '.items[] | select(.action == "request.reject") | .after.reason' "$YG_TMP/trail.json")" \
    "not this year" "the rejection entry keeps the reason"

total=$(jq '.items | length' "$YG_TMP/trail.json")
check_eq "$total" 17 "seventeen entries in all (with the approved request's VM and its wait for a host)"
yg "$AUDITOR" audit verify
check_rc 0 "yunguan audit verify exits 0 on the intact trail"
check_match "$(cat "$YG_OUT")" "^Audit trail intact: $total entries verified" "... and says how many entries it verified"
yg "$AUDITOR" --json audit verify
check_eq "$(jqr '"\(.ok) \(.entries) \(.problems | length)"')" "true $total 0" "... --json: ok, all entries, no problems"
# The head, as an auditor records it outside yunguan.
HEAD_ID=$(jqr .head.id)
HEAD_HASH=$(jqr .head.hash)
check_eq "$HEAD_ID" "$(jq -r '.items[-1].id' "$YG_TMP/trail.json")" "... and the head is the last entry"
yg "$AUDITOR" audit verify
check_match "$(cat "$YG_OUT")" "^Head: entry $HEAD_ID, hash $HEAD_HASH$" "the text output shows the head to record"
yg "$AUDITOR" audit verify --anchor "$HEAD_ID:$HEAD_HASH"
check_rc 0 "verify with the recorded head as anchor exits 0"
check_match "$(cat "$YG_OUT")" "^1 anchor recorded earlier still holds" "... and says the anchor holds"
yg "$AUDITOR" audit verify --anchor "$HEAD_ID:nothex"
check_rc 2 "a malformed anchor is a usage error"
api GET "/api/v1/audit/verify?anchor=$HEAD_ID:abc" "$AUDITOR"
check_status 400 "... and the API refuses a short hash (400)"
check_match "$(jqr .error.message "$YG_BODY")" "is not ENTRY_ID:HASH" "... saying what an anchor looks like"

yg_daemon_stop
check_eq "$yg_daemon_status" 0 "the daemon stops on SIGTERM with status 0"
sqlite3 "$DB" ".backup '$YG_TMP/pristine.db'" || diag "cannot copy the database"

# The ids of some entries, for tampering.
entry_id() { jq -r "[.items[] | select($1) | .id][0]" "$YG_TMP/trail.json"; }
REJECT=$(entry_id '.action == "request.reject"')
APPROVE=$(entry_id '.action == "request.approve"')
SUBMIT1=$(entry_id '.action == "request.submit"')
REVOKE=$(entry_id '.action == "token.revoke"')
LAST=$(jq -r '.items[-1].id' "$YG_TMP/trail.json")

# tampered CASE SQL: a fresh copy of the intact database, changed with the
# sqlite3 shell, then yunguand restarted on it and the trail verified.
tampered()
{
    mkdir -p "$YG_TMP/$1"
    cp "$YG_TMP/pristine.db" "$YG_TMP/$1/yunguan.db"
    sqlite3 "$YG_TMP/$1/yunguan.db" "$2" || diag "sqlite3 failed on case $1"
    yg_daemon_start "$YG_TMP/$1/yunguan.db" || { not_ok "yunguand starts on the tampered copy ($1)"; return 1; }
    yg "$AUDITOR" audit verify
    cp "$YG_OUT" "$YG_TMP/$1/verify.txt"
    verify_rc=$rc
    yg "$AUDITOR" --json audit verify
    problems=$(jqr '[.problems[] | "\(.id):\(.problem)"] | join(" ")')
}

# (a) one entry's 'after' altered
tampered altered "UPDATE audit SET after = '{\"state\":\"approved\"}' WHERE id = $REJECT;"
check_eq "$verify_rc" 1 "(a) an altered entry: verify exits 1"
check_match "$(cat "$YG_TMP/altered/verify.txt")" "^ *$REJECT +altered " "(a) ... and names entry $REJECT as 'altered'"
check_eq "$problems" "$REJECT:altered" "(a) ... that is the only problem"
yg_daemon_stop

# (b) a middle entry deleted
tampered deleted "DELETE FROM audit WHERE id = $APPROVE;"
check_eq "$verify_rc" 1 "(b) a deleted middle entry: verify exits 1"
check_match "$(cat "$YG_TMP/deleted/verify.txt")" "^ *$APPROVE +deleted " "(b) ... and names entry $APPROVE as 'deleted'"
check_eq "$problems" "$APPROVE:deleted" "(b) ... that is the only problem"
yg_daemon_stop

# (c) two entries' content swapped (every column but id)
cols="at, actor, role, action, object, before, after, prev_hash, hash"
tampered swapped "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN ($SUBMIT1, $REVOKE);
UPDATE audit SET ($cols) = (SELECT $cols FROM t WHERE t.id = $SUBMIT1 + $REVOKE - audit.id)
  WHERE id IN ($SUBMIT1, $REVOKE);"
check_eq "$verify_rc" 1 "(c) two entries swapped: verify exits 1"
for id in $SUBMIT1 $REVOKE; do
    check_match "$(cat "$YG_TMP/swapped/verify.txt")" "^ *$id +(reordered|altered) " \
        "(c) ... entry $id is named 'reordered' or 'altered'"
done
check_no_match "$problems" '(^| )[0-9]+:deleted' "(c) ... nothing is called deleted ($problems)"
yg_daemon_stop

# (d) the newest entry deleted
tampered newest "DELETE FROM audit WHERE id = $LAST;"
check_eq "$verify_rc" 1 "(d) the newest entry deleted: verify exits 1"
check_eq "$problems" "$LAST:deleted" "(d) ... naming entry $LAST as deleted"
# The daemon must not paper over the hole with the next entry.
yg "$ADMIN" quota set health --vcpus 16 --memory 64GiB --disk 1TiB --vms 5 --max-lease-days 365
check_rc 0 "(d) a change after the restart is stored"
yg "$AUDITOR" --json audit verify
check_eq "$(jqr .ok)" false "(d) ... and the deletion is still reported after new entries"
check_match "$(jqr '[.problems[] | "\(.id):\(.problem)"] | join(" ")')" "(^| )$LAST:deleted( |$)" \
    "(d) ... naming entry $LAST"
yg_daemon_stop

# (e) the whole trail rewritten: every entry and the head replaced, then a
# new, self-consistent chain written (here by the daemon itself).  The chain
# alone cannot tell; the anchor recorded before can.
tampered rewritten "DELETE FROM audit; UPDATE audit_head SET last_id = 0, last_hash = '';"
check_eq "$verify_rc" 0 "(e) a trail emptied with its head: the chain alone finds nothing"
k=0
while [ $k -lt "$HEAD_ID" ]; do
    yg "$ADMIN" quota set health --vcpus $((k + 1)) --memory 64GiB --disk 1TiB --vms 5 --max-lease-days 365 ||
        { not_ok "(e) quota set $k"; break; }
    k=$((k + 1))
done
yg "$AUDITOR" audit verify
check_rc 0 "(e) the rewritten trail of $HEAD_ID entries verifies as a chain"
yg "$AUDITOR" audit verify --anchor "$HEAD_ID:$HEAD_HASH"
check_rc 1 "(e) ... but not against the anchor recorded before: verify exits 1"
check_match "$(cat "$YG_OUT")" "^ *$HEAD_ID +rewritten +entry $HEAD_ID has the hash" "(e) ... naming entry $HEAD_ID as 'rewritten'"
yg "$AUDITOR" audit verify --anchor "$((HEAD_ID + 50)):$HEAD_HASH"
check_rc 1 "(e) an anchor past the end of the trail fails too (the trail was cut)"
yg_daemon_stop

# The intact copy still verifies (the cases really started from intact trails).
mkdir "$YG_TMP/intact"
cp "$YG_TMP/pristine.db" "$YG_TMP/intact/yunguan.db"
if yg_daemon_start "$YG_TMP/intact/yunguan.db"; then
    yg "$AUDITOR" audit verify
    check_rc 0 "the untouched copy verifies"
    yg_daemon_stop
else
    not_ok "yunguand starts on the untouched copy"
fi

yg_finish
