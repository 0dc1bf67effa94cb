#!/usr/bin/env bash
# e2e-readiness.sh — dual-stack readiness end to end: the real yunguand,
# real yunguan-agent processes and real kernel state, all inside network
# namespaces this test makes (never the host's own interfaces, routes or
# sysctls).
#
#   ctl          yunguand on 192.0.2.10:8470 (mgmt); the CLI runs here too
#   sw           the switch: bridge 'mgmt' (192.0.2.0/24) and one bridge per
#                segment
#   gwN          a router per segment (forwarding on), IPv4 and IPv6 gateway
#   hvNN         one per host: mgmt0 (192.0.2.1NN) + the segment interfaces,
#                its agent reporting every 2 s (yunguand --heartbeat-seconds 2)
#
# The truth built (segment: host — what is wrong):
#   health-dmz        hv01, hv02 — nothing                        dual-stack-ready
#   civil-affairs     hv03, hv06 — IPv4 only; no IPv6 prefix      v4-only
#   education-campus  hv04, hv05 — IPv4 only                      v6-planned
#   police-internal   hv06 — nothing; hv07 — its IPv6 address is
#                     hv06's (DAD failed); hv08 — no IPv6 default
#                     route                                       dual-stack-partial
#   tax-dmz           hv09 — the gateway's IPv6 is dead (neighbour
#                     FAILED); hv12 — only an address outside the
#                     prefix                                      dual-stack-partial
#   statistics-lab    hv10 — an extra address outside the prefix
#                     (warning); hv11 — MTU 1200                  dual-stack-partial
# Then: (a) hv01 loses its IPv6 default route: health-dmz regresses within
# 5 s (measured); (b) yunguand stopped while hv01 gets it back, hv06 loses
# its own and hv08 gets one, then restarted on the same database: the
# spooled reports arrive, the picture is right and nothing was applied
# twice; (c) a waiver for hv11 makes statistics-lab ready; (d) the progress
# counts match; (e) an agent that stops makes its segment stale after three
# heartbeats.  Needs root, 'ip netns', curl, jq and sqlite3 (else exit 77).
# KEEP_LOGS=DIR: copy the temporary directory (yunguand and agent logs,
# the agents' state, the database) to DIR at the end.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
. "$top_srcdir/tests/e2e/netns-lib.sh"

netns_binaries
yg_require sqlite3
netns_setup

HEARTBEAT=2
P=ygr$$-                 # namespace prefix, unique per run
CTL=${P}ctl SW=${P}sw
CTL_ADDR=192.0.2.10
YG_URL=http://$CTL_ADDR:8470
YG_NETNS=$CTL YG_LISTEN=$CTL_ADDR:8470     # yg_daemon_start runs yunguand there
DB=$YG_TMP/db/yunguan.db
declare -A AGENT_PID     # host -> pid

readiness_cleanup()
{
    local h
    for h in "${!AGENT_PID[@]}"; do kill -TERM "${AGENT_PID[$h]}" 2>/dev/null; done
    for h in "${!AGENT_PID[@]}"; do
        yg_wait_for 5 yg__dead "${AGENT_PID[$h]}" || kill -KILL "${AGENT_PID[$h]}" 2>/dev/null
    done
    [ -n "${KEEP_LOGS:-}" ] && cp -r "$YG_TMP" "$KEEP_LOGS" 2>/dev/null
    yg_cleanup          # daemons, helpers, the temporary directory
    netns_cleanup
}
trap readiness_cleanup EXIT

