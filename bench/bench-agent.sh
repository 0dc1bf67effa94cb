#!/bin/sh
# yunguan-agent: what one evaluation costs with 1,000 addresses and 1,000
# routes on the segment's interface, next to reading the same state with
# 'ip -j addr' + 'ip -j route' (IPv4 and IPv6), and the agent's memory.
# Prints figures; never fails on a time.  Needs root and 'ip netns';
# everything happens inside one namespace of its own.
#
#   sh bench/bench-agent.sh [PATH/TO/yunguan-agent] [RUNS]
set -u

AGENT=${1:-${top_builddir:-.}/agents/yunguan-agent}
RUNS=${2:-7}
if [ ! -x "$AGENT" ]; then
    echo "bench-agent: $AGENT is not built (make agents/yunguan-agent)" >&2
    exit 77
fi
AGENT=$(cd "$(dirname "$AGENT")" && pwd)/$(basename "$AGENT")
if [ "$(id -u)" != 0 ]; then
    echo "bench-agent: needs root for a network namespace" >&2
    exit 77
fi

NS=ygbench$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/yunguan-bench-agent.XXXXXX") || exit 1
daemon=
cleanup() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; fi
    if [ -n "${ctl_pid:-}" ]; then kill "$ctl_pid" 2>/dev/null; wait "$ctl_pid" 2>/dev/null; fi
    ip netns del "$NS" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ip netns add "$NS" 2>"$tmp/err"; then
    echo "bench-agent: 'ip netns add' is not usable: $(cat "$tmp/err")" >&2
    exit 77
fi
ip -n "$NS" link set lo up
ip -n "$NS" link add seg0 type veth peer name peer0
ip -n "$NS" link set peer0 up
ip -n "$NS" link set seg0 up
ip -n "$NS" addr add 198.51.100.21/24 dev seg0
ip -n "$NS" addr add 2001:db8:10::21/64 dev seg0 nodad
ip -n "$NS" route add default via 198.51.100.1
ip -n "$NS" -6 route add default via 2001:db8:10::1 dev seg0

# 1,000 more addresses (750 IPv6, 250 IPv4) and 1,000 routes (750 IPv6,
# 250 IPv4), documentation ranges only, in one 'ip -batch'.
i=1
while [ $i -le 750 ]; do
    printf 'addr add 2001:db8:10::1:%x/128 dev seg0 nodad\n' $i
    printf 'route add 2001:db8:1000:%x::/64 via 2001:db8:10::1 dev seg0\n' $i
    i=$((i + 1))
done >"$tmp/batch"
i=1
while [ $i -le 250 ]; do
    printf 'addr add 203.0.113.%d/32 dev seg0\n' $i
    printf 'route add 192.0.2.%d/32 via 198.51.100.1 dev seg0\n' $i
    i=$((i + 1))
done >>"$tmp/batch"
if ! ip -n "$NS" -batch "$tmp/batch" >"$tmp/err" 2>&1; then
    echo "bench-agent: cannot build the state: $(head -3 "$tmp/err")" >&2
    exit 1
fi
n_addr=$(ip -n "$NS" -o addr show | wc -l)
n_route4=$(ip -n "$NS" -o route show table all | wc -l)
n_route6=$(ip -n "$NS" -o -6 route show table all | wc -l)

cat >"$tmp/segments.json" <<'EOF'
{"host": null, "heartbeat_seconds": 3600,
 "segments": [{"name": "bench", "interface": "seg0",
   "ipv4_prefix": "198.51.100.0/24", "ipv4_gateway": "198.51.100.1",
   "ipv6_prefix": "2001:db8:10::/64", "ipv6_gateway": "2001:db8:10::1",
   "slaac": false, "plan": {"ipv4_address": "198.51.100.21", "ipv6_address": "2001:db8:10::21"}}]}
EOF

now_ns() { date +%s%N; }

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e6 }'; }

: >"$tmp/t-agent"
: >"$tmp/t-eval"
: >"$tmp/t-ip"
: >"$tmp/t-base"
run=0
while [ $run -lt "$RUNS" ]; do
    t0=$(now_ns)
    ip netns exec "$NS" "$AGENT" --once --segments-file "$tmp/segments.json" --state-dir "$tmp" \
        --log-level debug >"$tmp/once.json" 2>"$tmp/once.err"
    t1=$(now_ns)
    echo $((t1 - t0)) >>"$tmp/t-agent"
    sed -n 's/.*evaluated 1 segment(s) in \([0-9.]*\) ms.*/\1/p' "$tmp/once.err" >>"$tmp/t-eval"

    t0=$(now_ns)
    ip netns exec "$NS" sh -c 'ip -j addr show >/dev/null && ip -j route show table all >/dev/null &&
                               ip -j -6 route show table all >/dev/null'
    t1=$(now_ns)
    echo $((t1 - t0)) >>"$tmp/t-ip"

    t0=$(now_ns)
    ip netns exec "$NS" true
    t1=$(now_ns)
    echo $((t1 - t0)) >>"$tmp/t-base"
    run=$((run + 1))
