#!/bin/sh
# yunguan-agent against real kernel state: network namespaces joined by
# veth pairs to a bridge in a "switch" namespace, a gateway namespace
# (198.51.100.1, 2001:db8:10::1, forwarding on) and one namespace per host
# case.  Each host runs 'yunguan-agent --once --segments-file' and the test
# asserts on the reason codes in the report:
#   a  dual-stack host                     every check passes
#   b  IPv4-only host                      NO_GLOBAL_IPV6, NO_IPV6_DEFAULT_ROUTE
#   c  no IPv6 default route               NO_IPV6_DEFAULT_ROUTE
#   d  two hosts, one IPv6 address         the second: IPV6_DAD_FAILED
#   e  address outside the planned prefix  IPV6_OUTSIDE_PREFIX (fail; warn
#      beside one inside)
#   f  default route via a dead gateway    GATEWAY_NEIGH_FAILED
#   g  MTU 1200                            MTU_TOO_SMALL
#   h  SLAAC segment on a forwarding link  RA_IGNORED_FORWARDING
#   i  an IPv4-only TCP listener           IPV4_ONLY_LISTENER (warn)
#   j  the agent as a daemon: a removed default route is reported at once
#   k  the daemon: f's FAILED entry dropped by the kernel is still GATEWAY_NEIGH_FAILED
# Documentation address ranges only.  Needs root and 'ip netns'; never
# touches the host's own interfaces, routes or sysctls (every change is
# made inside the test's namespaces).  Exit 77 (skip) when that is not
# possible.
set -u

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
AGENT=$top_builddir/agents/yunguan-agent
if [ ! -x "$AGENT" ]; then
    echo "SKIP: $AGENT is not built"
    exit 77
fi
AGENT=$(cd "$(dirname "$AGENT")" && pwd)/$(basename "$AGENT")
. "$top_srcdir/tests/e2e/netns-lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/yunguan-agent-netns.XXXXXX") || exit 99
id=$$
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    netns_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! why=$(netns_usable "$tmp"); then
    echo "SKIP: $why"
    exit 77
fi
SW=ygsw$id
netns_add "$SW" || exit 99
netns_bridge "$SW" br0 || exit 99

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# add_ns NAME: a namespace with lo up and seg0, a veth whose peer is a
# port of the switch's bridge.
add_ns() {
    netns_add "$1" || exit 99
    netns_port "$SW" br0 "$1" seg0 || exit 99
}

# A dual-stack host: IPv4 and IPv6 addresses and default routes.
dual_stack() {  # NS V4 V6
    ip -n "$1" addr add "$2/24" dev seg0
    ip -n "$1" addr add "$3/64" dev seg0 nodad
    ip -n "$1" route add default via 198.51.100.1
    ip -n "$1" -6 route add default via 2001:db8:10::1 dev seg0
}

poke() { netns_poke "$@"; }                                   # NS ADDRESS PORT
neigh_state_is() { netns_neigh_state_is "$1" seg0 "$2" "$3"; }  # NS ADDRESS REGEX
no_tentative() { netns_no_tentative "$1" seg0; }                # NS
has_dadfailed() { netns_has_dadfailed "$1" seg0; }              # NS

# run_agent NS SEGMENTS OUT: one evaluation; the exit status is kept in $rc.
run_agent() {
    mkdir -p "$tmp/state-$1"
    ip netns exec "$1" "$AGENT" --once --segments-file "$2" --state-dir "$tmp/state-$1" \
        --host "$1" >"$3" 2>"$3.err"
    rc=$?
}

has_reason() {  # OUT REASON
    grep -q "\"reason\": \"$2\"" "$1"
}

status_is() {  # OUT STATUS
    grep -q "\"status\": \"$2\"" "$1"
}

