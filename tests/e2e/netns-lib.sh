# tests/e2e/netns-lib.sh — network namespace topology helpers shared by
# agent-netns.sh and e2e-readiness.sh (POSIX sh: sourced by sh or bash).
#
# Every change is made inside namespaces the test creates: never on the
# host's own interfaces, routes or sysctls.  Namespaces are remembered in
# $NETNS_LIST for netns_cleanup.  veth pairs and Linux bridges only (dummy
# links are not available on every machine).
#
#   netns_binaries               AGENT, YUNGUAND, CLI as absolute paths (skip
#                                when the agent is not built)
#   netns_setup                  yg_setup, then skip unless namespaces work
#   netns_usable TMPDIR          root, 'ip' and a namespace with a bridge can
#                                be made; else prints why and returns 1
#   netns_add NAME               a namespace with lo up
#   netns_bridge NS BRIDGE       a bridge (no multicast snooping, so that
#                                neighbour discovery and DAD see every node), up
#   netns_port NS BRIDGE PEER_NS IFNAME
#                                a veth pair: one end a port of BRIDGE in NS,
#                                the other IFNAME in PEER_NS; both up
#   netns_forwarding NS          IPv4 and IPv6 forwarding on in NS (a router)
#   netns_cleanup                delete every namespace netns_add made
#   wait_until TENTHS CMD...     run CMD every 0.1 s until it succeeds, at
#                                most TENTHS times (a bounded poll, never a
#                                fixed sleep)
#   netns_poke NS ADDRESS PORT   one TCP SYN (bash's /dev/tcp) so that the
#                                kernel resolves the next hop; the answer
#                                does not matter
#   netns_neigh_state_is NS DEV ADDRESS REGEX
#   netns_no_tentative NS DEV    no IPv6 address on DEV is tentative
#   netns_has_dadfailed NS DEV   an IPv6 address on DEV failed DAD
#   netns_playbook_controller HEARTBEAT
#                                yunguand in namespace $CTL on $CTL_ADDR:8470
#                                with $DB and $YG_TMP/config.yaml; sets
#                                YG_PID, ADMIN and NETOPS (a netops token);
#                                skips when it has no playbook API

NETNS_LIST=${NETNS_LIST:-}
netns_nports=0

# AGENT, YUNGUAND and CLI as absolute paths: the daemons run inside
# namespaces, from other directories.  Skips when the agent is not built.
netns_binaries()
{
    AGENT=$top_builddir/agents/yunguan-agent
    [ -x "$AGENT" ] || yg_skip "$AGENT is not built"
    AGENT=$(cd "$(dirname "$AGENT")" && pwd)/$(basename "$AGENT")
    YUNGUAND=$(cd "$(dirname "$YUNGUAND")" && pwd)/$(basename "$YUNGUAND")
    CLI=$(cd "$(dirname "$YUNGUAN")" && pwd)/$(basename "$YUNGUAN")
}

# yg_setup, then skips unless this machine can make network namespaces.
netns_setup()
{
    yg_setup
    local why
    why=$(netns_usable "$YG_TMP") || yg_skip "$why"
}

netns_usable()
{
    if [ "$(id -u)" != 0 ]; then
        echo "network namespaces need root"
        return 1
    fi
    for netns_tool in ip bash timeout; do
        if ! command -v "$netns_tool" >/dev/null 2>&1; then
            echo "'$netns_tool' is not installed"
            return 1
        fi
    done
    netns_probe=ygprobe$$
    if ! ip netns add "$netns_probe" 2>"$1/netns.err"; then
        echo "'ip netns add' is not usable here: $(cat "$1/netns.err")"
        return 1
    fi
    if ! ip -n "$netns_probe" link add br0 type bridge 2>"$1/netns.err"; then
        ip netns del "$netns_probe" 2>/dev/null
        echo "cannot make a bridge in a namespace: $(cat "$1/netns.err")"
        return 1
    fi
    ip netns del "$netns_probe"
    return 0
}

netns_add()
{
    ip netns add "$1" || return 1
    NETNS_LIST="$NETNS_LIST $1"
    ip -n "$1" link set lo up
}

netns_bridge()
{
    ip -n "$1" link add "$2" type bridge mcast_snooping 0 || return 1
    ip -n "$1" link set "$2" up
}

netns_port()
{
    netns_nports=$((netns_nports + 1))
    ip -n "$1" link add "p$netns_nports" type veth peer name "$4" netns "$3" || return 1
    ip -n "$1" link set "p$netns_nports" master "$2" up
    ip -n "$3" link set "$4" up
}

netns_forwarding()
{
    ip netns exec "$1" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/forwarding &&
                              echo 1 > /proc/sys/net/ipv4/ip_forward'
}

netns_cleanup()
{
    for netns_ns in $NETNS_LIST; do
        ip netns del "$netns_ns" 2>/dev/null
    done
    NETNS_LIST=
}

wait_until()
{
    wait_until_n=$1
    shift
    while [ "$wait_until_n" -gt 0 ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
        wait_until_n=$((wait_until_n - 1))
    done
    return 1
}

netns_poke()
{
    ip netns exec "$1" timeout 6 bash -c "exec 3<>/dev/tcp/$2/$3" >/dev/null 2>&1
}

netns_neigh_state_is()
{
    ip -n "$1" -6 neigh show "$3" dev "$2" | grep -Eq "$4"
}

netns_no_tentative()
{
    [ -z "$(ip -n "$1" -6 addr show dev "$2" tentative)" ]
}

netns_has_dadfailed()
{
    [ -n "$(ip -n "$1" -6 addr show dev "$2" dadfailed)" ]
}

# yunguand in the controller's namespace $CTL, listening on $CTL_ADDR:8470,
# with the store $DB and $YG_TMP/config.yaml (which names its playbook_dir);
# HEARTBEAT: --heartbeat-seconds.  Sets YG_PID (stopped by yg_finish),
# ADMIN (the first admin token) and NETOPS (a netops token).  Skips when
# this yunguand has no playbook runs or no playbook API.
netns_playbook_controller()
{
    ip netns exec "$CTL" "$YUNGUAND" --db "$DB" --listen "$CTL_ADDR:8470" --heartbeat-seconds "$1" \
        --config "$YG_TMP/config.yaml" 2>"$YG_TMP/yunguand.log" &
    YG_PID=$!
    yg_daemon_pids="$yg_daemon_pids $YG_PID"
    if ! yg_wait_for 15 yg__healthy; then
        grep -q 'playbook_dir: unknown key' "$YG_TMP/yunguand.log" &&
            yg_skip "this yunguand has no playbook runs yet (playbook_dir is not a configuration key)"
        diag_file "$YG_TMP/yunguand.log" 30
        not_ok "yunguand starts"
        yg_finish
    fi
    ADMIN=$(cat "$YG_TMP/db/admin.token")
    api GET /api/v1/playbooks "$ADMIN"
    [ "$status" = 200 ] || yg_skip "this yunguand has no playbook API (GET /api/v1/playbooks: $status)"
    ok "yunguand starts with the playbooks"
    NETOPS=$(yg_new_token "$ADMIN" netops)
}
