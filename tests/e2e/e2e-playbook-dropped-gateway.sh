#!/usr/bin/env bash
# e2e-playbook-dropped-gateway.sh — a playbook's gateway check on a host
# whose dead gateway's FAILED neighbour entry the kernel has dropped must
# still fail, as the agent's readiness reports do (agents/netstate.c,
# "unanswered").  Playbook steps run on the agent's task thread from a
# fresh netlink dump, which alone reads the dropped entry as "no entry yet"
# (a pass): the task thread must see the neighbours the daemon remembers.
# Everything inside network namespaces this test makes (never the host's
# own interfaces, routes or sysctls):
#
#   ctl    yunguand on 192.0.2.10:8470 (mgmt), heartbeat 3600 s so that the
#          agent never probes the gateway itself during the test
#   sw     the switch: bridge 'mgmt' and bridge 's1' (health-dmz)
#   hv01   mgmt0 192.0.2.101; br-health 198.51.100.21/24, 2001:db8:10::21/64,
#          IPv6 default route via 2001:db8:10::99, which nobody has
#
# The gateway's entry is made FAILED (a SYN through it), the daemon reports
# GATEWAY_NEIGH_FAILED, the entry is deleted ('ip neigh del', as the
# kernel's garbage collector does) and the daemon reports "the kernel has
# since dropped the entry".  Then, with no entry in the kernel:
#   (a) a check run whose check.run asks for gateway-neighbour pass says it
#       does not hold (gateway-neighbour fail: GATEWAY_NEIGH_FAILED);
#   (b) an apply run of a sysctl.set whose verify asks for gateway-neighbour
#       pass fails the verify and rolls the sysctl back.
# Needs root, 'ip netns', curl and jq (else exit 77), and a yunguand with
# the playbook API.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
. "$top_srcdir/tests/e2e/netns-lib.sh"

netns_binaries
netns_setup

P=ygd$$-
CTL=${P}ctl SW=${P}sw HV=${P}hv01
CTL_ADDR=192.0.2.10
YG_URL=http://$CTL_ADDR:8470
DB=$YG_TMP/db/yunguan.db
DEAD_GW=2001:db8:10::99
AGENT_PID=

dg_cleanup()
{
    if [ -n "$AGENT_PID" ]; then
        kill -TERM "$AGENT_PID" 2>/dev/null
        yg_wait_for 5 yg__dead "$AGENT_PID" || kill -KILL "$AGENT_PID" 2>/dev/null
    fi
    [ -n "${KEEP_LOGS:-}" ] && cp -r "$YG_TMP" "$KEEP_LOGS" 2>/dev/null
    yg_cleanup
    netns_cleanup
}
trap dg_cleanup EXIT

mkdir -p "$YG_TMP/bin" "$YG_TMP/db" "$YG_TMP/playbooks"
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$CTL" "$CLI" >"$YG_TMP/bin/yunguan"
chmod +x "$YG_TMP/bin/yunguan"
YUNGUAN=$YG_TMP/bin/yunguan
curl() { ip netns exec "$CTL" curl "$@"; }
accept_ra() { ip netns exec "$HV" cat /proc/sys/net/ipv6/conf/br-health/accept_ra; }
gw_entry() { ip -n "$HV" -6 neigh show "$DEAD_GW" dev br-health; }

# ---- the playbooks: a gateway check, and a change verified by it ----
cat >"$YG_TMP/playbooks/gateway-check.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: Playbook
metadata:
  name: gateway-check
  description: Whether the segment's IPv6 gateway answers
steps:
  - name: gateway answers
    action: check.run
    args: {check: gateway-neighbour, expect: pass, timeout_ms: 1000}
EOF
cat >"$YG_TMP/playbooks/accept-ra-verified.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: Playbook
metadata:
  name: accept-ra-verified
  description: A change verified by the gateway check (rolled back when it fails)
steps:
  - name: accept RAs
    action: sysctl.set
    args: {key: "net/ipv6/conf/{{iface}}/accept_ra", value: "2"}
    verify: {check: gateway-neighbour, expect: pass, timeout_ms: 1000}
EOF
cat >"$YG_TMP/config.yaml" <<EOF
playbook_dir: $YG_TMP/playbooks
playbook_batch_size: 1
playbook_host_timeout_seconds: 60
EOF

# ---- the network ----
netns_add "$SW" && netns_bridge "$SW" mgmt && netns_bridge "$SW" s1 &&
netns_add "$CTL" && netns_port "$SW" mgmt "$CTL" mgmt0 &&
netns_add "$HV" && netns_port "$SW" mgmt "$HV" mgmt0 && netns_port "$SW" s1 "$HV" br-health ||
    { echo "ERROR: cannot build the network"; exit 99; }
ip -n "$CTL" addr add "$CTL_ADDR/24" dev mgmt0
ip -n "$HV" addr add 192.0.2.101/24 dev mgmt0
ip -n "$HV" addr add 198.51.100.21/24 dev br-health
ip -n "$HV" addr add 2001:db8:10::21/64 dev br-health nodad
ip -n "$HV" -6 route add default via "$DEAD_GW" dev br-health