done

# The daemon: caches filled once, then one evaluation per change.  Its
# first report is one full evaluation; its memory is read afterwards.
ip netns exec "$NS" "$AGENT" --segments-file "$tmp/segments.json" --state-dir "$tmp" \
    --log-level debug >"$tmp/daemon.out" 2>"$tmp/daemon.err" &
daemon=$!
i=0
while [ $i -lt 100 ] && [ ! -s "$tmp/daemon.out" ]; do sleep 0.1; i=$((i + 1)); done
# A change makes the daemon evaluate again from warm caches.
ip -n "$NS" addr add 2001:db8:10::ffff/128 dev seg0 nodad
i=0
while [ $i -lt 50 ] && [ "$(grep -c 'evaluated 1 segment' "$tmp/daemon.err")" -lt 2 ]; do
    sleep 0.1; i=$((i + 1))
done
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon/status")
warm=$(sed -n 's/.*evaluated 1 segment(s) in \([0-9.]*\) ms (snapshot \([0-9.]*\) ms.*checks \([0-9.]*\) ms).*/\1 \2 \3/p' \
       "$tmp/daemon.err" | tail -1)

kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; daemon=

# The same daemon as in production: with a controller (here a closed port,
# so reports go to the spool), libcurl is initialised and the playbook task
# thread runs.  What its resident memory consists of, from smaps.
mkdir -p "$tmp/ctl"
echo yg_bench_agent_token >"$tmp/ctl/agent.token"
chmod 600 "$tmp/ctl/agent.token"
ip netns exec "$NS" "$AGENT" --controller http://127.0.0.1:9 --segments-file "$tmp/segments.json" \
    --state-dir "$tmp/ctl" --log-level debug 2>"$tmp/ctl.err" &
daemon=$!
i=0
while [ $i -lt 100 ] && ! grep -q 'evaluated 1 segment' "$tmp/ctl.err"; do sleep 0.1; i=$((i + 1)); done
sleep 1
ctl_rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon/status")
ctl_anon=$(awk '/^RssAnon/ { print $2 }' "/proc/$daemon/status")
ctl_file=$(awk '/^RssFile/ { print $2 }' "/proc/$daemon/status")
# PSS divides each shared page among the processes that map it; USS counts
# only the pages no other process maps: what the host gets back when the
# agent exits.  Both depend on what else runs: on a hypervisor host
# libvirtd maps libcurl-gnutls and most of the libraries it pulls in
# (Debian 12's libvirt links it), so the agent shares those pages there.
ctl_pss=$(awk '/^Pss:/ { print $2 }' "/proc/$daemon/smaps_rollup")
ctl_uss=$(awk '/^Private_(Clean|Dirty):/ { n += $2 } END { print n }' "/proc/$daemon/smaps_rollup")
beside="no libvirtd runs here: the pages of libcurl and its libraries are the agent's alone"
libvirtd_pid=$(pgrep -x libvirtd | head -1)
if [ -n "$libvirtd_pid" ]; then
    if grep -q 'libcurl' "/proc/$libvirtd_pid/maps" 2>/dev/null; then
        beside="beside libvirtd (pid $libvirtd_pid), which maps libcurl-gnutls and its libraries too"
    else
        beside="beside libvirtd (pid $libvirtd_pid), which does not map libcurl"
    fi
