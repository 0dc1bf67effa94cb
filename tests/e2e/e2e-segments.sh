#!/usr/bin/env bash
# e2e-segments.sh — segment lists and IPv6 prefix allocation: the sample
# list applies (netops may, a department may not), applies again unchanged,
# a change is one update with its audit entry, an invalid list or one that
# overlaps a stored segment is refused with line:column and changes nothing,
# allocations are consecutive /64s, ten concurrent ones are ten different
# prefixes, and an allocation gives a segment without IPv6 its prefix.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_setup

SAMPLE=$top_srcdir/contrib/segments.yaml
PARENT=2001:db8:100::/48

mkdir "$YG_TMP/db"
yg_daemon_start "$YG_TMP/db/yunguan.db" || { not_ok "yunguand starts"; yg_finish; }
ok "yunguand starts"

yg_set_quota "$ADMIN" health 64 256GiB 4TiB 20 &&
NETOPS=$(yg_new_token "$ADMIN" netops) &&
HEALTH=$(yg_new_token "$ADMIN" department health) &&
AUDITOR=$(yg_new_token "$ADMIN" auditor)
check_eq "$?" 0 "admin creates a netops, a department and an auditor token"

# plan NAME: the stored definition of segment NAME (HTTP status in $status)
plan() { api GET "/api/v1/segments/$1/plan" "$AUDITOR"; }
# last_audit_id: the id of the newest audit entry
last_audit_id()
{
    yg "$ADMIN" --json audit list --all
    jqr '.items[-1].id'
}

# ---- a department may not apply, netops may ----
api PUT /api/v1/segments "$HEALTH" -H 'Content-Type: application/yaml' --data-binary "@$SAMPLE"
check_status 403 "a department token cannot apply a segment list (403)"
yg "$HEALTH" segment apply "$SAMPLE"
check_rc 1 "... and the CLI says it is refused"
check_match "$(cat "$YG_ERR")" 'permission denied' "... with 'permission denied'"
plan health-dmz
check_status 404 "... and nothing was stored"

yg "$NETOPS" segment apply "$SAMPLE" --dry-run
check_rc 0 "netops dry-runs the sample list"
check_match "$(cat "$YG_OUT")" '^Would create +health-dmz, police-internal, education-campus and civil-affairs$' \
    "... which would create its four segments"
plan health-dmz
check_status 404 "... and the dry run stored nothing"

yg "$NETOPS" segment apply "$SAMPLE"
check_rc 0 "netops applies the sample list"
check_match "$(cat "$YG_OUT")" '^4 segments applied: 4 created, 0 updated, 0 unchanged\.$' \
    "... four segments created"
check_match "$(cat "$YG_ERR")" "warning: segment 'police-internal': department 'police' does not exist yet" \
    "... with a warning for the departments that do not exist yet"
plan health-dmz
check_status 200 "the plan of health-dmz can be read"
check_eq "$(jqr '[.segment.vlan, .segment.ipv4.prefix, .segment.ipv6.prefix, .segment.ipv6.gateway,
                 (.segment.hosts | map(.name + "=" + .ipv6) | join(","))] | join(" ")' "$YG_BODY")" \
    "110 198.51.100.0/24 2001:db8:10::/64 2001:db8:10::1 hv01=2001:db8:10::21,hv02=2001:db8:10::22" \
    "... with its VLAN, prefixes, gateway and hosts' planned addresses"
plan civil-affairs
check_eq "$(jqr '.segment.ipv6 // "none"' "$YG_BODY")" none "civil-affairs has no IPv6 plan yet"

# ---- again: nothing changes ----
before_id=$(last_audit_id)
yg "$NETOPS" --json segment apply "$SAMPLE"
check_rc 0 "the sample list applies a second time"
check_eq "$(jqr '[(.created | length), (.updated | length), (.unchanged | length)] | join(" ")')" "0 0 4" \
    "... and all four segments are unchanged"
check_eq "$(last_audit_id)" "$before_id" "... with no audit entry"

# ---- change one segment ----
sed -e 's/^    vlan: 110$/    vlan: 111/' -e 's/hv02, ipv4: 198.51.100.22/hv05, ipv4: 198.51.100.25/' \
    "$SAMPLE" >"$YG_TMP/changed.yaml"
