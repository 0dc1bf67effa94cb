#!/usr/bin/env bash
# e2e-playbooks.sh — IPv6 migration playbooks end to end: the real yunguand,
# real yunguan-agent processes changing real kernel state, all inside
# network namespaces this test makes (never the host's own interfaces,
# routes or sysctls).
#
#   ctl      yunguan on 192.0.2.10:8470 (mgmt); the CLI runs here too
#   sw       the switch: bridge 'mgmt' and one bridge per segment
#   gwa gwb  the segments' routers: IPv4 and IPv6 gateways (dual-stack)
#   hv01-03  lab-a: IPv4 only (IPv6 disabled on br-lab), planned for IPv6
#   hv04-06  lab-b: the same; hv05's bridge port and the router's are
#            isolated from each other, so lab-b's gateway never answers hv05
#
# Checks:
#   1. check mode on lab-a reports per host what would change and changes
#      nothing (a dump of links, addresses, routes and the touched sysctls
#      is identical before and after, on every host);
#   2. apply on lab-a (canary hv01, then batches of 2): every host succeeds
#      and lab-a becomes dual-stack-ready in the controller's picture;
#   3. re-running the same apply changes nothing and succeeds (every step
#      'unchanged');
#   4. apply on lab-b with batches of 1: the canary hv04 succeeds, hv05 (the
#      second batch) fails at the gateway wait, is rolled back to its exact
#      prior state, the run stops (hv06 skipped and untouched), hv04 stays
#      as its apply left it; the run's record says what happened where;
#   5. roles: a department cannot start a run, cloudops may check but not
#      apply, an auditor reads the record; the audit chain verifies.
# Needs root, 'ip netns', curl, jq (else exit 77).
# KEEP_LOGS=DIR: copy the temporary directory to DIR at the end.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
. "$top_srcdir/tests/e2e/netns-lib.sh"

netns_binaries
PLAYBOOKS=$(cd "$top_srcdir/playbooks" && pwd)
netns_setup
command -v bridge >/dev/null 2>&1 || yg_skip "'bridge' (iproute2) is not installed"

HEARTBEAT=2
P=ygp$$-                 # namespace prefix, unique per run
CTL=${P}ctl SW=${P}sw
CTL_ADDR=192.0.2.10
YG_URL=http://$CTL_ADDR:8470
YG_NETNS=$CTL YG_LISTEN=$CTL_ADDR:8470     # yg_daemon_start runs yunguand there
DB=$YG_TMP/db/yunguan.db
declare -A AGENT_PID     # host -> pid

playbooks_cleanup()
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
trap playbooks_cleanup EXIT

mkdir -p "$YG_TMP/bin" "$YG_TMP/db"
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$CTL" "$CLI" >"$YG_TMP/bin/yunguan"
chmod +x "$YG_TMP/bin/yunguan"
YUNGUAN=$YG_TMP/bin/yunguan
curl() { ip netns exec "$CTL" curl "$@"; }

cat >"$YG_TMP/yunguand.yaml" <<EOF
playbook_dir: $PLAYBOOKS
playbook_host_timeout_seconds: 60
EOF

ctl_start() { yg_daemon_start "$DB" --config "$YG_TMP/yunguand.yaml" --heartbeat-seconds "$HEARTBEAT"; }

# ---- the topology ----------------------------------------------------------------

netns_add "$SW" && netns_bridge "$SW" mgmt && netns_add "$CTL" && netns_port "$SW" mgmt "$CTL" mgmt0 ||
    { echo "ERROR: cannot build the management network"; exit 99; }
ip -n "$CTL" addr add "$CTL_ADDR/24" dev mgmt0

# segment NAME BRIDGE IPV4_GW/LEN IPV6_GW/LEN: a bridge in the switch and a
# dual-stack router (forwarding on, so it answers neighbour solicitations
# with the router flag).
segment()
{
    local gw=$P$1
    netns_bridge "$SW" "$2" && netns_add "$gw" && netns_port "$SW" "$2" "$gw" lan0 || return 1
    netns_forwarding "$gw"
    ip -n "$gw" addr add "$3" dev lan0
    ip -n "$gw" addr add "$4" dev lan0 nodad
}

# host NAME SEGMENT_BRIDGE V4/LEN V4GW: namespace with mgmt0 192.0.2.1NN and
# an IPv4-only br-lab on the segment (IPv6 disabled, as on the real hosts
# before migration), with an IPv4 default route.
host()
{
    local ns=$P$1
    netns_add "$ns" && netns_port "$SW" mgmt "$ns" mgmt0 || return 1
    ip -n "$ns" addr add "192.0.2.1${1#hv}/24" dev mgmt0
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6' || return 1
    netns_port "$SW" "$2" "$ns" br-lab || return 1
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/br-lab/disable_ipv6'
    ip -n "$ns" addr add "$3" dev br-lab
    ip -n "$ns" route add default via "$4" dev br-lab
}

