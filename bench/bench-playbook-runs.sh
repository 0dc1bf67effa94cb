#!/bin/bash
# bench/bench-playbook-runs.sh: the controller's side of playbook runs
# (figures only; nothing passes or fails on time).
#
#   bench/bench-playbook-runs.sh
#
# HOSTS hosts on one segment, each with an enrolled agent token; one
# simulated agent per host (a curl loop: long-poll GET
# /api/v1/agents/self/tasks?wait=25, then POST progress and result at
# once) — no host is changed, so this measures the orchestration alone:
# task release, the long-poll wake-ups, the result transactions and the
# batch advances.  Then `yunguand playbook run … --apply --batch-size
# BATCH --wait` and the run's wall time from creation to its end, and
# yunguand's CPU time (utime + stime from /proc/PID/stat) per host.
#
# Environment (all optional): WORKDIR (default
# /var/tmp/yunguan-bench-playbook.<pid>, removed unless KEEP=1), BUILDDIR,
# NO_BUILD=1, HOSTS (50), BATCH (10).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
builddir=${BUILDDIR:-$srcdir}
HOSTS=${HOSTS:-50}
BATCH=${BATCH:-10}

say() { printf '%s\n' "$*"; }
die() { printf 'bench-playbook-runs.sh: %s\n' "$*" >&2; exit 1; }

for tool in curl jq; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
if [ -z "${NO_BUILD:-}" ]; then
    make -C "$builddir" -j2 controller/yunguand cli/yunguan >"${TMPDIR:-/tmp}/bench-playbook-make.$$.log" 2>&1 ||
        die "make failed; see ${TMPDIR:-/tmp}/bench-playbook-make.$$.log"
fi
YUNGUAND=$builddir/controller/yunguand
CLI=$builddir/cli/yunguan

WORKDIR=${WORKDIR:-/var/tmp/yunguan-bench-playbook.$$}
mkdir -p "$WORKDIR/db" "$WORKDIR/playbooks" "$WORKDIR/agents"
pids=()
cleanup()
{
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    [ -n "${KEEP:-}" ] || rm -rf --one-file-system "$WORKDIR"
}
trap cleanup EXIT

cat >"$WORKDIR/playbooks/enable-dual-stack.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: Playbook
metadata:
  name: enable-dual-stack
  description: bench
steps:
  - name: enable ipv6
    action: sysctl.set
    args: {key: "net/ipv6/conf/{{iface}}/disable_ipv6", value: "0"}
  - name: address
    action: address.add
    args: {address: "{{plan.ipv6_cidr}}"}
EOF
{
    printf 'apiVersion: yunguan/v1\nkind: SegmentList\nsegments:\n'
    printf '  - name: bench-seg\n    interface: br-bench\n'
    printf '    ipv4: {prefix: 198.51.100.0/24, gateway: 198.51.100.1}\n'
    printf '    ipv6: {prefix: "2001:db8:10::/64", gateway: "2001:db8:10::1", slaac: false}\n'
    printf '    hosts:\n'
    for ((i = 1; i <= HOSTS; i++)); do
        printf '      - {name: hv%04d, ipv4: 198.51.100.%d, ipv6: "2001:db8:10::%x"}\n' "$i" $((i % 250 + 2)) $((i + 16))
    done
} >"$WORKDIR/segments.yaml"
[ "$HOSTS" -le 250 ] || die "HOSTS is at most 250 (one /24 of IPv4 plan addresses)"
printf 'playbook_dir: %s\nplaybook_batch_size: %s\n' "$WORKDIR/playbooks" "$BATCH" >"$WORKDIR/config.yaml"

"$YUNGUAND" --db "$WORKDIR/db/y.db" --listen 127.0.0.1:0 --config "$WORKDIR/config.yaml" \
    2>"$WORKDIR/yunguand.log" &