# expect CASE OUT RC STATUS REASON... (a reason prefixed by ! must be absent)
expect() {
    name=$1 out=$2 want_rc=$3 want_status=$4
    shift 4
    ok=1
    if [ "$rc" != "$want_rc" ]; then
        fail "$name: exit status $rc, expected $want_rc"
        ok=0
    fi
    if ! status_is "$out" "$want_status"; then
        fail "$name: segment status is not '$want_status'"
        ok=0
    fi
    for r in "$@"; do
        case $r in
        !*)
            if has_reason "$out" "${r#!}"; then fail "$name: unexpected reason ${r#!}"; ok=0; fi ;;
        *)
            if ! has_reason "$out" "$r"; then fail "$name: reason $r missing"; ok=0; fi ;;
        esac
    done
    if [ "$ok" = 1 ]; then
        echo "ok: $name"
    else
        echo "--- report of $name:"
        cat "$out" "$out.err"
    fi
}

SEG=$tmp/segments.json
cat >"$SEG" <<'EOF'
{"host": null, "heartbeat_seconds": 10,
 "segments": [{"name": "health-dmz", "interface": "seg0",
   "ipv4_prefix": "198.51.100.0/24", "ipv4_gateway": "198.51.100.1",
   "ipv6_prefix": "2001:db8:10::/64", "ipv6_gateway": "2001:db8:10::1",
   "slaac": false, "plan": null}]}
EOF
SEG_SLAAC=$tmp/segments-slaac.json
sed 's/"slaac": false/"slaac": true/' "$SEG" >"$SEG_SLAAC"

# The gateway: a router for both families.
GW=yggw$id
add_ns "$GW"
netns_forwarding "$GW"
ip -n "$GW" addr add 198.51.100.1/24 dev seg0
ip -n "$GW" addr add 2001:db8:10::1/64 dev seg0 nodad

A=yga$id B=ygb$id C=ygc$id D1=ygd1$id D2=ygd2$id E=yge$id F=ygf$id G=ygg$id H=ygh$id
for ns in "$A" "$B" "$C" "$D1" "$D2" "$E" "$F" "$G" "$H"; do add_ns "$ns"; done

# a: dual-stack, the gateway resolved as a router.
dual_stack "$A" 198.51.100.21 2001:db8:10::21
# b: IPv4 only.
ip -n "$B" addr add 198.51.100.22/24 dev seg0
ip -n "$B" route add default via 198.51.100.1
# c: an IPv6 address but only an IPv4 default route.
ip -n "$C" addr add 198.51.100.23/24 dev seg0
ip -n "$C" addr add 2001:db8:10::23/64 dev seg0 nodad
ip -n "$C" route add default via 198.51.100.1
# d: the first host takes 2001:db8:10::30 (with DAD) ...
ip -n "$D1" addr add 198.51.100.31/24 dev seg0
ip -n "$D1" addr add 2001:db8:10::30/64 dev seg0
ip -n "$D2" addr add 198.51.100.32/24 dev seg0
# e: an address outside the planned prefix (reached through an on-link gateway).
ip -n "$E" addr add 198.51.100.25/24 dev seg0
ip -n "$E" addr add 2001:db8:99::40/64 dev seg0 nodad
ip -n "$E" route add default via 198.51.100.1
ip -n "$E" -6 route add default via 2001:db8:10::1 dev seg0 onlink
# f: the IPv6 default route points at an address nobody has.
ip -n "$F" addr add 198.51.100.26/24 dev seg0
ip -n "$F" addr add 2001:db8:10::26/64 dev seg0 nodad
ip -n "$F" route add default via 198.51.100.1
ip -n "$F" -6 route add default via 2001:db8:10::99 dev seg0
# g: MTU 1200 (the kernel turns IPv6 off on the link).
ip -n "$G" link set seg0 mtu 1200
ip -n "$G" addr add 198.51.100.27/24 dev seg0
ip -n "$G" route add default via 198.51.100.1
# h: a SLAAC segment on a link that forwards, with accept_ra left at 1.
dual_stack "$H" 198.51.100.28 2001:db8:10::28
ip netns exec "$H" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/seg0/forwarding &&
                          echo 1 > /proc/sys/net/ipv6/conf/seg0/accept_ra'

# --- a
poke "$A" 2001:db8:10::1 9
if ! wait_until 50 neigh_state_is "$A" 2001:db8:10::1 'router.*(REACHABLE|STALE|DELAY|PROBE)'; then
    fail "a: the gateway 2001:db8:10::1 was not resolved as a router within 5 s"