{
    segment gwa sa 198.51.100.1/26 2001:db8:a::1/64 &&
    segment gwb sb 198.51.100.65/26 2001:db8:b::1/64 &&
    host hv01 sa 198.51.100.11/26 198.51.100.1 &&
    host hv02 sa 198.51.100.12/26 198.51.100.1 &&
    host hv03 sa 198.51.100.13/26 198.51.100.1 &&
    host hv04 sb 198.51.100.74/26 198.51.100.65 &&
    host hv05 sb 198.51.100.75/26 198.51.100.65 &&
    host hv06 sb 198.51.100.76/26 198.51.100.65
} || { echo "ERROR: cannot build the segments"; exit 99; }

# lab-b's router never answers hv05: their two bridge ports are isolated
# (an isolated port only talks to non-isolated ones).
isolate_ok=1
for peer in "${P}gwb lan0" "${P}hv05 br-lab"; do
    set -- $peer
    idx=$(ip -n "$1" -o link show "$2" | sed -E 's/.*@if([0-9]+):.*/\1/')
    port=$(ip -n "$SW" -o link show | awk -F': ' -v idx="$idx" '$1 == idx { sub("@.*", "", $2); print $2 }')
    bridge -n "$SW" link set dev "$port" isolated on 2>"$YG_TMP/isolate.err" || isolate_ok=0
done
[ "$isolate_ok" = 1 ] || yg_skip "bridge port isolation is not available: $(cat "$YG_TMP/isolate.err")"

HOSTS="hv01 hv02 hv03 hv04 hv05 hv06"

# dump HOST: the host's network state a playbook may touch, normalised
# (lifetimes and counters removed, sorted): links with MTU and state,
# addresses with flags, routes of every table, the IPv6/IPv4 conf sysctls
# of br-lab.  Compared before and after to prove "exactly as it started".
dump()
{
    local ns=$P$1
    {
        ip -n "$ns" -j link show | jq -c '.[] | {ifname, mtu, operstate, flags}'
        ip -n "$ns" -j addr show | jq -c '.[] | .ifname as $i | .addr_info[] |
            {i: $i, family, local, prefixlen, tentative, dadfailed, deprecated, nodad}'
        ip -n "$ns" -j route show table all | jq -c '.[] | del(.expires)'
        ip -n "$ns" -6 -j route show table all | jq -c '.[] | del(.expires)'
        ip netns exec "$ns" sh -c 'for k in disable_ipv6 accept_ra forwarding mtu accept_dad; do
            printf "%s=%s\n" "$k" "$(cat /proc/sys/net/ipv6/conf/br-lab/$k 2>/dev/null)"; done'
    } | sort
}

# The "before" picture once the kernel has settled: every link-local
# address (mgmt0's too) has finished duplicate address detection.
for h in $HOSTS; do
    wait_until 50 netns_no_tentative "$P$h" mgmt0 || diag "$h: mgmt0 still has a tentative address"
    dump "$h" >"$YG_TMP/dump-$h.before"
done

# ---- the controller, the plan, the agents ----------------------------------------

ctl_start || { not_ok "yunguand starts in its namespace on $CTL_ADDR:8470"; yg_finish; }
ok "yunguand starts with playbook_dir $PLAYBOOKS"
yg_set_quota "$ADMIN" health 8 16GiB 100GiB 4
NETOPS=$(yg_new_token "$ADMIN" netops) && AUDITOR=$(yg_new_token "$ADMIN" auditor) &&
    CLOUDOPS=$(yg_new_token "$ADMIN" cloudops) && DEPT=$(yg_new_token "$ADMIN" department health)
check_eq "$?" 0 "admin makes netops, auditor, cloudops and department tokens"

cat >"$YG_TMP/segments.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: lab-a
    vlan: 210
    interface: br-lab
    departments: [health]
    targetDate: 2030-12-31
    ipv4: {prefix: 198.51.100.0/26, gateway: 198.51.100.1}
    ipv6: {prefix: "2001:db8:a::/64", gateway: "2001:db8:a::1"}
    hosts:
      - {name: hv01, ipv4: 198.51.100.11, ipv6: "2001:db8:a::11"}
      - {name: hv02, ipv4: 198.51.100.12, ipv6: "2001:db8:a::12"}
      - {name: hv03, ipv4: 198.51.100.13, ipv6: "2001:db8:a::13"}
  - name: lab-b
    vlan: 220
    interface: br-lab
    departments: [health]
    targetDate: 2030-12-31
    ipv4: {prefix: 198.51.100.64/26, gateway: 198.51.100.65}
    ipv6: {prefix: "2001:db8:b::/64", gateway: "2001:db8:b::1"}
    hosts:
      - {name: hv04, ipv4: 198.51.100.74, ipv6: "2001:db8:b::74"}
      - {name: hv05, ipv4: 198.51.100.75, ipv6: "2001:db8:b::75"}
      - {name: hv06, ipv4: 198.51.100.76, ipv6: "2001:db8:b::76"}