ypid=$!
pids+=("$ypid")
port=
for _ in $(seq 400); do
    port=$(sed -n 's/.*serving the API on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORKDIR/yunguand.log" | tail -n 1)
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || die "yunguand does not serve (see $WORKDIR/yunguand.log)"
URL=http://127.0.0.1:$port
ADMIN=$(cat "$WORKDIR/db/admin.token")
NETOPS=$("$CLI" --server "$URL" --token "$ADMIN" --json token create --role netops --description bench | jq -r .token.secret)
"$CLI" --server "$URL" --token "$NETOPS" segment apply "$WORKDIR/segments.yaml" >/dev/null

for ((i = 1; i <= HOSTS; i++)); do
    h=$(printf 'hv%04d' "$i")
    secret=$(curl -sS -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/v1/hosts/$h/enrollment" | jq -r .secret)
    curl -sS -X POST -H "Authorization: Bearer $secret" -H 'Content-Type: application/json' \
        --data "{\"host\": \"$h\"}" "$URL/api/v1/agents/enroll" | jq -r .token >"$WORKDIR/agents/$h.token"
done

# One simulated agent per host: long-poll, then progress and result.
agent()
{
    local token
    token=$(cat "$WORKDIR/agents/$1.token")
    while :; do
        local answer id
        answer=$(curl -sS --max-time 40 2>/dev/null -H "Authorization: Bearer $token" "$URL/api/v1/agents/self/tasks?wait=25") || continue
        id=$(jq -r '.tasks[0].id // empty' <<<"$answer")
        [ -n "$id" ] || continue
        curl -sS -o /dev/null 2>/dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data '{"status": "running", "steps": [{"index": 0, "status": "changed", "before": "1", "after": "0"}]}' \
            "$URL/api/v1/agents/self/tasks/$id/progress"
        curl -sS -o /dev/null 2>/dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data '{"status": "succeeded", "steps": [{"index": 0, "status": "changed", "before": "1", "after": "0"}, {"index": 1, "status": "changed", "before": "", "after": "2001:db8:10::11/64"}]}' \
            "$URL/api/v1/agents/self/tasks/$id/result"
    done
}
for ((i = 1; i <= HOSTS; i++)); do
    agent "$(printf 'hv%04d' "$i")" &
    pids+=("$!")
done
polls_waiting() { curl -sS -H "Authorization: Bearer $ADMIN" "$URL/metrics" | sed -n 's/^yunguan_task_polls_waiting //p'; }
for _ in $(seq 400); do
    [ "$(polls_waiting)" = "$HOSTS" ] && break
    sleep 0.05
done
say "agents polling: $(polls_waiting) of $HOSTS"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$ypid/stat"; }
hz=$(getconf CLK_TCK)
cpu0=$(cpu_ticks)
t0=$(date +%s.%N)
"$CLI" --server "$URL" --token "$NETOPS" --json playbook run enable-dual-stack --segment bench-seg \
    --apply --wait >"$WORKDIR/run.json" || true
t1=$(date +%s.%N)
cpu1=$(cpu_ticks)
state=$(jq -r .state "$WORKDIR/run.json")
created=$(jq -r .created_at "$WORKDIR/run.json")
finished=$(jq -r .finished_at "$WORKDIR/run.json")
batches=$(jq -r .batches "$WORKDIR/run.json")
run_seconds=$(python3 -c "from datetime import datetime as d; f='%Y-%m-%dT%H:%M:%S.%fZ'; print('%.3f' % (d.strptime('$finished', f) - d.strptime('$created', f)).total_seconds())" 2>/dev/null || echo '?')
say "run: $state, $HOSTS hosts, canary + $((batches - 1)) batches of $BATCH"
say "run wall time (created_at → finished_at): ${run_seconds} s; CLI --wait: $(echo "$t1 - $t0" | bc) s"
say "yunguand CPU during the run: $(echo "scale=3; ($cpu1 - $cpu0) / $hz" | bc) s, $(echo "scale=2; ($cpu1 - $cpu0) * 1000 / $hz / $HOSTS" | bc) ms per host (fetch + progress + result + release)"
# Where the time went, from the run's own timestamps: release → fetched
# (the long-poll wake-up), fetched → result (the simulated agent: curl and
# jq processes), last result of a batch → next release (the advance).
python3 - "$WORKDIR/run.json" <<'PY'
import json, sys
from datetime import datetime
def t(s): return datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ').timestamp()
run = json.load(open(sys.argv[1]))
deliver = sorted((t(h['sent_at']) - t(h['released_at'])) * 1000 for h in run['hosts'])
agent = sorted((t(h['finished_at']) - t(h['sent_at'])) * 1000 for h in run['hosts'])
batches = {}
for h in run['hosts']:
    b = batches.setdefault(h['batch'], {'released': t(h['released_at']), 'done': 0})
    b['done'] = max(b['done'], t(h['finished_at']))
advance = [(batches[k + 1]['released'] - batches[k]['done']) * 1000 for k in sorted(batches) if k + 1 in batches]
p = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
print('release -> task fetched (long-poll wake-up): p50 %.1f ms, max %.1f ms' % (p(deliver, .5), deliver[-1]))
print('task fetched -> result (the simulated agent): p50 %.0f ms, max %.0f ms' % (p(agent, .5), agent[-1]))
if advance:
    print('last result of a batch -> next batch released: max %.1f ms' % max(advance))
PY
say "reproduce: HOSTS=$HOSTS BATCH=$BATCH bench/bench-playbook-runs.sh"
