#!/usr/bin/env bash
# e2e-requests.sh — the request loop through the real CLI and curl: quotas and
# tokens by the admin, submit (valid, invalid, dry run), approve, reject,
# illegal transition, withdraw, transitions; JSON bodies, content types, body
# limit and authentication over plain HTTP.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_setup

mkdir "$YG_TMP/db"
yg_daemon_start "$YG_TMP/db/yunguan.db" || { not_ok "yunguand starts"; yg_finish; }
ok "yunguand starts and answers /healthz"
check_match "$ADMIN" '^yg_' "the first start wrote the admin token beside the database"

# ---- the administrator sets things up ----
yg_set_quota "$ADMIN" health 64 256GiB 4TiB 20
check_rc 0 "admin sets the quota of 'health'"
yg_set_quota "$ADMIN" police 64 256GiB 4TiB 20
check_rc 0 "admin sets the quota of 'police'"
HEALTH=$(yg_new_token "$ADMIN" department health)
check_match "$HEALTH" '^yg_' "admin creates a department token for 'health'"
POLICE=$(yg_new_token "$ADMIN" department police)
check_match "$POLICE" '^yg_' "admin creates a department token for 'police'"
OPS=$(yg_new_token "$ADMIN" cloudops)
check_match "$OPS" '^yg_' "admin creates a cloudops token"
AUDITOR=$(yg_new_token "$ADMIN" auditor)
check_match "$AUDITOR" '^yg_' "admin creates an auditor token"
yg "$ADMIN" token create --role department --department health
check_match "$(cat "$YG_OUT")" "^Token [0-9]+ created: role 'department', department 'health'" \
    "token create prints the new token for people"

# ---- submissions ----
yg "$HEALTH" request submit "$(yg_request vaccine-booking health 2 2)"
check_rc 0 "health submits a valid request"
check_match "$(cat "$YG_OUT")" "^Request [0-9]+ 'vaccine-booking' submitted for department 'health' \(state: submitted\)" \
    "the submission prints the new id"
ID_A=$(sed -n "s/^Request \([0-9]*\) 'vaccine-booking' submitted.*/\1/p" "$YG_OUT")

bad=$YG_TMP/invalid.yaml
yg_render invalid.yaml.in "$bad" broken-units health 2 1
yg "$HEALTH" request submit "$bad"
check_rc 1 "an invalid request is refused with exit status 1"
check_match "$(cat "$YG_ERR")" "^$bad:14:47: spec\.vms\[0\]\.memory: .+" \
    "the refusal is FILE:LINE:COL: path: message"

yg "$HEALTH" --json request list
count_before=$(jqr '.items | length')
yg "$HEALTH" request submit --dry-run "$(yg_request dry-run-only health)"
check_rc 0 "a dry run succeeds"
check_match "$(cat "$YG_OUT")" "^Dry run: request 'dry-run-only' .*nothing was stored" \
    "the dry run says nothing was stored"
yg "$HEALTH" --json request list
check_eq "$(jqr '.items | length')" "$count_before" "the dry run stored nothing (list count unchanged)"
check_eq "$(jqr '[.items[] | select(.name == "dry-run-only")] | length')" 0 \
    "the dry-run request is not listed"

yg "$HEALTH" --json request submit "$(yg_request reject-me health)"
ID_B=$(jqr .request.id)
check_match "$ID_B" '^[0-9]+$' "health submits a second request (--json gives its id)"
yg "$HEALTH" --json request submit "$(yg_request withdraw-me health)"
ID_C=$(jqr .request.id)
check_match "$ID_C" '^[0-9]+$' "health submits a third request"

# ---- operations decide ----
yg "$OPS" request approve "$ID_A" --reason "capacity is there"
check_rc 0 "cloudops approves request $ID_A"
check_match "$(cat "$YG_OUT")" "^Request $ID_A 'vaccine-booking' is now 'approved'" "the CLI reports the new state"

yg "$OPS" request reject "$ID_B"
check_rc 2 "reject without --reason is refused by the CLI (usage)"
api POST "/api/v1/requests/$ID_B/reject" "$OPS" -H 'Content-Type: application/json' --data '{}'
check_status 400 "reject without a reason is refused by the API (400)"
api POST "/api/v1/requests/$ID_B/reject" "$OPS" -H 'Content-Type: application/json' --data '{"reason": ""}'
check_status 400 "reject with an empty reason is refused by the API (400)"
yg "$OPS" --json request show "$ID_B"
check_eq "$(jqr .request.state)" submitted "the refused rejections changed nothing"

yg "$OPS" request reject "$ID_B" --reason "no such segment in this district"
check_rc 0 "cloudops rejects request $ID_B with a reason"

