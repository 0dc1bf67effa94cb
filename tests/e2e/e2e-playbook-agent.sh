#!/usr/bin/env bash
# e2e-playbook-agent.sh — playbook runs carried out by real yunguan-agent
# processes on real kernel state, all inside network namespaces this test
# makes (never the host's own interfaces, routes or sysctls).
#
#   ctl          yunguand on 192.0.2.10:8470 (mgmt)
#   sw           the switch: bridge 'mgmt' and bridge 's1' (health-dmz)
#   gw1          the segment's router: 198.51.100.1/24, 2001:db8:10::1/64
#   hv01..hv03   mgmt0 192.0.2.1NN, br-health on s1 with IPv4 only and
#                IPv6 turned off (disable_ipv6 = 1)
#
# (a) a check run of the shipped enable-dual-stack changes nothing and
# says what would change; (b) the apply run (canary, then a batch) makes
# every host dual-stack-ready, which the agents' readiness reports show;
# (c) a playbook whose gateway never answers replaces the default route,
# fails and is rolled back: the old route is back on every host it ran on;
# (d) an agent killed (SIGKILL) in the middle of a task rolls the change
# back when it starts again and reports "agent restarted during the task;
# rolled back".  Needs root, 'ip netns', curl and jq (else exit 77), and a
# yunguand with the playbook API.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
. "$top_srcdir/tests/e2e/netns-lib.sh"

netns_binaries
[ -f "$top_srcdir/playbooks/enable-dual-stack.yaml" ] || yg_skip "no shipped playbooks (playbooks/)"
netns_setup

P=ygp$$-
CTL=${P}ctl SW=${P}sw GW=${P}gw1
CTL_ADDR=192.0.2.10
YG_URL=http://$CTL_ADDR:8470
DB=$YG_TMP/db/yunguan.db
HOSTS="hv01 hv02 hv03"
declare -A AGENT_PID

pb_cleanup()
{
    local h
    for h in "${!AGENT_PID[@]}"; do kill -TERM "${AGENT_PID[$h]}" 2>/dev/null; done
    for h in "${!AGENT_PID[@]}"; do
        yg_wait_for 5 yg__dead "${AGENT_PID[$h]}" || kill -KILL "${AGENT_PID[$h]}" 2>/dev/null
    done
    [ -n "${KEEP_LOGS:-}" ] && cp -r "$YG_TMP" "$KEEP_LOGS" 2>/dev/null
    yg_cleanup
    netns_cleanup
}
trap pb_cleanup EXIT

mkdir -p "$YG_TMP/bin" "$YG_TMP/db" "$YG_TMP/playbooks"
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$CTL" "$CLI" >"$YG_TMP/bin/yunguan"
chmod +x "$YG_TMP/bin/yunguan"
YUNGUAN=$YG_TMP/bin/yunguan
curl() { ip netns exec "$CTL" curl "$@"; }
on() { local h=$1; shift; ip -n "$P$h" "$@"; }
sysctl_of() { ip netns exec "$P$1" cat "/proc/sys/net/ipv6/conf/br-health/$2"; }

# ---- the playbooks: the shipped one and two made to fail ----
cp "$top_srcdir/playbooks/enable-dual-stack.yaml" "$YG_TMP/playbooks/"
cat >"$YG_TMP/playbooks/dead-gateway.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: Playbook
metadata:
  name: dead-gateway
  description: Move the default route to a gateway that does not exist (it must be rolled back)
steps:
  - name: accept RAs
    action: sysctl.set
    args: {key: "net/ipv6/conf/{{iface}}/accept_ra", value: "2"}
  - name: new default route
    action: route.add
    args: {dst: "::/0", via: "2001:db8:10::99", metric: 1024}
  - name: new gateway answers
    action: wait.for
    args: {condition: neighbour-reachable, address: "2001:db8:10::99", timeout_ms: 2000}
EOF
cat >"$YG_TMP/playbooks/slow-change.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: Playbook
metadata:
  name: slow-change
  description: A change, then a long wait (the agent is killed during it)
steps:
  - name: no RAs
    action: sysctl.set
    args: {key: "net/ipv6/conf/{{iface}}/accept_ra", value: "0"}
  - name: long wait
    action: wait.for
    args: {condition: neighbour-reachable, address: "2001:db8:10::98", timeout_ms: 60000}
EOF
cat >"$YG_TMP/config.yaml" <<EOF
playbook_dir: $YG_TMP/playbooks
playbook_batch_size: 2
playbook_host_timeout_seconds: 120
EOF