yg "$NETOPS" --json segment apply "$YG_TMP/changed.yaml" --dry-run
check_eq "$(jqr '.dry_run, (.updated | join(",")), (.changes["health-dmz"] | join(","))' | tr '\n' ' ')" \
    "true health-dmz vlan,hosts " "a dry run of a changed list names the segment and the fields"
plan health-dmz
check_eq "$(jqr .segment.vlan "$YG_BODY")" 110 "... and changes nothing"
yg "$NETOPS" segment apply "$YG_TMP/changed.yaml"
check_rc 0 "the changed list applies"
check_match "$(cat "$YG_OUT")" '^Updated +health-dmz \(vlan, hosts\)$' "... health-dmz updated (vlan, hosts)"
check_match "$(cat "$YG_OUT")" '^4 segments applied: 0 created, 1 updated, 3 unchanged\.$' \
    "... the other three unchanged"
plan health-dmz
check_eq "$(jqr '[.segment.vlan, (.segment.hosts | map(.name) | join(","))] | join(" ")' "$YG_BODY")" \
    "111 hv01,hv05" "... hv02 left the segment, hv05 joined it"
yg "$ADMIN" --json audit list --after "$before_id" --all
check_eq "$(jqr '[.items[] | select(.action == "segment.update") | .object] | join(",")')" \
    "segment/health-dmz" "one audit entry for the changed segment"
check_eq "$(jqr '[.items[] | select(.action == "segment.update")][0] | "\(.actor) \(.before.vlan) \(.after.vlan)"')" \
    "token:2 110 111" "... by the netops token, with the VLAN before and after"
yg "$AUDITOR" --json audit verify
check_eq "$(jqr .ok)" true "the audit chain verifies"

# ---- an invalid list is refused with line:column and changes nothing ----
cat >"$YG_TMP/invalid.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: health-dmz
    vlan: 112
    interface: br-health
    ipv4: {prefix: 198.51.100.0/24, gateway: 198.51.100.1}
  - name: police-internal
    vlan: 120
    interface: br-police
    ipv4: {prefix: 203.0.113.0/25, gateway: 203.0.113.200}
EOF
before_id=$(last_audit_id)
yg "$NETOPS" segment apply "$YG_TMP/invalid.yaml"
check_rc 1 "a list with a gateway outside its prefix is refused"
check_match "$(cat "$YG_ERR")" "^$YG_TMP/invalid.yaml:11:45: segments\[1\]\.ipv4\.gateway: gateway 203\.0\.113\.200 is outside the segment's IPv4 prefix 203\.0\.113\.0/25; use an address from 203\.0\.113\.1 to 203\.0\.113\.126$" \
    "... with FILE:LINE:COLUMN: PATH: MESSAGE"
api PUT /api/v1/segments "$NETOPS" -H 'Content-Type: application/yaml' --data-binary "@$YG_TMP/invalid.yaml"
check_status 422 "... the API answers 422"
check_eq "$(jqr '.error.details[0] | "\(.line):\(.column) \(.path)"' "$YG_BODY")" "11:45 segments[1].ipv4.gateway" \
    "... with the line, column and path"
plan health-dmz
check_eq "$(jqr .segment.vlan "$YG_BODY")" 111 "... and the valid segment in the same list was not changed"
check_eq "$(last_audit_id)" "$before_id" "... nor audited"

# ---- an overlap with a stored segment the list leaves alone ----
cat >"$YG_TMP/overlap.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: civil-annex
    vlan: 141
    interface: br-annex
    ipv4: {prefix: 192.0.2.128/25, gateway: 192.0.2.129}
EOF
yg "$NETOPS" segment apply "$YG_TMP/overlap.yaml"
check_rc 1 "a segment overlapping stored civil-affairs is refused"
check_match "$(cat "$YG_ERR")" "^$YG_TMP/overlap.yaml:7:20: segments\[0\]\.ipv4\.prefix: 192\.0\.2\.128/25 overlaps 192\.0\.2\.0/24 of stored segment 'civil-affairs'" \
    "... at the prefix's line and column, naming the stored segment"
plan civil-annex
check_status 404 "... and it was not stored"
sed -e 's/192.0.2.128\/25/198.51.100.0\/25/' -e 's/192.0.2.129/198.51.100.1/' -e 's/vlan: 141/vlan: 111/' \
    "$YG_TMP/overlap.yaml" >"$YG_TMP/overlap2.yaml"