yg "$OPS" request approve "$ID_B"
check_rc 1 "approving a rejected request is refused with exit status 1"
err=$(cat "$YG_ERR")
check_match "$err" "'rejected'" "the refusal names the current state 'rejected'"
check_match "$err" "approved" "the refusal names the state asked for (approved)"
check_eq "$(wc -l <"$YG_ERR" | tr -d ' ')" 1 "the refusal is one sentence on one line"
api POST "/api/v1/requests/$ID_B/approve" "$OPS" -H 'Content-Type: application/json' --data '{}'
check_status 409 "the API answers 409 to an illegal transition"
check_eq "$(jqr .error.code "$YG_BODY")" illegal_transition "... with code illegal_transition"

# ---- the owner withdraws ----
yg "$HEALTH" request withdraw "$ID_C" --reason "no longer needed"
check_rc 0 "health withdraws its own submitted request"
yg "$HEALTH" --json request show "$ID_C"
check_eq "$(jqr .request.state)" withdrawn "the request is now withdrawn"

# ---- transitions ----
yg "$HEALTH" request show "$ID_A"
check_rc 0 "request show works for the owner"
out=$(cat "$YG_OUT")
check_match "$out" '^Transitions:' "request show lists the transitions"
check_match "$out" ' -  +submitted +token:[0-9]+ +department ' "... the submission (from nothing to submitted)"
check_match "$out" ' submitted +approved +token:[0-9]+ +cloudops +capacity is there' \
    "... the approval with its actor, role and reason"
yg "$HEALTH" --json request show "$ID_B"
check_eq "$(jqr '[.request.transitions[] | "\(.from)>\(.to)"] | join(",")')" \
    "null>submitted,submitted>rejected" "the JSON transitions of the rejected request"
check_eq "$(jqr '.request.transitions[1].reason')" "no such segment in this district" \
    "the rejection's reason is kept"

# ---- JSON body over curl gives the same stored request as YAML ----
yg "$HEALTH" --json request submit "$(yg_request json-twin health 4 3)"
ID_Y=$(jqr .request.id)
yg "$HEALTH" --json request show "$ID_Y"
cp "$YG_OUT" "$YG_TMP/yaml-twin.json"
yg "$HEALTH" request withdraw "$ID_Y"       # frees the name for the JSON twin
yg_render request.json.in "$YG_TMP/twin.json" json-twin health 4 3
api POST /api/v1/requests "$HEALTH" -H 'Content-Type: application/json' --data-binary "@$YG_TMP/twin.json"
check_status 201 "a JSON body (Content-Type: application/json) is accepted"
ID_J=$(jqr .request.id "$YG_BODY")
yg "$HEALTH" --json request show "$ID_J"
norm='.request | del(.id, .state, .created_at, .updated_at, .source, .transitions)'
if [ -n "$ID_J" ] && [ "$(jq -S "$norm" "$YG_OUT")" = "$(jq -S "$norm" "$YG_TMP/yaml-twin.json")" ]; then
    ok "the JSON submission stored the same request as the YAML one"
else
    not_ok "the JSON submission stored the same request as the YAML one"
    diff <(jq -S "$norm" "$YG_TMP/yaml-twin.json") <(jq -S "$norm" "$YG_OUT") | sed 's/^/#   /'
fi
check_eq "$(jqr '.request.totals | "\(.vms) \(.vcpus) \(.memory_mib) \(.disk_gib)"')" "3 12 12288 120" \
    "the stored totals are count × size"

# ---- content type, size, authentication ----
body=$YG_TMP/other.yaml
yg_render request.yaml.in "$body" wrong-type health 2 1
api POST /api/v1/requests "$HEALTH" -H 'Content-Type: text/plain' --data-binary "@$body"
check_status 415 "a body of type text/plain is refused with 415"
check_eq "$(jqr .error.code "$YG_BODY")" unsupported_media_type "... code unsupported_media_type"
api POST /api/v1/requests "$HEALTH" -H 'Content-Type:' --data-binary "@$body"
check_status 415 "a body without a content type is refused with 415"

big=$YG_TMP/big.yaml
yg_render request.yaml.in "$big" too-big health 2 1
{ printf '# '; head -c 70000 /dev/zero | tr '\0' x; printf '\n'; } >>"$big"
api POST /api/v1/requests "$HEALTH" -H 'Content-Type: application/yaml' --data-binary "@$big"
check_status 413 "a body over 64 KiB is refused with 413"
check_eq "$(jqr .error.code "$YG_BODY")" too_large "... code too_large"

api POST /api/v1/requests "" -H 'Content-Type: application/yaml' --data-binary "@$body"
check_status 401 "no token: 401"
check_eq "$(jqr .error.code "$YG_BODY")" unauthenticated "... code unauthenticated"
api GET /api/v1/requests "yg_this-is-not-a-token"
check_status 401 "a garbage token: 401"
api GET /api/v1/requests "" -H 'Authorization: Basic YWRtaW46YWRtaW4='
check_status 401 "a non-bearer Authorization header: 401"
yg "yg_this-is-not-a-token" request list
check_rc 3 "the CLI with a garbage token exits 3"

yg "$HEALTH" --json request list
check_eq "$(jqr '[.items[] | select(.name == "wrong-type" or .name == "too-big")] | length')" 0 \
    "none of the refused submissions was stored"

yg_finish