# The CLI and curl run in the controller's namespace.
mkdir -p "$YG_TMP/bin" "$YG_TMP/db"
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$CTL" "$CLI" >"$YG_TMP/bin/yunguan"
chmod +x "$YG_TMP/bin/yunguan"
YUNGUAN=$YG_TMP/bin/yunguan
curl() { ip netns exec "$CTL" curl "$@"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ---- the controller ----------------------------------------------------------

# ctl_start: yunguand in ctl on $DB; sets YG_PID, YG_LOG, ADMIN.
ctl_start() { yg_daemon_start "$DB" --heartbeat-seconds "$HEARTBEAT"; }

# ---- the topology --------------------------------------------------------------

netns_add "$SW" && netns_bridge "$SW" mgmt && netns_add "$CTL" && netns_port "$SW" mgmt "$CTL" mgmt0 ||
    { echo "ERROR: cannot build the management network"; exit 99; }
ip -n "$CTL" addr add "$CTL_ADDR/24" dev mgmt0

# segment N IPV4_GW/LEN IPV6_GW/LEN: bridge sN in the switch, router gwN.
segment()
{
    local gw=${P}gw$1
    netns_bridge "$SW" "s$1" && netns_add "$gw" && netns_port "$SW" "s$1" "$gw" lan0 || return 1
    netns_forwarding "$gw"
    ip -n "$gw" addr add "$2" dev lan0
    [ -n "${3:-}" ] && ip -n "$gw" addr add "$3" dev lan0 nodad
    return 0
}

# host NAME: namespace hvNN with mgmt0 192.0.2.1NN.
host()
{
    netns_add "$P$1" && netns_port "$SW" mgmt "$P$1" mgmt0 || return 1
    ip -n "$P$1" addr add "192.0.2.1${1#hv}/24" dev mgmt0
}

# carry HOST N IFNAME: the host's interface IFNAME on segment N's bridge.
carry() { netns_port "$SW" "s$2" "$P$1" "$3"; }

# on HOST ARG...: ip -n <the host's namespace> ARG...
on() { local h=$1; shift; ip -n "$P$h" "$@"; }

{
    segment 1 198.51.100.1/26 2001:db8:10::1/64 &&
    segment 2 198.51.100.65/26 &&
    segment 3 198.51.100.129/26 2001:db8:30::1/64 &&
    segment 4 203.0.113.1/26 2001:db8:20::1/64 &&
    segment 5 203.0.113.65/26 2001:db8:50::1/64 &&
    segment 6 203.0.113.129/26 2001:db8:60::1/64 &&
    for h in hv01 hv02 hv03 hv04 hv05 hv06 hv07 hv08 hv09 hv10 hv11 hv12; do host "$h" || exit 1; done &&
    carry hv01 1 br-health && carry hv02 1 br-health &&
    carry hv03 2 br-civil && carry hv06 2 br-civil &&
    carry hv04 3 br-edu && carry hv05 3 br-edu &&
    carry hv06 4 br-police && carry hv07 4 br-police && carry hv08 4 br-police &&
    carry hv09 5 br-tax && carry hv12 5 br-tax &&
    carry hv10 6 br-stats && carry hv11 6 br-stats
} || { echo "ERROR: cannot build the segments"; exit 99; }

# The tax-dmz router's IPv6 is dead: nothing answers for 2001:db8:50::1.
ip netns exec "${P}gw5" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/lan0/disable_ipv6'

# dual HOST IF V4 V4GW V6 V6GW: addresses and both default routes.
dual()
{
    on "$1" addr add "$3" dev "$2"
    on "$1" addr add "$5" dev "$2" nodad
    on "$1" route add default via "$4" dev "$2"
    on "$1" -6 route add default via "$6" dev "$2"
}
# v4 HOST IF V4 [V4GW]: an IPv4 address, and a default route when V4GW.
v4()
{
    on "$1" addr add "$3" dev "$2"
    [ -n "${4:-}" ] && on "$1" route add default via "$4" dev "$2"
    return 0
}

dual hv01 br-health 198.51.100.11/26 198.51.100.1 2001:db8:10::11/64 2001:db8:10::1
dual hv02 br-health 198.51.100.12/26 198.51.100.1 2001:db8:10::12/64 2001:db8:10::1
v4 hv03 br-civil 198.51.100.73/26 198.51.100.65
v4 hv06 br-civil 198.51.100.76/26
v4 hv04 br-edu 198.51.100.134/26 198.51.100.129
v4 hv05 br-edu 198.51.100.135/26 198.51.100.129
# police-internal: hv06 takes 2001:db8:20::30 with DAD; hv07 then takes it
# too (a mistake: its plan says ::31).
on hv06 addr add 203.0.113.6/26 dev br-police
on hv06 addr add 2001:db8:20::30/64 dev br-police
on hv06 route add default via 203.0.113.1 dev br-police
on hv06 -6 route add default via 2001:db8:20::1 dev br-police onlink
v4 hv07 br-police 203.0.113.7/26 203.0.113.1
on hv07 -6 route add default via 2001:db8:20::1 dev br-police onlink
v4 hv08 br-police 203.0.113.8/26 203.0.113.1
on hv08 addr add 2001:db8:20::38/64 dev br-police nodad
dual hv09 br-tax 203.0.113.73/26 203.0.113.65 2001:db8:50::9/64 2001:db8:50::1
v4 hv12 br-tax 203.0.113.76/26 203.0.113.65
on hv12 addr add 2001:db8:99::12/64 dev br-tax nodad
on hv12 -6 route add default via 2001:db8:50::1 dev br-tax onlink
dual hv10 br-stats 203.0.113.140/26 203.0.113.129 2001:db8:60::10/64 2001:db8:60::1
on hv10 addr add 2001:db8:99::10/64 dev br-stats nodad
on hv11 link set br-stats mtu 1200
v4 hv11 br-stats 203.0.113.141/26 203.0.113.129

if wait_until 50 netns_no_tentative "${P}hv06" br-police; then
    on hv07 addr add 2001:db8:20::30/64 dev br-police
    wait_until 50 netns_has_dadfailed "${P}hv07" br-police
fi
check "hv07's copy of hv06's address 2001:db8:20::30 fails duplicate address detection" \
    netns_has_dadfailed "${P}hv07" br-police

# The ready hosts resolve their gateway (answered with the router flag).
for x in "hv01 br-health 2001:db8:10::1" "hv02 br-health 2001:db8:10::1" "hv06 br-police 2001:db8:20::1"; do
    set -- $x
    netns_poke "$P$1" "$3" 9
    wait_until 50 netns_neigh_state_is "$P$1" "$2" "$3" 'router.*(REACHABLE|STALE|DELAY|PROBE)' ||
        diag "$1: the gateway $3 was not resolved as a router within 5 s"
done
# ---- the controller, the plan, the agents -------------------------------------

ctl_start || { not_ok "yunguand starts in its namespace on $CTL_ADDR:8470"; yg_finish; }
ok "yunguand starts in its namespace on $CTL_ADDR:8470 (heartbeat ${HEARTBEAT} s)"
NETOPS=$(yg_new_token "$ADMIN" netops) && AUDITOR=$(yg_new_token "$ADMIN" auditor)
check_eq "$?" 0 "admin makes a netops and an auditor token"

cat >"$YG_TMP/segments.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: health-dmz
    vlan: 110
    interface: br-health
    departments: [health]
    targetDate: 2030-12-31
    ipv4: {prefix: 198.51.100.0/26, gateway: 198.51.100.1}
    ipv6: {prefix: "2001:db8:10::/64", gateway: "2001:db8:10::1"}
    hosts:
      - {name: hv01, ipv4: 198.51.100.11, ipv6: "2001:db8:10::11"}
      - {name: hv02, ipv4: 198.51.100.12, ipv6: "2001:db8:10::12"}
  - name: civil-affairs
    vlan: 140
    interface: br-civil
    departments: [civil-affairs]
    targetDate: 2030-06-30
    ipv4: {prefix: 198.51.100.64/26, gateway: 198.51.100.65}
    hosts:
      - {name: hv03, ipv4: 198.51.100.73}
      - {name: hv06, ipv4: 198.51.100.76}
  - name: education-campus
    vlan: 130
    interface: br-edu
    departments: [education]
    targetDate: 2025-06-30
    ipv4: {prefix: 198.51.100.128/26, gateway: 198.51.100.129}
    ipv6: {prefix: "2001:db8:30::/64", gateway: "2001:db8:30::1"}
    hosts:
      - {name: hv04, ipv4: 198.51.100.134, ipv6: "2001:db8:30::34"}
      - {name: hv05, ipv4: 198.51.100.135, ipv6: "2001:db8:30::35"}
  - name: police-internal
    vlan: 120
    interface: br-police
    departments: [police]
    targetDate: 2030-12-31
    ipv4: {prefix: 203.0.113.0/26, gateway: 203.0.113.1}
    ipv6: {prefix: "2001:db8:20::/64", gateway: "2001:db8:20::1"}
    hosts:
      - {name: hv06, ipv4: 203.0.113.6, ipv6: "2001:db8:20::30"}
      - {name: hv07, ipv4: 203.0.113.7, ipv6: "2001:db8:20::31"}
      - {name: hv08, ipv4: 203.0.113.8, ipv6: "2001:db8:20::38"}
  - name: tax-dmz
    vlan: 150
    interface: br-tax
    departments: [tax]
    targetDate: 2030-12-31
    ipv4: {prefix: 203.0.113.64/26, gateway: 203.0.113.65}
    ipv6: {prefix: "2001:db8:50::/64", gateway: "2001:db8:50::1"}
    hosts:
      - {name: hv09, ipv4: 203.0.113.73, ipv6: "2001:db8:50::9"}
      - {name: hv12, ipv4: 203.0.113.76, ipv6: "2001:db8:50::12"}
  - name: statistics-lab
    vlan: 160
    interface: br-stats
    departments: [health, statistics]
    targetDate: 2030-12-31
    ipv4: {prefix: 203.0.113.128/26, gateway: 203.0.113.129}
    ipv6: {prefix: "2001:db8:60::/64", gateway: "2001:db8:60::1"}
    hosts:
      - {name: hv10, ipv4: 203.0.113.140, ipv6: "2001:db8:60::10"}
      - {name: hv11, ipv4: 203.0.113.141, ipv6: "2001:db8:60::11"}
EOF
yg "$NETOPS" segment apply "$YG_TMP/segments.yaml"
check_rc 0 "netops applies the plan of six segments and twelve hosts with 'yunguan segment apply'"
check_match "$(cat "$YG_OUT")" '^6 segments applied: 6 created' "... six segments created"

HOSTS="hv01 hv02 hv03 hv04 hv05 hv06 hv07 hv08 hv09 hv10 hv11 hv12"

# start_agent HOST: yunguan-agent in the host's namespace, in the background.
start_agent()
{
    local h=$1 state=$YG_TMP/agent-$1
    mkdir -p "$state"
    ip netns exec "$P$h" "$AGENT" --controller "$YG_URL" --state-dir "$state" --host "$h" \
        --enroll-token-file "$YG_TMP/enroll-$h" --log-level debug 2>>"$YG_TMP/agent-$h.log" &
    AGENT_PID[$h]=$!
    disown "$!"        # reaped by bash all the same; no "Killed" notices
}

# stop_agent HOST: SIGTERM, wait (bounded).
stop_agent()
{
    local pid=${AGENT_PID[$1]}
    kill -TERM "$pid" 2>/dev/null
    yg_wait_for 10 yg__dead "$pid" || kill -KILL "$pid" 2>/dev/null
    unset "AGENT_PID[$1]"
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
check_eq "$enrolled" 12 "'yunguan host enroll' makes a one-time secret for each of the 12 hosts, and each agent starts"

all_enrolled() { local h; for h in $HOSTS; do [ -s "$YG_TMP/agent-$h/agent.token" ] || return 1; done; }
check "every agent enrolls and stores its own token" yg_wait_for 20 all_enrolled
api POST /api/v1/agents/enroll "" -H "Authorization: Bearer $(cat "$YG_TMP/enroll-hv01")" \
    -H 'Content-Type: application/json' --data '{"host": "hv01"}'
check_status 401 "an enrollment secret, once spent, is refused (401)"

# ---- the picture ------------------------------------------------------------------

# segments_line: "name state ready/total reason regressed" per segment.
segments_now()
{
    yg "$AUDITOR" --json segments
    [ "$rc" = 0 ] || return 1
    jqr '.items[] | "\(.name) \(.state) \(.hosts_ready)/\(.hosts_total) \(.blocking_reason // "-") \(.regressed)"' |
        sort | gw_norm
}

# Either reason of a gateway that does not answer (see hv09 above).
gw_norm() { sed -E 's/GATEWAY_NEIGH_(FAILED|INCOMPLETE)/GATEWAY_NEIGH_FAILED|INCOMPLETE/g'; }

# hosts_now SEGMENT: "host verdict reason PROBLEM:severity,..." per host.
hosts_now()
{
    yg "$AUDITOR" --json segment show "$1"
    [ "$rc" = 0 ] || return 1
    jqr '.segment.hosts[] | "\(.host) \(.verdict) \(.reason // "-") " +
         ([.problems[] | "\(.reason):\(.severity)"] | unique | join(",") | if . == "" then "-" else . end)' |
        gw_norm
}

# expect_segments TEXT [SECONDS]: wait until segments_now prints TEXT.
expect_picture()
{
    local want=$1 seconds=${2:-30}
    picture_matches() { [ "$(segments_now)" = "$want" ]; }
    yg_wait_for "$seconds" picture_matches
}

# expect_hosts SEGMENT TEXT [SECONDS]
expect_hosts()
{
    local seg=$1 want=$2 seconds=${3:-30}
    hosts_match() { [ "$(hosts_now "$seg")" = "$want" ]; }
    yg_wait_for "$seconds" hosts_match
}

# check_picture DESC EXPECTED [SECONDS]
check_picture()
{
    if expect_picture "$2" "${3:-30}"; then
        ok "$1"
    else
        not_ok "$1"
        diff <(printf '%s\n' "$2") <(segments_now) | sed 's/^/#   /'
    fi
}

check_hosts()
{
    if expect_hosts "$2" "$3" "${4:-30}"; then
        ok "$1"
    else
        not_ok "$1"
        diff <(printf '%s\n' "$3") <(hosts_now "$2") | sed 's/^/#   /'
    fi
}

reported() { ! segment_hosts_all | grep -q ' no-report '; }
segment_hosts_all()
{
    local s
    for s in health-dmz civil-affairs education-campus police-internal tax-dmz statistics-lab; do
        hosts_now "$s" || echo "$s: no answer no-report"
    done
}
check "every host's agent reports within 20 s" yg_wait_for 20 reported

# Nothing but hv09's own agent sends to tax-dmz's dead gateway: its probe
# each heartbeat keeps the neighbour entry INCOMPLETE or FAILED (without
# it the kernel forgets a FAILED entry and "no entry" would pass).
check "hv09's agent probes tax-dmz's gateway 2001:db8:50::1: its neighbour entry is INCOMPLETE or FAILED" \
    wait_until 100 netns_neigh_state_is "${P}hv09" br-tax 2001:db8:50::1 'INCOMPLETE|FAILED'

# An address only outside the planned prefix: the gateway has no route back
# to it, so hv12 is not dual-stack on tax-dmz (DESIGN.md: "a usable global
# IPv6 address inside the segment's prefix"); an extra one beside a usable
# address inside (hv10) is only a warning.
hv12_blocked() { hosts_now tax-dmz | grep -q '^hv12 blocked IPV6_OUTSIDE_PREFIX .*IPV6_OUTSIDE_PREFIX:fail'; }
check "tax-dmz: hv12, whose only IPv6 address is outside the prefix, is blocked (IPV6_OUTSIDE_PREFIX)" \
    yg_wait_for 20 hv12_blocked || diag "hv12: $(hosts_now tax-dmz | grep '^hv12 ')"
hv10_warned() { hosts_now statistics-lab | grep -q '^hv10 ready - .*IPV6_OUTSIDE_PREFIX:warn'; }
check "statistics-lab: hv10's extra address outside the prefix is only a warning (ready)" \
    yg_wait_for 20 hv10_warned || diag "hv10: $(hosts_now statistics-lab | grep '^hv10 ')"
TAX=0/2 HV12_READY=0
hv12="hv12 blocked IPV6_OUTSIDE_PREFIX GATEWAY_NEIGH_FAILED|INCOMPLETE:fail,IPV6_OUTSIDE_PREFIX:fail"

PICTURE="civil-affairs v4-only 0/2 NO_GLOBAL_IPV6 false
education-campus v6-planned 0/2 NO_GLOBAL_IPV6 false
health-dmz dual-stack-ready 2/2 - false
police-internal dual-stack-partial 1/3 IPV6_DAD_FAILED false
statistics-lab dual-stack-partial 1/2 MTU_TOO_SMALL false
tax-dmz dual-stack-partial $TAX GATEWAY_NEIGH_FAILED|INCOMPLETE false"
check_picture "'yunguan segments': every segment's state, hosts ready and top reason match what was built" \
    "$PICTURE" 30

check_hosts "health-dmz: hv01 and hv02 ready, nothing to fix" health-dmz \
"hv01 ready - -
hv02 ready - -"
check_hosts "civil-affairs (no IPv6 prefix): IPv4-only hosts, no global IPv6 address" civil-affairs \
"hv03 blocked NO_GLOBAL_IPV6 NO_GLOBAL_IPV6:fail,NO_IPV6_DEFAULT_ROUTE:fail
hv06 blocked NO_GLOBAL_IPV6 NO_GLOBAL_IPV6:fail"
check_hosts "education-campus: IPv4-only hosts lack a global IPv6 address and an IPv6 default route" \
    education-campus \
"hv04 blocked NO_GLOBAL_IPV6 NO_GLOBAL_IPV6:fail,NO_IPV6_DEFAULT_ROUTE:fail
hv05 blocked NO_GLOBAL_IPV6 NO_GLOBAL_IPV6:fail,NO_IPV6_DEFAULT_ROUTE:fail"
check_hosts "police-internal: hv06 ready, hv07 DAD failed, hv08 missing its IPv6 default route" police-internal \
"hv06 ready - -
hv07 blocked IPV6_DAD_FAILED IPV6_DAD_FAILED:fail
hv08 blocked NO_IPV6_DEFAULT_ROUTE NO_IPV6_DEFAULT_ROUTE:fail"
check_hosts "statistics-lab: hv10 ready with a warning for its address outside the prefix, hv11 MTU 1200" \
    statistics-lab \
"hv10 ready - IPV6_OUTSIDE_PREFIX:warn
hv11 blocked MTU_TOO_SMALL MTU_TOO_SMALL:fail,NO_GLOBAL_IPV6:fail,NO_IPV6_DEFAULT_ROUTE:fail,NO_LINK_LOCAL:fail"
check_hosts "tax-dmz: hv09's gateway does not answer (neighbour FAILED or INCOMPLETE)" tax-dmz \
"hv09 blocked GATEWAY_NEIGH_FAILED|INCOMPLETE GATEWAY_NEIGH_FAILED|INCOMPLETE:fail
$hv12" 10

yg "$AUDITOR" --json segment show tax-dmz
check_match "$(jqr '.segment.hosts[] | select(.host == "hv09") | .problems[0] | "\(.message) | \(.remedy)"')" \
    'gateway 2001:db8:50::1 on br-tax (does not answer|has not answered) neighbour solicitation.*\| .*check the gateway' \
    "... its problem names the gateway and the interface, with a remedy"
yg "$AUDITOR" segment show police-internal
check_match "$(cat "$YG_OUT")" 'hv07 +blocked +ipv6-global-address +IPV6_DAD_FAILED \(fail\)' \
    "'yunguan segment show' prints hv07's failing check and reason"

# ---- (a) regression ----------------------------------------------------------------

regressed_now()
{
    [ "$(segments_now | grep '^health-dmz ')" = "health-dmz dual-stack-partial 1/2 NO_IPV6_DEFAULT_ROUTE true" ]
}
t0=$(now)
on hv01 -6 route del default
if yg_wait_for 5 regressed_now; then
    t1=$(now)
    ok "(a) hv01 loses its IPv6 default route: health-dmz leaves dual-stack-ready, regressed, in $(elapsed "$t0" "$t1") s (limit 5 s)"
else
    not_ok "(a) hv01 loses its IPv6 default route: health-dmz leaves dual-stack-ready, regressed, within 5 s"
    segments_now | sed 's/^/#   /'
fi
check_hosts "... and names hv01 and NO_IPV6_DEFAULT_ROUTE" health-dmz \
"hv01 blocked NO_IPV6_DEFAULT_ROUTE NO_IPV6_DEFAULT_ROUTE:fail
hv02 ready - -" 5
yg "$ADMIN" --json audit list --all
check_eq "$(jqr '[.items[] | select(.action == "segment.regressed") | "\(.object) \(.before.state) \(.after.state)"] | join(",")')" \
    "segment/health-dmz dual-stack-ready dual-stack-partial" \
    "... with one audit entry segment.regressed (dual-stack-ready -> dual-stack-partial)"

# ---- (b) the controller stops while agents change state --------------------------------

spool_count() { find "$YG_TMP/agent-$1/spool" -name '*.json' 2>/dev/null | wc -l; }
spooled() { local h; for h in "$@"; do [ "$(spool_count "$h")" -ge 1 ] || return 1; done; }
spools_empty() { local h; for h in $HOSTS; do [ "$(spool_count "$h")" -eq 0 ] || return 1; done; }

yg_daemon_stop
check_eq "$yg_daemon_status" 0 "(b) yunguand stops on SIGTERM (exit status 0)"
on hv01 -6 route add default via 2001:db8:10::1 dev br-health
on hv06 -6 route del default dev br-police
on hv08 -6 route add default via 2001:db8:20::1 dev br-police
check "... hv01, hv06 and hv08 notice their changes and spool the reports meanwhile" \
    yg_wait_for 10 spooled hv01 hv06 hv08
# One more heartbeat while it is down, so that unchanged hosts spool too.
check "... and the unchanged hosts spool their heartbeats" yg_wait_for $((2 * HEARTBEAT + 2)) spooled $HOSTS
diag "spooled while yunguand was down: $(for h in $HOSTS; do printf '%s=%s ' "$h" "$(spool_count "$h")"; done)"

ctl_start
check_eq "$?" 0 "... yunguand starts again on the same database"
t0=$(now)
if yg_wait_for 90 spools_empty; then
    ok "... every agent replays its spool (empty after $(elapsed "$t0" "$(now)") s)"
else
    not_ok "... every agent replays its spool"
    diag "still spooled: $(for h in $HOSTS; do printf '%s=%s ' "$h" "$(spool_count "$h")"; done)"
fi
check_picture "... the final picture: health-dmz ready again (no longer regressed), police-internal 1/3" \
"civil-affairs v4-only 0/2 NO_GLOBAL_IPV6 false
education-campus v6-planned 0/2 NO_GLOBAL_IPV6 false
health-dmz dual-stack-ready 2/2 - false
police-internal dual-stack-partial 1/3 IPV6_DAD_FAILED false
statistics-lab dual-stack-partial 1/2 MTU_TOO_SMALL false
tax-dmz dual-stack-partial $TAX GATEWAY_NEIGH_FAILED|INCOMPLETE false" 30
check_hosts "... police-internal: hv06 now lacks its IPv6 default route, hv08 has one" police-internal \
"hv06 blocked NO_IPV6_DEFAULT_ROUTE NO_IPV6_DEFAULT_ROUTE:fail
hv07 blocked IPV6_DAD_FAILED IPV6_DAD_FAILED:fail
hv08 ready - -"
check_hosts "... health-dmz: both hosts ready" health-dmz \
"hv01 ready - -
hv02 ready - -"

# No report applied twice: each history has no repeated state, and the
# controller's last applied seq is the agent's own (agents stopped first so
# that nothing is in flight).
history_dups=
for s in health-dmz civil-affairs education-campus police-internal tax-dmz statistics-lab; do
    yg "$AUDITOR" --json segment history "$s"
    d=$(jqr '[.items | range(1; length) as $i | select(.[$i].state == .[$i - 1].state) | .[$i].at] | join(",")')
    [ -n "$d" ] && history_dups="$history_dups $s($d)"
done
check_eq "$history_dups" "" "... no segment's history repeats a state (no transition applied twice)"
yg "$AUDITOR" --json segment history health-dmz
diag "health-dmz history: $(jqr '[.items[].state] | join(" -> ")')"

for h in $HOSTS; do stop_agent "$h"; done
seq_mismatch=
for h in $HOSTS; do
    a=$(cat "$YG_TMP/agent-$h/seq" 2>/dev/null)
    c=$(sqlite3 -readonly "$DB" "SELECT last_seq FROM hosts WHERE name = '$h'")
    [ -n "$a" ] && [ "$a" = "$c" ] || seq_mismatch="$seq_mismatch $h(agent $a, controller $c)"
done
check_eq "$seq_mismatch" "" "... each host's last applied seq (hosts.last_seq) equals its agent's seq file"
dup_answers=$(cat "$YG_TMP"/agent-hv*.log | grep -c 'applied: no')
diag "reports the controller acknowledged without applying (already applied): $dup_answers"
check_eq "$(cat "$YG_TMP"/agent-hv*.log | grep -c 'rejected')" 0 "... and it rejected no report"
# Unchanged evaluations went as hash-only heartbeats (doc/AGENT.md), and
# the controller applied them: every host has sent some by now.
no_heartbeats=
for h in $HOSTS; do
    grep -q 'heartbeat [0-9]* sent (applied: yes)' "$YG_TMP/agent-$h.log" || no_heartbeats="$no_heartbeats $h"
done
check_eq "$no_heartbeats" "" "... unchanged evaluations went as hash-only heartbeats, applied"
for h in $HOSTS; do start_agent "$h"; done

# ---- (c) a waiver ----------------------------------------------------------------------

yg "$NETOPS" segment waive statistics-lab --host hv11 --reason "MTU 1200 link replaced in the next window" --days 7
check_rc 0 "(c) netops waives hv11 on statistics-lab for 7 days"
check_picture "... statistics-lab becomes dual-stack-ready (1/1: the waived host is not counted)" \
"civil-affairs v4-only 0/2 NO_GLOBAL_IPV6 false
education-campus v6-planned 0/2 NO_GLOBAL_IPV6 false
health-dmz dual-stack-ready 2/2 - false
police-internal dual-stack-partial 1/3 IPV6_DAD_FAILED false
statistics-lab dual-stack-ready 1/1 - false
tax-dmz dual-stack-partial $TAX GATEWAY_NEIGH_FAILED|INCOMPLETE false" 20
yg "$AUDITOR" --json segment show statistics-lab
check_eq "$(jqr '.segment.hosts[] | select(.host == "hv11") | "\(.verdict) \(.waiver.reason)"')" \
    "waived MTU 1200 link replaced in the next window" "... hv11 shows as waived, with the reason"

# ---- (d) progress ------------------------------------------------------------------------

yg "$AUDITOR" --json segments
cp "$YG_OUT" "$YG_TMP/segments.json"
yg "$AUDITOR" --json progress
check_rc 0 "(d) 'yunguan progress' answers"
check_eq "$(jqr '.overall | "\(.segments) \(.segments_ready) \(.hosts) \(.hosts_ready) \(.segments_late)"')" \
    "6 2 12 $((4 + HV12_READY)) 1" "... overall: 2 of 6 segments ready, $((4 + HV12_READY)) of 12 hosts, 1 segment late (education-campus)"
check_eq "$(jqr '.overall | "\(.segments) \(.segments_ready) \(.hosts) \(.hosts_ready)"')" \
    "$(jq -r '.items | "\(length) \(map(select(.state == "dual-stack-ready")) | length) \(map(.hosts_total) | add) \(map(.hosts_ready) | add)"' "$YG_TMP/segments.json")" \
    "... the same counts as the segment list"
check_eq "$(jqr '[.departments[] | "\(.scope):\(.segments_ready)/\(.segments):\(.hosts_ready)/\(.hosts)"] | join(" ")')" \
    "civil-affairs:0/1:0/2 education:0/1:0/2 health:2/2:3/3 police:0/1:1/3 statistics:1/1:1/1 tax:0/1:$TAX" \
    "... per department (health owns health-dmz and statistics-lab)"
yg "$AUDITOR" progress
check_match "$(cat "$YG_OUT")" "^overall +2/6 +33% +$((4 + HV12_READY))/12 " \
    "... and the table says 2/6 segments and $((4 + HV12_READY))/12 hosts ready"

# ---- (e) a silent agent -----------------------------------------------------------------

t0=$(now)
kill -KILL "${AGENT_PID[hv02]}"
unset "AGENT_PID[hv02]"
stale_now() { [ "$(segments_now | grep '^health-dmz ')" = "health-dmz dual-stack-partial 1/2 STALE_REPORT true" ]; }
if yg_wait_for $((5 * HEARTBEAT + 5)) stale_now; then
    ok "(e) hv02's agent killed: health-dmz turns dual-stack-partial (STALE_REPORT) after $(elapsed "$t0" "$(now)") s (3 heartbeats = $((3 * HEARTBEAT)) s, swept every $HEARTBEAT s)"
else
    not_ok "(e) hv02's agent killed: health-dmz turns dual-stack-partial (STALE_REPORT)"
    segments_now | sed 's/^/#   /'
fi
check_match "$(hosts_now health-dmz)" '^hv02 stale STALE_REPORT STALE_REPORT:fail$' "... hv02's verdict is stale"

yg "$AUDITOR" --json audit verify
check_eq "$(jqr .ok)" true "the audit chain verifies"
if grep -q 'ERROR\|assert' "$YG_TMP"/yunguand.*.log; then
    diag "yunguand logged errors:"
    grep -h 'ERROR\|assert' "$YG_TMP"/yunguand.*.log | head -n 5 | sed 's/^/#   /'
fi
yg_finish