api PUT /api/v1/segments "$NETOPS" -H 'Content-Type: application/yaml' --data-binary "@$YG_TMP/overlap2.yaml"
check_status 422 "overlapping health-dmz and reusing its VLAN is refused too (422)"
check_eq "$(jqr '[.error.details[] | .path] | join(",")' "$YG_BODY")" "segments[0].vlan,segments[0].ipv4.prefix" \
    "... one problem each, in the list's order"

# ---- prefix allocation ----
yg "$NETOPS" --json prefix allocate --from "$PARENT" --length 64
first=$(jqr .allocation.prefix)
yg "$NETOPS" --json prefix allocate --from "$PARENT" --length 64
second=$(jqr .allocation.prefix)
check_eq "$first $second" "2001:db8:100::/64 2001:db8:100:1::/64" "two allocations give two consecutive /64s"
yg "$HEALTH" prefix allocate --from "$PARENT" --length 64
check_rc 1 "a department cannot allocate prefixes"

yg_burst_prepare
for k in $(seq 0 9); do
    yg_burst_add yg_curl "$YG_TMP/alloc.$k.json" POST /api/v1/prefixes/allocate "$NETOPS" \
        -H 'Content-Type: application/json' --data "{\"from\": \"$PARENT\", \"length\": 64}"
done
yg_burst_go
yg_burst_wait
check_eq "$(yg_burst_outputs | sort | uniq -c | sed 's/^ *//')" "10 201" "ten concurrent allocations: all 201"
got=$(for k in $(seq 0 9); do jq -r .allocation.prefix "$YG_TMP/alloc.$k.json"; done | sort -u)
check_eq "$(printf '%s\n' "$got" | grep -c '^2001:db8:100:[0-9a-f]*::/64$')" 10 "... ten different /64s of the parent"
expected=$(for i in $(seq 2 11); do printf '2001:db8:100:%x::/64\n' "$i"; done | sort -u)
check_eq "$got" "$expected" "... the next ten, none skipped"
yg "$AUDITOR" --json prefix list
check_eq "$(jqr '.items | length') $(jqr '[.items[].prefix] | unique | length')" "12 12" \
    "prefix list shows twelve allocations, all different"

# ---- an allocation fills a segment without IPv6 ----
yg "$NETOPS" prefix allocate --from "$PARENT" --length 64 --segment civil-affairs
check_rc 0 "netops allocates a /64 for civil-affairs"
check_match "$(cat "$YG_OUT")" "^Segment 'civil-affairs' now plans IPv6 2001:db8:100:c::/64 with gateway 2001:db8:100:c::1;" \
    "... which now plans it, with ::1 as gateway"
plan civil-affairs
check_eq "$(jqr '"\(.segment.ipv6.prefix) \(.segment.ipv6.gateway)"' "$YG_BODY")" "2001:db8:100:c::/64 2001:db8:100:c::1" \
    "... as its stored plan shows"
