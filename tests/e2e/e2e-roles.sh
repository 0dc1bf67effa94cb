#!/usr/bin/env bash
# e2e-roles.sh — who may do what: departments see and change only their own
# requests and never approve; the auditor reads the audit trail but decides
# nothing; netops does not submit; only the admin makes tokens and quotas; a
# revoked token stops working at once.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_setup

mkdir "$YG_TMP/db"
yg_daemon_start "$YG_TMP/db/yunguan.db" || { not_ok "yunguand starts"; yg_finish; }
ok "yunguand starts"

yg_set_quota "$ADMIN" health 64 256GiB 4TiB 20 &&
yg_set_quota "$ADMIN" police 64 256GiB 4TiB 20 &&
HEALTH=$(yg_new_token "$ADMIN" department health) &&
HEALTH2=$(yg_new_token "$ADMIN" department health) &&
POLICE=$(yg_new_token "$ADMIN" department police) &&
OPS=$(yg_new_token "$ADMIN" cloudops) &&
NETOPS=$(yg_new_token "$ADMIN" netops) &&
AUDITOR=$(yg_new_token "$ADMIN" auditor)
check_eq "$?" 0 "admin sets up two departments and a token per role"

yg "$POLICE" --json request submit "$(yg_request patrol-cams police)"
P1=$(jqr .request.id)
yg "$POLICE" --json request submit "$(yg_request case-files police)"
P2=$(jqr .request.id)
yg "$HEALTH" --json request submit "$(yg_request clinic-portal health)"
H1=$(jqr .request.id)
check_match "$P1 $P2 $H1" '^[0-9]+ [0-9]+ [0-9]+$' "police submits two requests, health one"

# ---- a department sees only its own ----
yg "$HEALTH" --json request list
check_rc 0 "health lists requests"
check_eq "$(jqr '[.items[].department] | unique | join(",")')" health "health's list holds only health's requests"
check_eq "$(jqr "[.items[] | select(.id == $P1 or .id == $P2)] | length")" 0 "none of police's requests is in health's list"
yg "$HEALTH" request list --department police
check_rc 1 "health cannot list police's requests by name (refused)"
api GET "/api/v1/requests?department=police" "$HEALTH"
check_status 403 "... the API answers 403"
yg "$HEALTH" request show "$P1"
check_rc 1 "health cannot show police's request"
api GET "/api/v1/requests/$P1" "$HEALTH"
check_status 404 "... the API answers 404, as if it did not exist"
api GET "/api/v1/requests/999999" "$HEALTH"
nonexistent=$(jqr .error.message "$YG_BODY")
api GET "/api/v1/requests/$P1" "$HEALTH"
check_eq "$(jqr .error.message "$YG_BODY" | sed "s/$P1/N/")" "$(printf '%s' "$nonexistent" | sed 's/999999/N/')" \
    "... with the same message as for a request that does not exist"
yg "$OPS" --json request list
check_eq "$(jqr "[.items[] | select(.id == $P1 or .id == $P2 or .id == $H1)] | length")" 3 \
    "cloudops sees every department's requests"

# ---- a department changes only its own, and never approves ----
yg "$HEALTH" request approve "$P1"
check_rc 1 "health cannot approve police's request"
api POST "/api/v1/requests/$P1/approve" "$HEALTH" -H 'Content-Type: application/json' --data '{}'
check_status 403 "... 403"
yg "$HEALTH" request withdraw "$P1"
check_rc 1 "health cannot withdraw police's request"
api POST "/api/v1/requests/$P1/withdraw" "$HEALTH" -H 'Content-Type: application/json' --data '{}'
check_status 404 "... 404 (another department's request is not visible)"
yg "$HEALTH" request approve "$H1"
check_rc 1 "health cannot approve its own request"
api POST "/api/v1/requests/$H1/approve" "$HEALTH" -H 'Content-Type: application/json' --data '{}'
check_status 403 "... 403"
check_eq "$(jqr .error.code "$YG_BODY")" forbidden "... code forbidden"
yg "$HEALTH" request reject "$H1" --reason "self-service"
check_rc 1 "health cannot reject its own request"
yg "$OPS" --json request show "$P1"
check_eq "$(jqr .request.state)" submitted "police's request is still submitted"
yg "$OPS" --json request show "$H1"
check_eq "$(jqr .request.state)" submitted "health's request is still submitted"

