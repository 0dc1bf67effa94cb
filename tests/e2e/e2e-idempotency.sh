#!/usr/bin/env bash
# e2e-idempotency.sh — Idempotency-Key: a resubmission returns the first
# answer (and says so), another body under the same key is a conflict, keys
# are per token, and twenty concurrent submissions under one key store one
# request.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_setup

mkdir "$YG_TMP/db"
yg_daemon_start "$YG_TMP/db/yunguan.db" || { not_ok "yunguand starts"; yg_finish; }
ok "yunguand starts"

yg_set_quota "$ADMIN" health 64 256GiB 4TiB 100 &&
HEALTH=$(yg_new_token "$ADMIN" department health) &&
HEALTH2=$(yg_new_token "$ADMIN" department health) &&
OPS=$(yg_new_token "$ADMIN" cloudops)
check_eq "$?" 0 "admin sets a quota and creates the tokens"

# stored NAME: how many requests named NAME are stored
stored()
{
    yg "$OPS" --json request list --department health --all
    jqr "[.items[] | select(.name == \"$1\")] | length"
}

submit() # TOKEN KEY FILE
{
    api POST /api/v1/requests "$1" -H 'Content-Type: application/yaml' \
        -H "Idempotency-Key: $2" --data-binary "@$3"
}

# ---- the same key and body twice ----
doc=$(yg_request booking health)
submit "$HEALTH" key-booking-1 "$doc"
check_status 201 "first submission with an Idempotency-Key: 201"
first_id=$(jqr .request.id "$YG_BODY")
check_eq "$(api_header Idempotency-Replayed)" "" "... not marked as replayed"
cp "$YG_BODY" "$YG_TMP/first.json"
submit "$HEALTH" key-booking-1 "$doc"
check_status 201 "the same key and body again: the same status"
check_eq "$(jqr .request.id "$YG_BODY")" "$first_id" "... the same id"
check_eq "$(api_header Idempotency-Replayed)" true "... with header Idempotency-Replayed: true"
check "... and the same body" cmp -s "$YG_TMP/first.json" "$YG_BODY"
check_eq "$(stored booking)" 1 "one request is stored"

yg "$HEALTH" request submit --idempotency-key key-booking-1 "$doc"
check_rc 0 "the CLI resubmitting with the same key succeeds"
check_match "$(cat "$YG_OUT")" "^Request $first_id 'booking' was already submitted with this idempotency key" \
    "... and says that nothing new was stored"
check_eq "$(stored booking)" 1 "still one request is stored"

# ---- the same key with another body ----
other=$(yg_request booking-other health)
submit "$HEALTH" key-booking-1 "$other"
check_status 409 "the same key with another body: 409"
check_eq "$(jqr .error.code "$YG_BODY")" conflict "... code conflict"
check_match "$(jqr .error.message "$YG_BODY")" 'Idempotency-Key' "... naming the Idempotency-Key"
check_eq "$(stored booking-other)" 0 "... and nothing is stored"
yg "$HEALTH" request submit --idempotency-key key-booking-1 "$other"
check_rc 1 "the CLI reports the conflict with exit status 1"

# ---- keys belong to one token ----
submit "$HEALTH2" key-booking-1 "$doc"
check_eq "$(api_header Idempotency-Replayed)" "" "another token sending the first body under that key gets no replay"
check_eq "$status $(jqr .error.code "$YG_BODY")" "409 conflict" "... but the name conflict of a new submission"
check_no_match "$(jqr .error.message "$YG_BODY")" 'Idempotency-Key' "... which is not about the key"
submit "$HEALTH2" key-booking-1 "$other"
check_status 201 "another token may use the same key for its own request"
check_eq "$(api_header Idempotency-Replayed)" "" "... it is not a replay"
check_match "$(jqr .request.id "$YG_BODY")" "^[0-9]+$" "... it is a new request"
[ "$(jqr .request.id "$YG_BODY")" != "$first_id" ] && ok "... with a new id" || not_ok "... with a new id"
submit "$HEALTH" key-booking-1 "$doc"
check_eq "$(jqr .request.id "$YG_BODY") $(api_header Idempotency-Replayed)" "$first_id true" \
    "the first token's key still replays its own first answer"

# ---- malformed keys ----
submit "$HEALTH" "$(printf 'k%.0s' $(seq 130))" "$doc"
check_status 400 "a key longer than 128 characters: 400"
api POST /api/v1/requests "$HEALTH" -H 'Content-Type: application/yaml' -H 'Idempotency-Key;' --data-binary "@$doc"
check_status 400 "an empty key: 400"
submit "$HEALTH" "key with spaces" "$doc"
check_status 400 "a key with spaces: 400"
check_eq "$(stored booking)" 1 "still one request is stored"

# ---- twenty at once under one key ----
doc20=$(yg_request concurrent health)
yg_burst_prepare
for k in $(seq 0 19); do
    yg_burst_add yg_curl "$YG_TMP/c.$k.json" POST /api/v1/requests "$HEALTH" -D "$YG_TMP/c.$k.hdr" \
        -H 'Content-Type: application/yaml' -H 'Idempotency-Key: key-concurrent' --data-binary "@$doc20"
done
yg_burst_go
yg_burst_wait
check_eq "$(yg_burst_outputs | sort | uniq -c | sed 's/^ *//')" "20 201" "twenty concurrent submissions under one key: all 201"
ids=$(for k in $(seq 0 19); do jq -r .request.id "$YG_TMP/c.$k.json" 2>/dev/null; done | sort -u | tr '\n' ' ' | sed 's/ $//')
check_match "$ids" '^[0-9]+$' "... all with the same id ($ids)"
replayed=$(cat "$YG_TMP"/c.*.hdr | tr -d '\r' | grep -ic '^Idempotency-Replayed: true$')
check_eq "$replayed" 19 "... nineteen of them replays"
check_eq "$(stored concurrent)" 1 "... exactly one request is stored"
yg "$ADMIN" --json audit list --all
check_eq "$(jqr '[.items[] | select(.action == "request.submit" and .after.name == "concurrent")] | length')" 1 \
    "... and audited once"

yg_finish