# ---- the network ----
netns_add "$SW" && netns_bridge "$SW" mgmt && netns_bridge "$SW" s1 &&
netns_add "$CTL" && netns_port "$SW" mgmt "$CTL" mgmt0 &&
netns_add "$GW" && netns_port "$SW" s1 "$GW" lan0 ||
    { echo "ERROR: cannot build the network"; exit 99; }
ip -n "$CTL" addr add "$CTL_ADDR/24" dev mgmt0
netns_forwarding "$GW"
ip -n "$GW" addr add 198.51.100.1/24 dev lan0
ip -n "$GW" addr add 2001:db8:10::1/64 dev lan0 nodad
for h in $HOSTS; do
    n=${h#hv}
    { netns_add "$P$h" && netns_port "$SW" mgmt "$P$h" mgmt0 && netns_port "$SW" s1 "$P$h" br-health; } ||
        { echo "ERROR: cannot build host $h"; exit 99; }
    on "$h" addr add "192.0.2.1$n/24" dev mgmt0
    on "$h" addr add "198.51.100.2$n/24" dev br-health
    on "$h" route add default via 198.51.100.1 dev br-health
    ip netns exec "$P$h" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/br-health/disable_ipv6'
done

# ---- the controller ----
netns_playbook_controller 2

cat >"$YG_TMP/segments.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: health-dmz
    interface: br-health
    departments: [health]
    ipv4: {prefix: 198.51.100.0/24, gateway: 198.51.100.1}
    ipv6: {prefix: "2001:db8:10::/64", gateway: "2001:db8:10::1"}
    hosts:
      - {name: hv01, ipv4: 198.51.100.21, ipv6: "2001:db8:10::21"}
      - {name: hv02, ipv4: 198.51.100.22, ipv6: "2001:db8:10::22"}
      - {name: hv03, ipv4: 198.51.100.23, ipv6: "2001:db8:10::23"}
EOF
yg "$NETOPS" segment apply "$YG_TMP/segments.yaml"
check_rc 0 "netops applies the segment"

start_agent()
{
    local h=$1 state=$YG_TMP/agent-$1
    mkdir -p "$state"
    ip netns exec "$P$h" "$AGENT" --controller "$YG_URL" --state-dir "$state" --host "$h" \
        --enroll-token-file "$YG_TMP/enroll-$h" --log-level debug 2>>"$YG_TMP/agent-$h.log" &
    AGENT_PID[$h]=$!
    disown "$!"
}
for h in $HOSTS; do
    yg "$ADMIN" --json host enroll "$h" && jqr .secret >"$YG_TMP/enroll-$h"
    start_agent "$h"
done
all_enrolled() { local h; for h in $HOSTS; do [ -s "$YG_TMP/agent-$h/agent.token" ] || return 1; done; }
check "the three agents enroll" yg_wait_for 20 all_enrolled

# run_state RUN: the run's state; run_done RUN: not running any more.
run_json() { yg "$NETOPS" --json playbook show-run "$1" >/dev/null 2>&1; }
run_done() { run_json "$1" && [ "$(jqr .state)" != running ]; }
start_run() { # start_run PLAYBOOK MODE: sets RUN
    api POST /api/v1/playbook-runs "$NETOPS" -H 'Content-Type: application/json' \
        --data "{\"playbook\": \"$1\", \"segment\": \"health-dmz\", \"mode\": \"$2\"}"
    RUN=$(jqr .id "$YG_BODY")
    [ "$status" = 201 ]
}
host_field() { jqr ".hosts[] | select(.host == \"$1\") | $2"; }
dump() { # dump HOST: the state a playbook may touch, normalized
    on "$1" -o addr show dev br-health | sed 's/ *valid_lft.*//; s/^[0-9]*: //'
    on "$1" -6 route show table all | grep -v '^local fe80\|^multicast' | sort
    sysctl_of "$1" disable_ipv6; sysctl_of "$1" accept_ra
}

# ---- (a) check mode ----
for h in $HOSTS; do dump "$h" >"$YG_TMP/before-$h"; done
start_run enable-dual-stack check
check_eq "$status" 201 "a check run of enable-dual-stack starts"
check "... and ends" yg_wait_for 60 run_done "$RUN"
check_eq "$(jqr '.state + " " + ([.hosts[].state] | join(","))')" "succeeded succeeded,succeeded,succeeded" \
    "... succeeded on every host"
check_eq "$(host_field hv01 '[.steps[].status] | join(",")')" \
    "would-change,would-change,skipped,would-change,skipped,unchanged" \
    "... hv01: would change the sysctl, the address and the route; waits skipped; the check evaluated"
check_eq "$(host_field hv01 '.steps[0].before + " -> " + .steps[0].after')" "1 -> 0" "... with before and after"
same=0
for h in $HOSTS; do dump "$h" | cmp -s - "$YG_TMP/before-$h" && same=$((same + 1)); done
check_eq "$same" 3 "... and nothing changed on any host"

# ---- (b) apply ----
start_run enable-dual-stack apply
check_eq "$status" 201 "an apply run of enable-dual-stack starts"
check "... and ends" yg_wait_for 120 run_done "$RUN"
check_eq "$(jqr '.state + " " + ([.hosts[].state] | join(","))')" "succeeded succeeded,succeeded,succeeded" \
    "... succeeded on every host (canary hv01, then hv02 and hv03)"
check_eq "$(host_field hv02 '[.steps[].status] | join(",")')" "changed,changed,unchanged,changed,unchanged,unchanged" \
    "... hv02: sysctl, address and route changed; DAD, gateway and readiness waited for"
check_match "$(on hv03 -6 addr show dev br-health)" '2001:db8:10::23/64 scope global' "hv03 has its planned address"
check_match "$(on hv03 -6 route show default)" 'default via 2001:db8:10::1 dev br-health' "... and the IPv6 default route"
ready() { yg "$NETOPS" --json segments && [ "$(jqr '.items[] | select(.name == "health-dmz") | .state')" = dual-stack-ready ]; }
check "the agents' reports make health-dmz dual-stack-ready" yg_wait_for 20 ready
start_run enable-dual-stack apply
check "applying it again ends" yg_wait_for 120 run_done "$RUN"
check_eq "$(jqr .state) $(host_field hv01 '[.steps[].status] | join(",")')" \
    "succeeded unchanged,unchanged,unchanged,unchanged,unchanged,unchanged" "... and changes nothing (idempotent)"

# ---- (c) a failure rolled back ----
for h in $HOSTS; do dump "$h" >"$YG_TMP/before-$h"; done
start_run dead-gateway apply
check "a run moving the default route to a dead gateway ends" yg_wait_for 60 run_done "$RUN"
check_eq "$(jqr .state) $(host_field hv01 '.state + " " + (.rolled_back | tostring) + " " + (.rollback_ok | tostring)')" \
    "failed failed true true" "... failed on the canary, rolled back"
check_eq "$(host_field hv01 '[.steps[].status] | join(",")')" "undone,undone,failed" \
    "... hv01: both changes undone, the wait failed"
check_eq "$(host_field hv02 .state)" skipped "... and hv02 never got the task"
dump hv01 | cmp -s - "$YG_TMP/before-hv01"
check_rc 0 "hv01 is exactly as before (the replaced default route via 2001:db8:10::1 is back, accept_ra 1)"
[ "$rc" = 0 ] || diff "$YG_TMP/before-hv01" <(dump hv01) | sed 's/^/# /'

# ---- (d) an agent killed during a task ----
start_run slow-change apply
waiting() { run_json "$RUN" && [ "$(host_field hv01 '.steps[0].status')" = changed ]; }
check "the canary reports its first step changed" yg_wait_for 30 waiting
check_eq "$(sysctl_of hv01 accept_ra)" 0 "... accept_ra is 0 on hv01"
kill -KILL "${AGENT_PID[hv01]}"
yg_wait_for 5 yg__dead "${AGENT_PID[hv01]}"
check_eq "$(ls "$YG_TMP/agent-hv01" | grep -c '^task-.*\.journal$')" 1 "hv01's agent is killed; its journal stays"
start_agent hv01
check "the restarted agent reports the task" yg_wait_for 30 run_done "$RUN"
check_eq "$(host_field hv01 '.state + ": " + .message')" "failed: agent restarted during the task; rolled back" \
    "... failed: 'agent restarted during the task; rolled back'"
check_eq "$(sysctl_of hv01 accept_ra)" 1 "... and accept_ra is 1 again"
check_eq "$(ls "$YG_TMP/agent-hv01" | grep -c '^task-')" 0 "... no journal or result left in its state dir"
check_no_match "$(cat "$YG_TMP"/agent-hv0*.log)" ' err (agent|tasks|steps|netstate):' "no agent logged an error"

yg_finish