fi
# kB per mapping: [heap], [anon], the agent, libc, libnl, and libcurl with
# everything it pulls in (the rest of the shared libraries).
ctl_parts=$(awk '
    /^[0-9a-f]+-[0-9a-f]+ / { n = $6; if (n == "") n = "[anon]"; next }
    /^Rss:/ {
        if (n ~ /yunguan-agent/) k = "agent"
        else if (n ~ /\/libc\.so/) k = "libc"
        else if (n ~ /libnl/) k = "libnl"
        else if (n ~ /libjansson/) k = "jansson"
        else if (n ~ /ld-linux/) k = "ldso"
        else if (n ~ /^\//) k = "curl"
        else if (n == "[heap]") k = "heap"
        else k = "anon"
        part[k] += $2
    }
    END {
        printf "heap %d, other anonymous %d, libcurl with the libraries it pulls in %d, libc %d, libnl %d, jansson %d, ld.so %d, the agent %d\n",
            part["heap"], part["anon"], part["curl"], part["libc"], part["libnl"], part["jansson"], part["ldso"], part["agent"]
    }' "/proc/$daemon/smaps")
kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; daemon=

# And with a real controller over HTTPS, in the same namespace: yunguand
# with a throw-away CA and certificate, the agent enrolled, its first
# report applied.  TLS is where memory can hide (a trust store parsed per
# connection), so this is the figure that matters for production.
YUNGUAND=$(dirname "$AGENT")/../controller/yunguand
YUNGUAN=$(dirname "$AGENT")/../cli/yunguan
tls_line="  daemon memory, with yunguand over HTTPS: skipped (needs controller/yunguand, cli/yunguan and openssl)"
ctl_pid=
if [ -x "$YUNGUAND" ] && [ -x "$YUNGUAN" ] && command -v openssl >/dev/null 2>&1; then
    pki=$tmp/pki
    mkdir -p "$pki" "$tmp/tls-db" "$tmp/tls-state"
    if sh "$(dirname "$0")/../contrib/test-pki.sh" "$pki"; then
        ip netns exec "$NS" "$YUNGUAND" --db "$tmp/tls-db/y.db" --listen 127.0.0.1:8470 \
            --tls-cert "$pki/server.crt" --tls-key "$pki/server.key" 2>"$tmp/tls-ctl.log" &
        ctl_pid=$!
        i=0
        while [ $i -lt 100 ] && ! grep -q 'serving the API' "$tmp/tls-ctl.log"; do sleep 0.1; i=$((i + 1)); done
        url=https://127.0.0.1:8470
        ip netns exec "$NS" "$YUNGUAN" --server "$url" --ca-file "$pki/ca.crt" \
            --token-file "$tmp/tls-db/admin.token" --json host enroll benchhost 2>/dev/null |
            sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p' >"$tmp/tls-secret"
        ip netns exec "$NS" "$AGENT" --controller "$url" --ca-file "$pki/ca.crt" --host benchhost \
            --state-dir "$tmp/tls-state" --enroll-token-file "$tmp/tls-secret" --log-level debug \
            2>"$tmp/tls-agent.log" &
        daemon=$!
        i=0
        while [ $i -lt 100 ] && ! grep -q 'report [0-9]* sent (applied: yes)' "$tmp/tls-agent.log"; do
            sleep 0.1; i=$((i + 1))
        done
        grep -q 'report [0-9]* sent (applied: yes)' "$tmp/tls-agent.log" ||
            echo "bench-agent: the agent's first report over HTTPS was not applied (see its log)" >&2
        sleep 2
        tls_rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon/status")
        tls_pss=$(awk '/^Pss:/ { print $2 }' "/proc/$daemon/smaps_rollup")
        tls_uss=$(awk '/^Private_(Clean|Dirty):/ { n += $2 } END { print n }' "/proc/$daemon/smaps_rollup")
        tls_heap=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { n = $6 } /^Rss:/ && (n == "[heap]" || n == "") { h += $2 } END { print h }' \
                   "/proc/$daemon/smaps")
        tls_line="  daemon memory, with yunguand over HTTPS (enrolled, reporting; yunguand in the same namespace maps the same libraries): VmRSS ${tls_rss:-?} kB, PSS ${tls_pss:-?} kB, USS ${tls_uss:-?} kB, heap and anonymous ${tls_heap:-?} kB"
        kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; daemon=
        kill "$ctl_pid" 2>/dev/null; wait "$ctl_pid" 2>/dev/null; ctl_pid=
    fi
fi

echo "yunguan-agent benchmark: $n_addr addresses, $n_route4 IPv4 + $n_route6 IPv6 routes (all tables) in one namespace; median of $RUNS runs"
echo "  agent --once, whole process (netlink dumps + sysctls + sock_diag + checks + JSON): $(ms "$(median <"$tmp/t-agent")") ms"
echo "  agent --once, evaluation inside it (snapshot + checks):                          $(median <"$tmp/t-eval") ms"
echo "  ip -j addr + ip -j route + ip -j -6 route (three processes, JSON out):          $(ms "$(median <"$tmp/t-ip")") ms"
echo "  (both include entering the namespace: 'ip netns exec NS true' takes $(ms "$(median <"$tmp/t-base")") ms)"
set -- $warm
echo "  daemon, one evaluation after a change (warm caches): ${1:-?} ms (snapshot ${2:-?} ms, checks ${3:-?} ms)"
echo "  daemon memory, reports to stdout: VmRSS ${rss:-?} kB, VmHWM ${hwm:-?} kB"
echo "  daemon memory, with a controller (libcurl initialised, task thread): VmRSS ${ctl_rss:-?} kB (anonymous ${ctl_anon:-?}, files ${ctl_file:-?})"
echo "    by mapping (kB): ${ctl_parts:-?}"
echo "    PSS ${ctl_pss:-?} kB, USS (private pages) ${ctl_uss:-?} kB; $beside"
echo "$tls_line"
echo "  report status: $(sed -n 's/.*"status": "\([a-z]*\)".*/\1/p' "$tmp/once.json" | head -1)"
