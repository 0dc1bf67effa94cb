#!/bin/bash
# bench/bench-playbooks.sh: an IPv6 migration of one segment of HOSTS
# namespace hosts by the enable-dual-stack playbook, in batches of BATCH
# after one canary (figures only; nothing passes or fails on time):
#
#   sudo bench/bench-playbooks.sh            (HOSTS=50 BATCH=10 by default)
#
# Real yunguand, real yunguan-agent per host, real kernel changes, all in
# network namespaces the script makes and removes (never the host's own
# interfaces, routes or sysctls).  Prints: the run's total seconds from the
# CLI's start to the run's end, seconds per batch, and per step the median
# and p95 of the agents' own duration (the DAD and gateway waits shown
# apart, since they are the kernel's and the network's time, not ours).
#
# Environment: HOSTS (50), BATCH (10), BUILDDIR (the source tree), KEEP=1
# (keep the working directory), HEARTBEAT (10).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
builddir=${BUILDDIR:-$srcdir}
HOSTS=${HOSTS:-50}
BATCH=${BATCH:-10}
HEARTBEAT=${HEARTBEAT:-10}
YUNGUAND=$builddir/controller/yunguand
CLI=$builddir/cli/yunguan
AGENT=$builddir/agents/yunguan-agent

say() { printf '%s\n' "$*"; }
die() { printf 'bench-playbooks.sh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for t in ip jq curl; do command -v "$t" >/dev/null || die "$t is needed"; done
for b in "$YUNGUAND" "$CLI" "$AGENT"; do [ -x "$b" ] || die "$b is not built"; done
[ "$HOSTS" -ge 2 ] && [ "$HOSTS" -le 200 ] || die "HOSTS must be 2-200"

. "$srcdir/tests/e2e/netns-lib.sh"
WORK=$(mktemp -d /var/tmp/yunguan-bench-playbooks.XXXXXX)
P=ygb$$-
CTL=${P}ctl SW=${P}sw GW=${P}gw
URL=http://192.0.2.10:8470
pids=()
cleanup()
{
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 100); do         # up to 10 s for a clean stop
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    netns_cleanup
    [ -n "${KEEP:-}" ] && say "kept $WORK" || rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# One switch with the management and the segment bridge, a dual-stack
# router, HOSTS IPv4-only hosts.
netns_add "$SW" && netns_bridge "$SW" mgmt && netns_bridge "$SW" seg
netns_add "$CTL" && netns_port "$SW" mgmt "$CTL" mgmt0
ip -n "$CTL" addr add 192.0.2.10/24 dev mgmt0
netns_add "$GW" && netns_port "$SW" seg "$GW" lan0 && netns_forwarding "$GW"
ip -n "$GW" addr add 198.51.100.1/24 dev lan0
ip -n "$GW" addr add 2001:db8:c::1/64 dev lan0 nodad
for i in $(seq 1 "$HOSTS"); do
    h=$(printf 'hv%03d' "$i") ns=$P$h
    netns_add "$ns" && netns_port "$SW" mgmt "$ns" mgmt0 && netns_port "$SW" seg "$ns" br-lab
    ip -n "$ns" addr add "192.0.2.$((100 + i))/24" dev mgmt0
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/br-lab/disable_ipv6'
    ip -n "$ns" addr add "198.51.100.$((10 + i))/24" dev br-lab
    ip -n "$ns" route add default via 198.51.100.1 dev br-lab
done

printf 'playbook_dir: %s\nplaybook_batch_size: %s\n' "$srcdir/playbooks" "$BATCH" >"$WORK/yunguand.yaml"
ip netns exec "$CTL" "$YUNGUAND" --db "$WORK/yunguan.db" --listen 192.0.2.10:8470 \
    --config "$WORK/yunguand.yaml" --heartbeat-seconds "$HEARTBEAT" 2>"$WORK/yunguand.log" &
pids+=($!)
for _ in $(seq 100); do
    ip netns exec "$CTL" curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    sleep 0.1
done
ADMIN=$(cat "$WORK/admin.token")
yg() { ip netns exec "$CTL" "$CLI" --server "$URL" --token "$ADMIN" "$@"; }

{
    printf 'apiVersion: yunguan/v1\nkind: SegmentList\nsegments:\n'
    printf '  - name: bench-seg\n    interface: br-lab\n    departments: [bench]\n'
    printf '    ipv4: {prefix: 198.51.100.0/24, gateway: 198.51.100.1}\n'
    printf '    ipv6: {prefix: "2001:db8:c::/64", gateway: "2001:db8:c::1"}\n    hosts:\n'
    for i in $(seq 1 "$HOSTS"); do
        printf '      - {name: %s, ipv4: 198.51.100.%d, ipv6: "2001:db8:c::%x"}\n' \
            "$(printf 'hv%03d' "$i")" $((10 + i)) $((0x100 + i))
    done
} >"$WORK/segments.yaml"
yg quota set bench --vcpus 8 --memory 16GiB --disk 100GiB --vms 4 --max-lease-days 365 >/dev/null
yg segment apply "$WORK/segments.yaml" >/dev/null

for i in $(seq 1 "$HOSTS"); do
    h=$(printf 'hv%03d' "$i")
    yg --json host enroll "$h" | jq -r .secret >"$WORK/enroll-$h"
    mkdir -p "$WORK/agent-$h"
    ip netns exec "$P$h" "$AGENT" --controller "$URL" --state-dir "$WORK/agent-$h" --host "$h" \
        --enroll-token-file "$WORK/enroll-$h" 2>"$WORK/agent-$h.log" &
    pids+=($!)
done
for _ in $(seq 300); do
    n=$(ls "$WORK"/agent-*/agent.token 2>/dev/null | wc -l)
    [ "$n" -ge "$HOSTS" ] && break
    sleep 0.1
done
[ "$n" -ge "$HOSTS" ] || die "only $n of $HOSTS agents enrolled"

say "== enable-dual-stack on $HOSTS namespace hosts, canary + batches of $BATCH"
say "command: HOSTS=$HOSTS BATCH=$BATCH bench/bench-playbooks.sh   ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(date +%s.%N)
yg --json playbook run enable-dual-stack --segment bench-seg --apply --batch-size "$BATCH" --wait \
    >"$WORK/run.json" || true
t1=$(date +%s.%N)
state=$(jq -r .state "$WORK/run.json")
ok=$(jq '[.hosts[] | select(.state == "succeeded")] | length' "$WORK/run.json")
awk -v a="$t0" -v b="$t1" -v s="$state" -v ok="$ok" -v n="$HOSTS" \
    'BEGIN { printf "run %s: %d/%d hosts succeeded, total %.2f s\n", s, ok, n, b - a }'

# Seconds per batch: from the first host's start to the last one's end.
jq -r '.hosts | group_by(.batch)[] |
       "\(.[0].batch) \(length) \([.[].started_at] | min) \([.[].finished_at] | max)"' "$WORK/run.json" |
while read -r b n s f; do
    awk -v b="$b" -v n="$n" -v s="$(date -d "$s" +%s.%N)" -v f="$(date -d "$f" +%s.%N)" \
        'BEGIN { printf "  batch %-2s %3d hosts  %6.2f s\n", b, n, f - s }'
done

say "per step, the agents' own time (median / p95 over hosts, ms):"
jq -r '.hosts[].steps[] | "\(.index)\t\(.action)\t\(.name)\t\(.duration_us)"' "$WORK/run.json" |
    sort -t$'\t' -k1,1n -k4,4n |
    awk -F'\t' '{ k = $1; name[k] = $2 " (" $3 ")"; v[k, ++n[k]] = $4 }
        END { for (k = 0; k in n; k++) {
                  m = v[k, int((n[k] + 1) / 2)]; p = v[k, int(n[k] * 0.95 + 0.999)]
                  w = (name[k] ~ /^(wait\.for|check\.run)/) ? "  (waiting on the kernel/network)" : ""
                  printf "  %-2d %-40s %8.2f %8.2f%s\n", k, name[k], m / 1000, p / 1000, w } }'