# ---- the auditor reads, but decides nothing ----
yg "$AUDITOR" --json audit list
check_rc 0 "the auditor lists the audit trail"
check_match "$(jqr '.items | length')" '^[1-9][0-9]*$' "... and it has entries"
yg "$AUDITOR" audit verify
check_rc 0 "the auditor verifies the audit trail"
yg "$AUDITOR" request approve "$P2"
check_rc 1 "the auditor cannot approve"
api POST "/api/v1/requests/$P2/approve" "$AUDITOR" -H 'Content-Type: application/json' --data '{}'
check_status 403 "... 403"
yg "$AUDITOR" quota set health --vcpus 1 --memory 1GiB --disk 1GiB --vms 1 --max-lease-days 1
check_rc 1 "the auditor cannot set quotas"
yg "$HEALTH" audit list
check_rc 1 "a department cannot read the audit trail"
yg "$OPS" audit list
check_rc 1 "cloudops cannot read the audit trail"

# ---- netops does not submit ----
yg "$NETOPS" request submit "$(yg_request netops-try health)"
check_rc 1 "netops cannot submit a request"
api POST /api/v1/requests "$NETOPS" -H 'Content-Type: application/yaml' --data-binary "@$YG_TMP/req-netops-try.yaml"
check_status 403 "... 403"

# ---- a department submits only for itself ----
yg_request not-mine police >/dev/null
yg "$HEALTH" request submit "$YG_TMP/req-not-mine.yaml"
check_rc 1 "health cannot submit a request of department 'police'"
check_match "$(cat "$YG_ERR")" "cannot submit for 'police'" "... the refusal names the other department"
yg "$HEALTH" --json request submit "$YG_TMP/req-not-mine.yaml"
check_eq "$(jqr '.error.details[0].path')" metadata.department "... and --json shows the path metadata.department"
api POST /api/v1/requests "$HEALTH" -H 'Content-Type: application/yaml' --data-binary "@$YG_TMP/req-not-mine.yaml"
check_status 403 "... 403"
check_eq "$(jqr '.error.details[0].path' "$YG_BODY")" metadata.department "... with the path in the details"
check_eq "$(jqr '.error.details[0].line' "$YG_BODY")" 7 "... and its line"
yg "$OPS" --json request list --department police
check_eq "$(jqr '[.items[] | select(.name == "not-mine")] | length')" 0 "... and nothing was stored"

# ---- only the admin makes tokens and sets quotas ----
for who in OPS NETOPS AUDITOR HEALTH; do
    yg "${!who}" token create --role cloudops
    check_rc 1 "role of \$$who cannot create tokens"
done
api POST /api/v1/tokens "$OPS" -H 'Content-Type: application/json' --data '{"role":"admin"}'
check_status 403 "cloudops creating an admin token over the API: 403"
yg "$OPS" token list
check_rc 1 "cloudops cannot list tokens"
for who in OPS HEALTH; do
    yg "${!who}" quota set health --vcpus 1000 --memory 1TiB --disk 100TiB --vms 500 --max-lease-days 3650
    check_rc 1 "role of \$$who cannot set quotas"
done
yg "$ADMIN" --json quota show health
check_eq "$(jqr .quota.limits.vcpus)" 64 "the quota of health is unchanged"
yg "$HEALTH" quota show police
check_rc 1 "health cannot see police's quota"
yg "$HEALTH" quota show health
check_rc 0 "health sees its own quota"

# ---- revoking a token takes effect at once ----
yg "$HEALTH2" request list
check_rc 0 "a second health token works"
yg "$ADMIN" --json token list
T2=$(jqr '[.items[] | select(.role == "department" and .department == "health")][1].id')
yg "$ADMIN" token revoke "$T2"
check_rc 0 "admin revokes it"
api GET /api/v1/requests "$HEALTH2"
check_status 401 "the revoked token is refused at once (401)"
yg "$HEALTH2" request list
check_rc 3 "the CLI with the revoked token exits 3"
yg "$HEALTH" request list
check_rc 0 "the other health token still works"
yg "$ADMIN" token revoke "$T2"
check_rc 1 "revoking twice is refused"

yg_finish