# ---- the controller ----
netns_playbook_controller 3600

cat >"$YG_TMP/segments.yaml" <<EOF
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: health-dmz
    interface: br-health
    departments: [health]
    ipv4: {prefix: 198.51.100.0/24, gateway: 198.51.100.1}
    ipv6: {prefix: "2001:db8:10::/64", gateway: "$DEAD_GW"}
    hosts:
      - {name: hv01, ipv4: 198.51.100.21, ipv6: "2001:db8:10::21"}
EOF
yg "$NETOPS" segment apply "$YG_TMP/segments.yaml"
check_rc 0 "netops applies the segment (IPv6 gateway $DEAD_GW, which nobody has)"

# ---- the agent, as a daemon with the controller (tasks run on its task thread) ----
mkdir -p "$YG_TMP/agent"
yg "$ADMIN" --json host enroll hv01 && jqr .secret >"$YG_TMP/enroll-hv01"
ip netns exec "$HV" "$AGENT" --controller "$YG_URL" --state-dir "$YG_TMP/agent" --host hv01 \
    --enroll-token-file "$YG_TMP/enroll-hv01" --log-level debug 2>>"$YG_TMP/agent.log" &
AGENT_PID=$!
disown "$!"
check "the agent enrolls" yg_wait_for 20 test -s "$YG_TMP/agent/agent.token"

# hv01's reported problems as "REASON message" lines.
problems() {
    yg "$NETOPS" --json segment show health-dmz >/dev/null 2>&1 &&
        jqr '.segment.hosts[] | select(.host == "hv01") | .problems[] | .reason + " " + .message'
}
reported() { problems | grep -q "$1"; }

# ---- the gateway's entry FAILED, then dropped ----
# A SYN to anywhere makes the kernel resolve the default route's gateway.
netns_poke "$HV" 2001:db8:20::5 80
check "the gateway's neighbour entry becomes FAILED" \
    wait_until 100 netns_neigh_state_is "$HV" br-health "$DEAD_GW" FAILED
check "the agent reports GATEWAY_NEIGH_FAILED" yg_wait_for 20 reported 'GATEWAY_NEIGH_FAILED'
ip -n "$HV" -6 neigh del "$DEAD_GW" dev br-health    # as the kernel's garbage collector does
check "... and, once the entry is deleted, 'the kernel has since dropped the entry'" \
    yg_wait_for 20 reported 'GATEWAY_NEIGH_FAILED.*the kernel has since dropped the entry'
[ "$yg_failed" = 0 ] || { diag_file "$YG_TMP/agent.log" 40; yg_finish; }

run_json() { yg "$NETOPS" --json playbook show-run "$1" >/dev/null 2>&1; }
run_done() { run_json "$1" && [ "$(jqr .state)" != running ]; }
start_run() { # start_run PLAYBOOK MODE: sets RUN
    api POST /api/v1/playbook-runs "$NETOPS" -H 'Content-Type: application/json' \
        --data "{\"playbook\": \"$1\", \"segment\": \"health-dmz\", \"mode\": \"$2\"}"
    RUN=$(jqr .id "$YG_BODY")
    [ "$status" = 201 ]
}
step0() { jqr ".hosts[] | select(.host == \"hv01\") | .steps[0].$1"; }

# ---- (a) check mode: check.run ----
start_run gateway-check check
check_eq "$status" 201 "a check run of gateway-check starts"
check "... and ends" yg_wait_for 60 run_done "$RUN"
check_eq "$(step0 after)" "gateway-neighbour fail: GATEWAY_NEIGH_FAILED" \
    "... its check.run reads the dropped gateway as failed, as the agent's reports do"
check_match "$(step0 message)" 'does not hold yet' "... and says the expectation does not hold"

# ---- (b) apply mode: verify ----
before=$(accept_ra)
start_run accept-ra-verified apply
check_eq "$status" 201 "an apply run of accept-ra-verified starts"
check "... and ends" yg_wait_for 60 run_done "$RUN"
check_eq "$(jqr '.state + " " + (.hosts[0].rolled_back | tostring)')" "failed true" \
    "... failed and rolled back: its verify of gateway-neighbour did not pass"
check_match "$(step0 message)" 'verify: .*gateway-neighbour fail: GATEWAY_NEIGH_FAILED.*the kernel has since dropped the entry' \
    "... the step's message names the dropped gateway"
check_eq "$(accept_ra)" "$before" "... and accept_ra is $before again"

# The kernel still has no entry: the runs had only the daemon's memory to go on.
check_eq "$(gw_entry)" "" "the kernel has no neighbour entry for $DEAD_GW during the runs"
check_no_match "$(cat "$YG_TMP/agent.log")" ' err (agent|tasks|steps|netstate):' "the agent logged no error"
[ "$yg_failed" = 0 ] || diag_file "$YG_TMP/agent.log" 40

yg_finish