fi
run_agent "$A" "$SEG" "$tmp/a.json"
expect "a: dual-stack host passes" "$tmp/a.json" 0 pass \
    '!NO_GLOBAL_IPV6' '!NO_IPV6_DEFAULT_ROUTE' '!GATEWAY_NOT_ROUTER'
if [ "$(grep -c '"reason": "OK"' "$tmp/a.json")" != 8 ]; then
    fail "a: expected 8 checks with reason OK"
fi

# --- b
run_agent "$B" "$SEG" "$tmp/b.json"
expect "b: IPv4-only host" "$tmp/b.json" 1 fail NO_GLOBAL_IPV6 NO_IPV6_DEFAULT_ROUTE '!NO_IPV4_IN_PREFIX'

# --- c
run_agent "$C" "$SEG" "$tmp/c.json"
expect "c: no IPv6 default route" "$tmp/c.json" 1 fail NO_IPV6_DEFAULT_ROUTE '!NO_GLOBAL_IPV6'

# --- d: when d1's address has passed DAD, d2 takes the same.
if ! wait_until 50 no_tentative "$D1"; then
    fail "d: the address of the first host stayed tentative for 5 s"
fi
ip -n "$D2" addr add 2001:db8:10::30/64 dev seg0
if ! wait_until 50 has_dadfailed "$D2"; then
    fail "d: duplicate address detection did not fail on the second host within 5 s"
fi
run_agent "$D2" "$SEG" "$tmp/d2.json"
expect "d: duplicate address, second host" "$tmp/d2.json" 1 fail IPV6_DAD_FAILED
grep -q 'address 2001:db8:10::30/64 on seg0 failed duplicate address detection' "$tmp/d2.json" ||
    fail "d: the message does not name the address"
run_agent "$D1" "$SEG" "$tmp/d1.json"
if has_reason "$tmp/d1.json" IPV6_DAD_FAILED; then fail "d: the first host reports IPV6_DAD_FAILED"; fi

# --- e
run_agent "$E" "$SEG" "$tmp/e.json"
expect "e: only an address outside the prefix" "$tmp/e.json" 1 fail IPV6_OUTSIDE_PREFIX '!NO_GLOBAL_IPV6'
# ... and beside a usable address inside the prefix it is only a warning.
ip -n "$E" addr add 2001:db8:10::25/64 dev seg0 nodad
run_agent "$E" "$SEG" "$tmp/e2.json"
expect "e: an extra address outside the prefix" "$tmp/e2.json" 0 warn IPV6_OUTSIDE_PREFIX '!NO_GLOBAL_IPV6'
grep -q '"severity": "warn"' "$tmp/e2.json" || fail "e: no check has severity warn"

# --- f: a SYN to anywhere makes the kernel look for 2001:db8:10::99.
poke "$F" 2001:db8:20::5 80 &
poke_pid=$!
PIDS="$PIDS $poke_pid"
if ! wait_until 100 neigh_state_is "$F" 2001:db8:10::99 FAILED; then
    fail "f: the neighbour entry of 2001:db8:10::99 did not become FAILED within 10 s"
fi
run_agent "$F" "$SEG" "$tmp/f.json"
expect "f: gateway neighbour FAILED" "$tmp/f.json" 1 fail GATEWAY_NEIGH_FAILED
grep -q 'gateway 2001:db8:10::99 on seg0' "$tmp/f.json" || fail "f: the message does not name the gateway"

# --- g
run_agent "$G" "$SEG" "$tmp/g.json"
expect "g: MTU 1200" "$tmp/g.json" 1 fail MTU_TOO_SMALL
grep -q 'MTU 1200 on seg0 is below the IPv6 minimum of 1280' "$tmp/g.json" || fail "g: the message does not name the MTU"

# --- h
run_agent "$H" "$SEG_SLAAC" "$tmp/h.json"
expect "h: SLAAC on a forwarding link" "$tmp/h.json" 1 fail RA_IGNORED_FORWARDING