EOF
yg "$NETOPS" segment apply "$YG_TMP/segments.yaml"
check_rc 0 "netops applies the plan: two IPv4-only segments of three hosts, IPv6 planned"

start_agent()
{
    local h=$1 state=$YG_TMP/agent-$1
    mkdir -p "$state"
    ip netns exec "$P$h" "$AGENT" --controller "$YG_URL" --state-dir "$state" --host "$h" \
        --enroll-token-file "$YG_TMP/enroll-$h" --log-level debug 2>>"$YG_TMP/agent-$h.log" &
    AGENT_PID[$h]=$!
    disown "$!"
}

enrolled=0
for h in $HOSTS; do
    yg "$ADMIN" --json host enroll "$h"
    if [ "$rc" = 0 ] && jqr .secret >"$YG_TMP/enroll-$h" && [ -s "$YG_TMP/enroll-$h" ]; then
        enrolled=$((enrolled + 1))
        start_agent "$h"
    else
        diag "host enroll $h failed:"
        diag_file "$YG_ERR"
    fi
done
check_eq "$enrolled" 6 "each of the 6 hosts is enrolled and its agent starts"
all_enrolled() { local h; for h in $HOSTS; do [ -s "$YG_TMP/agent-$h/agent.token" ] || return 1; done; }
check "every agent enrolls" yg_wait_for 20 all_enrolled

segment_state() { yg "$AUDITOR" --json segment show "$1"; jqr '.segment.state'; }
state_is() { [ "$(segment_state "$1")" = "$2" ]; }
check "lab-a is v6-planned before any playbook (its hosts are IPv4 only)" yg_wait_for 20 state_is lab-a v6-planned

# run_playbook TOKEN ARG...: 'yunguan --json playbook run ARG... --wait'.
run_playbook() { local t=$1; shift; yg "$t" --json playbook run "$@" --wait; }
# run_hosts: "host state" of the last run printed by the CLI, by host name.
run_hosts() { jqr '.hosts[] | "\(.host) \(.state)"' | sort | tr '\n' ' ' | sed 's/ $//'; }
# step_statuses HOST: the host's step statuses, comma separated.
step_statuses() { jq -r --arg h "$1" '.hosts[] | select(.host == $h) | [.steps[].status] | join(",")' "$YG_OUT" 2>/dev/null; }

# ---- 1. check mode changes nothing ------------------------------------------------

run_playbook "$NETOPS" enable-dual-stack --segment lab-a --check
check_rc 0 "netops runs enable-dual-stack on lab-a in check mode (--wait)"
check_eq "$(jqr .state)" succeeded "... the check run succeeds"
check_eq "$(run_hosts)" "hv01 succeeded hv02 succeeded hv03 succeeded" "... on all three hosts at once"
check_match "$(step_statuses hv01)" 'would-change' "... and says per host what would change (hv01: $(step_statuses hv01))"
same=1
for h in hv01 hv02 hv03; do
    dump "$h" >"$YG_TMP/dump-$h.checked"
    cmp -s "$YG_TMP/dump-$h.before" "$YG_TMP/dump-$h.checked" ||
        { same=0; diff "$YG_TMP/dump-$h.before" "$YG_TMP/dump-$h.checked" | sed 's/^/#   /'; }
done
check_eq "$same" 1 "... and nothing changed on any host (netlink + sysctl dumps identical)"

# ---- 2. apply: canary, then batches -------------------------------------------------

yg "$CLOUDOPS" --json playbook run enable-dual-stack --segment lab-a --apply
check_rc 1 "cloudops may not apply a playbook"
yg "$DEPT" --json playbook run enable-dual-stack --segment lab-a --check
check_rc 1 "a department may not run a playbook at all"

run_playbook "$NETOPS" enable-dual-stack --segment lab-a --apply --batch-size 2
check_rc 0 "netops applies enable-dual-stack on lab-a (canary, then batches of 2)"
RUN_A=$(jqr .id)
check_eq "$(jqr .state)" succeeded "... the run succeeds"
check_eq "$(run_hosts)" "hv01 succeeded hv02 succeeded hv03 succeeded" "... on every host"
check_eq "$(jqr '.hosts[] | select(.host == "hv01") | .batch')" 0 "... hv01 was the canary (batch 0)"
check_eq "$(jqr '[.hosts[] | select(.host != "hv01") | .batch] | unique | join(",")')" 1 \
    "... hv02 and hv03 came together in batch 1"