api GET /api/v1/segments/civil-affairs "$AUDITOR"
check_eq "$(jqr .segment.state "$YG_BODY")" v6-planned "... and its readiness state is v6-planned"
yg "$ADMIN" --json audit list --all
check_eq "$(jqr '[.items[] | select(.object == "segment/civil-affairs" and .action == "segment.update")][-1] | "\(.before.ipv6 // "none") \(.after.ipv6.prefix)"')" \
    "none 2001:db8:100:c::/64" "... audited with the plan before and after"
yg "$NETOPS" prefix allocate --from "$PARENT" --length 64 --segment civil-affairs
check_rc 1 "a second allocation for civil-affairs is refused"
check_match "$(cat "$YG_ERR")" "segment 'civil-affairs' already has the IPv6 prefix 2001:db8:100:c::/64" \
    "... because it has its prefix"
yg "$NETOPS" prefix allocate --from "$PARENT" --length 64 --segment no-such-segment
check_rc 1 "an allocation for a segment that does not exist is refused"
yg "$AUDITOR" --json prefix list
check_eq "$(jqr '.items | length')" 13 "... and neither refused allocation was recorded"

# A new segment may not take the prefix civil-affairs was given.
cat >"$YG_TMP/v6overlap.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: civil-annex
    interface: br-annex
    ipv4: {prefix: 198.51.101.0/24, gateway: 198.51.101.1}
    ipv6: {prefix: "2001:db8:100:c::/64", gateway: "2001:db8:100:c::1"}
EOF
yg "$NETOPS" segment apply "$YG_TMP/v6overlap.yaml"
check_rc 1 "a new segment with civil-affairs' allocated IPv6 prefix is refused"
check_match "$(cat "$YG_ERR")" "v6overlap.yaml:7:20: segments\\[0\\]\\.ipv6\\.prefix: 2001:db8:100:c::/64 overlaps 2001:db8:100:c::/64 of stored segment 'civil-affairs'" \
    "... at its IPv6 prefix"

# ---- an old list must not take an allocated prefix away unnoticed ----
# The sample list predates the allocation: civil-affairs has no ipv6 key.
before_id=$(last_audit_id)
yg "$NETOPS" segment apply "$SAMPLE"
check_rc 1 "re-applying the list written before the allocation is refused"
check_match "$(cat "$YG_ERR")" "segments\\[3\\]: segment 'civil-affairs' has the IPv6 prefix 2001:db8:100:c::/64 that prefix allocation [0-9]+ gave it .* add 'ipv6: \\{prefix: \"2001:db8:100:c::/64\", gateway: \"2001:db8:100:c::1\"\\}'" \
    "... naming the segment, the allocation and the lines that keep it"
plan civil-affairs
check_eq "$(jqr .segment.ipv6.prefix "$YG_BODY")" "2001:db8:100:c::/64" "... and civil-affairs keeps its IPv6 prefix"
check_eq "$(last_audit_id)" "$before_id" "... with no audit entry"
# Written out, the allocated plan applies; an explicit 'ipv6: null' takes it away.
sed '/name: civil-affairs/,$ s|^\(    ipv4: .*\)$|\1\n    ipv6: {prefix: "2001:db8:100:c::/64", gateway: "2001:db8:100:c::1"}|' \
    "$SAMPLE" >"$YG_TMP/kept.yaml"
yg "$NETOPS" --json segment apply "$YG_TMP/kept.yaml"
check_rc 0 "the list with civil-affairs' allocated plan written out applies"
check_eq "$(jqr '.updated | index("civil-affairs")')" null "... and does not change civil-affairs"
sed '/name: civil-affairs/,$ s|^\(    ipv4: .*\)$|\1\n    ipv6: null|' "$SAMPLE" >"$YG_TMP/dropped.yaml"
yg "$NETOPS" segment apply "$YG_TMP/dropped.yaml"
check_rc 0 "an explicit 'ipv6: null' takes civil-affairs' IPv6 plan away"
plan civil-affairs
check_eq "$(jqr '.segment.ipv6 // "none"' "$YG_BODY")" none "... as its stored plan shows"
yg "$AUDITOR" --json prefix list
check_eq "$(jqr '[.items[] | select(.prefix == "2001:db8:100:c::/64")] | length')" 1 \
    "... and the allocation stays recorded"

# ---- a list larger than a request document (max_body_bytes, 64 KiB) ----
# The segment-list endpoint reads what the CLI reads: up to 256 KiB.
{ cat "$SAMPLE"; i=0; while [ $i -lt 1500 ]; do
      printf '# plan note %04d: VLAN and prefix review of the district LANs, see the change log\n' $i
      i=$((i + 1)); done; } >"$YG_TMP/big.yaml"
yg "$NETOPS" segment apply "$YG_TMP/big.yaml"
check_rc 0 "a $(wc -c <"$YG_TMP/big.yaml")-byte list (over 64 KiB) applies"
check_match "$(cat "$YG_OUT")" '^4 segments applied: 0 created, 0 updated, 4 unchanged\.$' \
    "... with its four segments unchanged"
{ cat "$YG_TMP/big.yaml" "$YG_TMP/big.yaml" "$YG_TMP/big.yaml"; } | grep '^#' >"$YG_TMP/huge.yaml"
api PUT /api/v1/segments "$NETOPS" -H 'Content-Type: application/yaml' --data-binary "@$YG_TMP/huge.yaml"
check_status 413 "a list over 256 KiB is refused (413)"
check_match "$(jqr .error.message "$YG_BODY")" "larger than the limit of 262144 bytes" "... saying the limit"

yg "$AUDITOR" --json audit verify
check_eq "$(jqr .ok)" true "the audit chain still verifies"

yg_finish
