#!/usr/bin/env bash
# e2e-quota.sh — quotas: a submission over quota is stored with a warning,
# an approval over quota is refused naming the resource, two concurrent
# approvals with room for one let exactly one through (ten rounds), and a
# withdrawn approval gives its quota back.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_setup

mkdir "$YG_TMP/db"
yg_daemon_start "$YG_TMP/db/yunguan.db" || { not_ok "yunguand starts"; yg_finish; }
ok "yunguand starts"

yg_set_quota "$ADMIN" health 8 64GiB 1TiB 10 &&
yg_set_quota "$ADMIN" race 4 4GiB 40GiB 1 &&
HEALTH=$(yg_new_token "$ADMIN" department health) &&
RACE=$(yg_new_token "$ADMIN" department race) &&
OPS=$(yg_new_token "$ADMIN" cloudops)
check_eq "$?" 0 "admin sets quotas and creates the tokens"

# usage DEPT: "vcpus memory_mib disk_gib vms" in use
usage()
{
    yg "$OPS" --json quota show "$1"
    jqr '.quota.usage | "\(.vcpus) \(.memory_mib) \(.disk_gib) \(.vms)"'
}

# ---- over quota at submission: stored, with a warning ----
yg "$HEALTH" --json request submit "$(yg_request too-big health 6 2)"
check_rc 0 "a request over quota (12 vCPUs, limit 8) is accepted at submission"
BIG=$(jqr .request.id)
check_eq "$(jqr .request.state)" submitted "... and stored as submitted"
check_match "$(jqr '.warnings | join("\n")')" "vcpus quota of department 'health'" \
    "... with a warning naming the vcpus quota in --json 'warnings'"
check_eq "$(jqr '.warnings | length')" 1 "... only vcpus is over (one warning)"
yg "$HEALTH" request submit "$(yg_request too-big-2 health 6 2)"
check_match "$(cat "$YG_ERR")" '^yunguan: warning: .*vcpus' "people see the warning on stderr"
yg "$HEALTH" --json request submit "$(yg_request fits health 2 1)"
check_eq "$(jqr '.warnings | length')" 0 "a request that fits gets no warning"
FITS=$(jqr .request.id)

# ---- over quota at approval: refused, naming the resource ----
yg "$OPS" request approve "$BIG"
check_rc 1 "approving the request over quota is refused"
check_match "$(cat "$YG_ERR")" 'quota.*vcpus' "... the refusal names the vcpus quota"
yg "$OPS" --json request approve "$BIG"
check_eq "$(jqr .error.code)" quota_exceeded "... code quota_exceeded"
check_eq "$(jqr '[.error.details[].path] | join(",")')" quota.vcpus "... one detail, path quota.vcpus"
check_match "$(jqr '.error.details[0].message')" 'needs 12, limit 8, in use 0' "... saying what it needs, the limit and the use"
yg "$OPS" --json request show "$BIG"
check_eq "$(jqr .request.state)" submitted "... and the request stays submitted"
check_eq "$(usage health)" "0 0 0 0" "nothing is in use"

# ---- approval takes quota, withdrawal gives it back ----
yg "$OPS" request approve "$FITS"
check_rc 0 "approving a request that fits succeeds"
check_eq "$(usage health)" "2 4096 40 1" "its resources are now in use"
yg "$OPS" --json request approve "$BIG"
check_match "$(jqr '.error.details[0].message')" 'needs 12, limit 8, in use 2' "the use counts in the next refusal"
yg "$HEALTH" request withdraw "$FITS"
check_rc 0 "the department withdraws its approved request"
check_eq "$(usage health)" "0 0 0 0" "the quota is credited back at once"

# ---- the race: room for one, two approvals at once; ten rounds ----
race_ok=0
for round in 1 2 3 4 5 6 7 8 9 10; do
    yg "$RACE" --json request submit "$(yg_request "r$round-a" race 4 1)"
    A=$(jqr .request.id)
    yg "$RACE" --json request submit "$(yg_request "r$round-b" race 4 1)"
    B=$(jqr .request.id)
    yg_burst_prepare
    yg_burst_add yg_curl "$YG_TMP/race.a" POST "/api/v1/requests/$A/approve" "$OPS" \
        -H 'Content-Type: application/json' --data '{}'
    yg_burst_add yg_curl "$YG_TMP/race.b" POST "/api/v1/requests/$B/approve" "$OPS" \
        -H 'Content-Type: application/json' --data '{}'
    yg_burst_go
    yg_burst_wait
    statuses=$(yg_burst_outputs | sort | tr '\n' ' ')
    check_eq "$statuses" "200 409 " "round $round: two concurrent approvals, one 200 and one 409" || continue
    if [ "$(head -c 3 "$YG_TMP/burst.0.out")" = 409 ]; then
        loser=$YG_TMP/race.a winner=$B
    else
        loser=$YG_TMP/race.b winner=$A
    fi
    check_eq "$(jqr .error.code "$loser")" quota_exceeded "round $round: the 409 is quota_exceeded" || continue
    check_eq "$(usage race)" "4 4096 40 1" "round $round: use equals the limit, not above" || continue
    # Withdrawing the winner frees the quota for the next round.
    yg "$RACE" request withdraw "$winner"
    [ "$rc" = 0 ] || { not_ok "round $round: the winner is withdrawn"; continue; }
    race_ok=$((race_ok + 1))
done
check_eq "$race_ok" 10 "all ten rounds: exactly one approval within the quota"
yg "$OPS" --json request list --department race --state approved
check_eq "$(jqr '.items | length')" 0 "no approved request of 'race' is left (each winner withdrawn)"
yg "$OPS" --json request list --department race --state withdrawn
check_eq "$(jqr '.items | length')" 10 "ten winners were withdrawn"
check_eq "$(usage race)" "0 0 0 0" "nothing of 'race' is in use at the end"

yg_finish