canary_first=$(jqr '(.hosts[] | select(.host == "hv01") | .finished_at) <=
                   ([.hosts[] | select(.host != "hv01") | .started_at] | min)')
check_eq "$canary_first" true "... and only after the canary had finished"
has_v6() { ip -n "$P$1" -6 addr show dev br-lab | grep -q "2001:db8:a::1${1#hv0}/64" &&
           ip -n "$P$1" -6 route show default | grep -q 'via 2001:db8:a::1'; }
applied=1
for h in hv01 hv02 hv03; do
    has_v6 "$h" || { applied=0; diag "$h after apply:"; ip -n "$P$h" addr show br-lab | sed 's/^/#   /'; }
done
check_eq "$applied" 1 "every host has its planned IPv6 address and the IPv6 default route (checked with ip)"
check "lab-a becomes dual-stack-ready in the controller's picture" yg_wait_for 20 state_is lab-a dual-stack-ready

for h in hv01 hv02 hv03; do dump "$h" >"$YG_TMP/dump-$h.applied"; done

# ---- 3. idempotence ------------------------------------------------------------------

run_playbook "$NETOPS" enable-dual-stack --segment lab-a --apply --batch-size 2
check_rc 0 "re-running the completed playbook succeeds"
changed=$(jqr '[.hosts[].steps[] | select(.status == "changed")] | length')
check_eq "$changed" 0 "... and changes nothing (no step 'changed' on any host)"
same=1
for h in hv01 hv02 hv03; do
    dump "$h" >"$YG_TMP/dump-$h.again"
    cmp -s "$YG_TMP/dump-$h.applied" "$YG_TMP/dump-$h.again" ||
        { same=0; diff "$YG_TMP/dump-$h.applied" "$YG_TMP/dump-$h.again" | sed 's/^/#   /'; }
done
check_eq "$same" 1 "... the hosts' dumps are the same as after the first apply"

# ---- 4. a failure in the second batch -------------------------------------------------

run_playbook "$NETOPS" enable-dual-stack --segment lab-b --apply --batch-size 1
check_rc 1 "enable-dual-stack on lab-b fails (lab-b's gateway never answers hv05), exit status 1"
RUN_B=$(jqr .id)
check_eq "$(jqr .state)" failed "... the run is failed"
check_eq "$(run_hosts)" "hv04 succeeded hv05 failed hv06 skipped" \
    "... canary hv04 succeeded, hv05 (second batch) failed, hv06 never started"
check_eq "$(jqr '.hosts[] | select(.host == "hv05") | .rolled_back')" true "... hv05 was rolled back"
check_match "$(step_statuses hv05)" 'failed' "... hv05's record names the failed step ($(step_statuses hv05))"
check_match "$(step_statuses hv05)" 'undone' "... and the steps undone"
dump hv05 >"$YG_TMP/dump-hv05.after"
check "hv05 ends exactly as it started (netlink + sysctl dumps identical)" \
    cmp -s "$YG_TMP/dump-hv05.before" "$YG_TMP/dump-hv05.after"
cmp -s "$YG_TMP/dump-hv05.before" "$YG_TMP/dump-hv05.after" ||
    diff "$YG_TMP/dump-hv05.before" "$YG_TMP/dump-hv05.after" | sed 's/^/#   /'
dump hv06 >"$YG_TMP/dump-hv06.after"
check "hv06 (skipped) is untouched" cmp -s "$YG_TMP/dump-hv06.before" "$YG_TMP/dump-hv06.after"
canary_kept() { ip -n "${P}hv04" -6 addr show dev br-lab | grep -q '2001:db8:b::74/64' &&
                ip -n "${P}hv04" -6 route show default | grep -q 'via 2001:db8:b::1'; }
check "the canary hv04 keeps what its successful apply did" canary_kept

yg "$AUDITOR" --json playbook show "$RUN_B"
check_rc 0 "an auditor reads the failed run's record ('playbook show RUN')"
check_eq "$(jqr '.hosts[] | select(.host == "hv05") | .state')" failed "... which says hv05 failed"

# ---- 5. the trail -----------------------------------------------------------------------

yg "$AUDITOR" --json audit list --limit 200
check_match "$(jqr '[.items[].action] | unique | join(" ")')" 'playbook' "the runs are in the audit trail"
yg "$AUDITOR" audit verify
check_rc 0 "the audit chain verifies"

yg_finish