# --- i: an IPv4-only listener on host a (perl is part of every Debian).
if command -v perl >/dev/null 2>&1; then
    ip netns exec "$A" perl -MSocket -e '
        socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
        setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
        bind($s, pack_sockaddr_in(8080, INADDR_ANY)) or die "bind: $!";
        listen($s, 5) or die "listen: $!";
        sleep 30;' &
    listener=$!
    PIDS="$PIDS $listener"
    if wait_until 50 sh -c "ip netns exec $A ss -Hltn 'sport = :8080' | grep -q 8080"; then
        run_agent "$A" "$SEG" "$tmp/i.json"
        expect "i: IPv4-only listener" "$tmp/i.json" 0 warn IPV4_ONLY_LISTENER
        grep -q '0.0.0.0:8080' "$tmp/i.json" || fail "i: the message does not name 0.0.0.0:8080"
    else
        fail "i: the test listener did not start"
    fi
    kill "$listener" 2>/dev/null
    wait "$listener" 2>/dev/null
else
    echo "skip: i (no perl for the test listener)"
fi

# --- j: the daemon notices a lost default route without waiting for the heartbeat.
mkdir -p "$tmp/state-j"
ip netns exec "$A" "$AGENT" --segments-file "$SEG" --state-dir "$tmp/state-j" --host "$A" \
    >"$tmp/j.out" 2>"$tmp/j.err" &
daemon=$!
PIDS="$PIDS $daemon"
if wait_until 50 grep -q '"status":"pass"' "$tmp/j.out"; then
    ip -n "$A" -6 route del default
    if wait_until 50 grep -q NO_IPV6_DEFAULT_ROUTE "$tmp/j.out"; then
        echo "ok: j: the daemon reported the lost IPv6 default route at once"
    else
        fail "j: the daemon did not report the lost IPv6 default route within 5 s"
        cat "$tmp/j.out" "$tmp/j.err"
    fi
else
    fail "j: the daemon made no first report within 5 s"
    cat "$tmp/j.out" "$tmp/j.err"
fi
kill "$daemon" 2>/dev/null
wait "$daemon" 2>/dev/null

# --- k: a dead gateway whose FAILED entry the kernel drops is still a failure
# (a dropped entry read as "no entry yet" and passed: the host flapped to
# ready until the next probe failed again).
wait "$poke_pid" 2>/dev/null
poke "$F" 2001:db8:20::5 80 &
poke_pid=$!
PIDS="$PIDS $poke_pid"
wait_until 100 neigh_state_is "$F" 2001:db8:10::99 FAILED ||
    fail "k: the neighbour entry of 2001:db8:10::99 did not become FAILED again within 10 s"
wait "$poke_pid" 2>/dev/null
mkdir -p "$tmp/state-k"
ip netns exec "$F" "$AGENT" --segments-file "$SEG" --state-dir "$tmp/state-k" --host "$F" \
    >"$tmp/k.out" 2>"$tmp/k.err" &
daemon=$!
PIDS="$PIDS $daemon"
if wait_until 50 grep -q GATEWAY_NEIGH_FAILED "$tmp/k.out"; then
    ip -n "$F" -6 neigh del 2001:db8:10::99 dev seg0 2>/dev/null   # as the kernel's GC does
    if wait_until 50 grep -q 'the kernel has since dropped the entry' "$tmp/k.out" &&
       tail -n 1 "$tmp/k.out" | grep -q GATEWAY_NEIGH_FAILED &&
       ! tail -n 1 "$tmp/k.out" | grep -q '"status":"pass"'; then
        echo "ok: k: the dropped FAILED entry still fails the gateway check"
    else
        fail "k: after the kernel dropped the FAILED entry the gateway check did not stay failed"
        cat "$tmp/k.out" "$tmp/k.err"
    fi
else
    fail "k: the daemon did not report GATEWAY_NEIGH_FAILED within 5 s"
    cat "$tmp/k.out" "$tmp/k.err"
fi
kill "$daemon" 2>/dev/null
wait "$daemon" 2>/dev/null

if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all agent namespace cases passed"
exit 0
