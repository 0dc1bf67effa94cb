#!/bin/bash
# bench/bench-readiness.sh: dual-stack readiness benchmarks (figures only;
# nothing passes or fails on time).  Run by bench/run-all.sh ("readiness")
# or alone:
#
#   bench/bench-readiness.sh [ingest] [summary]        (default: both)
#
# ingest   agent reports over HTTP: INGEST_HOSTS hosts (agent tokens, 4
#          segments each, 25 hosts per segment) made directly in SQLite by
#          bench/readiness-fill.py, then simulated agents: heartbeats
#          that change nothing (the common case), as hash-only heartbeats
#          and as full reports, then CHANGE_PERCENT % changed results (the
#          rest hash-only heartbeats, then all full), then the cold case
#          (hosts the controller has no results for yet).  Reports/s,
#          p50/p99, the store's commits and changes (/metrics), yunguand's
#          CPU per report and the load generator's.  GENERATOR picks the
#          simulated agents: "c" (default) bench/bench-ingest, C with epoll
#          and the agent's own bodies and SHA-256; "wrk" wrk with
#          bench/report.lua (the figures of session 2); "both".  Client and
#          server share this machine's CPUs: real agents run elsewhere.
# summary  SUMMARY_HOSTS hosts on SUMMARY_SEGMENTS segments (4 per host)
#          with realistic derived state (readiness-fill.py --state), then
#          wrk: GET /api/v1/segments/{name} (random names) with one client
#          and with CONNECTIONS, and the full GET /api/v1/segments with one.
#
# Environment (all optional): WORKDIR (a real disk; default
# /var/tmp/yunguan-bench-readiness.<pid>, removed unless KEEP=1), YUNGUAND,
# BUILDDIR, NO_BUILD=1, INGEST_HOSTS (10000), INGEST_SECONDS (15),
# CHANGE_PERCENT (10), SUMMARY_HOSTS (100000), SUMMARY_SEGMENTS (10000),
# SUMMARY_SECONDS (10), CONNECTIONS (32), WRK_THREADS (2), WRK_TIMEOUT (30s),
# GENERATOR (c), BENCH_INGEST (the bench/bench-ingest this tree builds).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
builddir=${BUILDDIR:-$srcdir}
INGEST_HOSTS=${INGEST_HOSTS:-10000}
INGEST_SECONDS=${INGEST_SECONDS:-15}
CHANGE_PERCENT=${CHANGE_PERCENT:-10}
SUMMARY_HOSTS=${SUMMARY_HOSTS:-100000}
SUMMARY_SEGMENTS=${SUMMARY_SEGMENTS:-10000}
SUMMARY_SECONDS=${SUMMARY_SECONDS:-10}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-2}
WRK_TIMEOUT=${WRK_TIMEOUT:-30s}
GENERATOR=${GENERATOR:-c}
sections=${*:-ingest summary}

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
die() { printf 'bench-readiness.sh: %s\n' "$*" >&2; exit 1; }

for tool in curl python3; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
# wrk: for the summary section, and for ingest with GENERATOR=wrk or both.
if [ -z "${NO_BUILD:-}" ]; then
    if [ ! -f "$builddir/Makefile" ]; then
        [ -x "$srcdir/configure" ] || (cd "$srcdir" && autoreconf -fi)
        (cd "$builddir" && "$srcdir/configure" -q)
    fi
    make -C "$builddir" -j"$(nproc)" controller/yunguand bench/bench-ingest >"${TMPDIR:-/tmp}/bench-readiness-make.$$.log" 2>&1 ||
        die "make failed; see ${TMPDIR:-/tmp}/bench-readiness-make.$$.log"
fi
if grep -qE '^(CFLAGS|SAN_CFLAGS) *=.*-fsanitize' "$builddir/Makefile" 2>/dev/null; then
    die "this tree is configured with sanitizers; benchmark a default (-O2 -g) build"
fi
YUNGUAND=${YUNGUAND:-$builddir/controller/yunguand}
[ -x "$YUNGUAND" ] || die "no yunguand at $YUNGUAND"
BENCH_INGEST=${BENCH_INGEST:-$builddir/bench/bench-ingest}
case $GENERATOR in
c|both) [ -x "$BENCH_INGEST" ] || die "no bench-ingest at $BENCH_INGEST (make bench/bench-ingest)" ;;
wrk) ;;
*) die "GENERATOR must be c, wrk or both" ;;
esac
if [ "$GENERATOR" != c ] || [[ " $sections " == *" summary "* ]]; then
    command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
fi
FILL=$here/readiness-fill.py

WORKDIR=${WORKDIR:-/var/tmp/yunguan-bench-readiness.$$}
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
fstype=$(df -PT "$WORKDIR" | awk 'NR == 2 { print $2 }')
[ "$fstype" = tmpfs ] && say "WARNING: $WORKDIR is on tmpfs: fsync is free there; use a real disk"
YG_PID=
cleanup() {
    [ -n "$YG_PID" ] && kill "$YG_PID" 2>/dev/null && wait "$YG_PID" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$WORKDIR"
}
trap cleanup EXIT

# start_yunguand DB [ARG...]: on a free port; sets YG_PID, YG_URL, YG_ADMIN.
nstarts=0
start_yunguand() {
    local db=$1 port="" i
    nstarts=$((nstarts + 1))
    local log=$1.$nstarts.log
    shift
    "$YUNGUAND" --db "$db" --listen 127.0.0.1:0 "$@" >>"$log" 2>&1 &
    YG_PID=$!
    for i in $(seq 1 600); do
        port=$(sed -n 's/.*serving the API on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | tail -n 1)
        [ -n "$port" ] && break
        kill -0 "$YG_PID" 2>/dev/null || { cat "$log" >&2; die "yunguand did not start"; }
        sleep 0.1
    done
    [ -n "$port" ] || die "yunguand did not say where it serves (see $log)"
    YG_URL=http://127.0.0.1:$port
    YG_ADMIN=$(cat "$(dirname "$db")/admin.token")
}
stop_yunguand() {
    kill -TERM "$YG_PID" 2>/dev/null || true
    wait "$YG_PID" 2>/dev/null || true
    YG_PID=
}
# new_store DIR: a store with yunguand's schema (started once, stopped).
new_store() {
    mkdir -p "$1"
    start_yunguand "$1/yunguan.db"
    stop_yunguand
}
metric() {    # metric NAME: the value from /metrics, 0 when absent
    curl -sS -H "Authorization: Bearer $YG_ADMIN" "$YG_URL/metrics" |
        awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# wait_idle: until the store's change counter stands still for a second.
wait_idle() {
    local a b i
    a=$(metric yunguan_store_changes_total)
    for i in $(seq 1 300); do
        sleep 1
        b=$(metric yunguan_store_changes_total)
        [ "$a" = "$b" ] && return 0
        a=$b
    done
}
wrk_figures() {   # "rps p50 p99 non2xx" from plain wrk --latency output
    awk '/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 } /^Requests\/sec:/ { rps = $2 }
         /Non-2xx or 3xx responses:/ { non = $5 }
         END { printf "%s req/s, p50 %s, p99 %s, non-2xx %d\n", rps, p50, p99, non + 0 }' "$1"
}
declare -a SUMMARY

section "machine"
say "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
say "cpus:        $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
say "workdir:     $WORKDIR ($fstype)"
say "build:       CFLAGS = $(sed -n 's/^CFLAGS = //p' "$builddir/Makefile" 2>/dev/null)"
say "load:        $(cat /proc/loadavg)"

# ingest_run LABEL CHANGE_PERCENT COMPACT: one wrk run of report.lua
# (COMPACT 1: hash-only heartbeats, 0: every report full); prints figures.
ingest_run() {
    local label=$1 change=$2 compact=${3:-0} out=$WORKDIR/wrk-ingest-$1.txt
    local c0 j0 cpu0 load0
    c0=$(metric yunguan_store_commits_total)
    j0=$(metric yunguan_store_changes_total)
    cpu0=$(cpu_ms "$YG_PID")
    load0=$(loadavg)
    say "\$ YG_TOKENS=$TOKENS YG_WRK_THREADS=$WRK_THREADS YG_CHANGE_PERCENT=$change YG_COMPACT=$compact YG_ASSUME_STORED=$compact \\"
    say "    wrk -t$WRK_THREADS -c$CONNECTIONS -d${INGEST_SECONDS}s --timeout $WRK_TIMEOUT --latency -s bench/report.lua $YG_URL"
    # wrk's own CPU time (user + system), as bash's time keyword reports it.
    local TIMEFORMAT='%U %S'
    { time (cd "$srcdir" && YG_TOKENS=$TOKENS YG_WRK_THREADS=$WRK_THREADS YG_CHANGE_PERCENT=$change \
        YG_COMPACT=$compact YG_ASSUME_STORED=$compact wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${INGEST_SECONDS}s" --timeout "$WRK_TIMEOUT" --latency \
        -s bench/report.lua "$YG_URL" >"$out" 2>&1) || { cat "$out"; die "wrk failed"; }; } 2>"$out.cpu"
    local load1
    load1=$(loadavg)
    wait_idle
    local cpu=$(( $(cpu_ms "$YG_PID") - cpu0 ))
    local commits=$(( $(metric yunguan_store_commits_total) - c0 ))
    local jobs=$(( $(metric yunguan_store_changes_total) - j0 ))
    local line n
    line=$(grep '^REPORTS ' "$out")
    grep '^status ' "$out" | sed 's/^/    /'
    say "$line"
    n=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$line")
    say "    store:  $jobs changes in $commits commits ($(awk -v j="$jobs" -v c="$commits" 'BEGIN { printf "%.1f", c ? j / c : 0 }') per commit)"
    local client
    client=$(awk -v n="$n" '{ printf "%.0f", n ? ($1 + $2) * 1e6 / n : 0 }' "$out.cpu")
    say "    cpu:    yunguand used $cpu ms = $(awk -v c="$cpu" -v n="$n" 'BEGIN { printf "%.0f", n ? c * 1000 / n : 0 }') us per report, wrk $client us; load average $load0 -> $load1"
    SUMMARY+=("ingest (wrk -c$CONNECTIONS), $label: $(sed -n 's/.* rps=\([0-9]*\) p50_ms=\([0-9.]*\) .* p99_ms=\([0-9.]*\) .*/\1 reports\/s, p50 \2 ms, p99 \3 ms/p' <<<"$line"); yunguand $(awk -v c="$cpu" -v n="$n" 'BEGIN { printf "%.0f", n ? c * 1000 / n : 0 }') us CPU per report, client $client us; $jobs changes in $commits commits; load $load0 -> $load1")
}

# ingest_run_c LABEL CHANGE_PERCENT [ARG...]: one run of bench-ingest
# (ARG: --every-report-full, --once, --no-warmup); prints figures.
ingest_run_c() {
    local label=$1 change=$2 out=$WORKDIR/c-ingest-$1.txt
    shift 2
    local c0 j0 load0 load1 line
    c0=$(metric yunguan_store_commits_total)
    j0=$(metric yunguan_store_changes_total)
    load0=$(loadavg)
    "$BENCH_INGEST" --url "$YG_URL" --tokens "$TOKENS" --pid "$YG_PID" -c "$CONNECTIONS" \
        -d "$INGEST_SECONDS" --change-percent "$change" "$@" >"$out" 2>&1 ||
        { cat "$out"; die "bench-ingest failed (or an answer was wrong)"; }
    load1=$(loadavg)
    wait_idle
    local commits=$(( $(metric yunguan_store_commits_total) - c0 ))
    local jobs=$(( $(metric yunguan_store_changes_total) - j0 ))
    grep '^\$ ' "$out"
    line=$(grep '^REPORTS ' "$out")
    say "$line"
    say "    store:  $jobs changes in $commits commits (incl. the warm-up pass; $(awk -v j="$jobs" -v c="$commits" 'BEGIN { printf "%.1f", c ? j / c : 0 }') per commit)"
    say "    cpu:    yunguand $(sed -n 's/.* server_cpu_us=\([0-9.]*\).*/\1/p' <<<"$line") us per report, bench-ingest $(sed -n 's/.* client_cpu_us=\([0-9.]*\).*/\1/p' <<<"$line") us; load average $load0 -> $load1"
    SUMMARY+=("ingest (bench-ingest -c$CONNECTIONS), $label: $(sed -n 's/.* rps=\([0-9]*\) p50_ms=\([0-9.]*\) .* p99_ms=\([0-9.]*\) .*/\1 reports\/s, p50 \2 ms, p99 \3 ms/p' <<<"$line"); yunguand $(sed -n 's/.* server_cpu_us=\([0-9.]*\).*/\1/p' <<<"$line") us CPU per report, client $(sed -n 's/.* client_cpu_us=\([0-9.]*\).*/\1/p' <<<"$line") us; load $load0 -> $load1")
}
use_wrk() { [ "$GENERATOR" = wrk ] || [ "$GENERATOR" = both ]; }
use_c() { [ "$GENERATOR" = c ] || [ "$GENERATOR" = both ]; }

if [[ " $sections " == *" ingest "* ]]; then
    section "Agent reports: $INGEST_HOSTS hosts x 4 segments x 8 checks (bench/report.lua)"
    dir=$WORKDIR/ingest
    new_store "$dir"
    TOKENS=$dir/tokens
    say "\$ bench/readiness-fill.py --db $dir/yunguan.db --hosts $INGEST_HOSTS --tokens $TOKENS"
    python3 "$FILL" --db "$dir/yunguan.db" --hosts "$INGEST_HOSTS" --tokens "$TOKENS" | sed 's/^/    /'
    start_yunguand "$dir/yunguan.db"
    say "\$ $YUNGUAND --db $dir/yunguan.db --listen 127.0.0.1:0 &   # serves $YG_URL, heartbeat 10 s"
    if use_wrk; then
        # 5 s of the same first, not counted: SQLite's page cache, the heap.
        (cd "$srcdir" && YG_TOKENS=$TOKENS YG_WRK_THREADS=$WRK_THREADS YG_CHANGE_PERCENT=0 YG_COMPACT=0 \
            wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d5s -s bench/report.lua "$YG_URL") >/dev/null 2>&1
        wait_idle
        # The order matters: each run starts with every host passing (as the
        # one before left them) except the last, whose changes stay behind.
        ingest_run heartbeats-hash-only 0 1
        ingest_run heartbeats-full 0 0
        ingest_run "$CHANGE_PERCENT%-changed-hash-only-heartbeats" "$CHANGE_PERCENT" 1
        ingest_run "$CHANGE_PERCENT%-changed-full" "$CHANGE_PERCENT" 0
    fi
    if use_c; then
        # Each run begins with one full, unchanged report per host (not
        # measured): the controller then holds every host's real hash, and
        # the hosts the run before left failing pass again.
        ingest_run_c heartbeats-hash-only 0
        ingest_run_c heartbeats-full 0 --every-report-full
        ingest_run_c "$CHANGE_PERCENT%-changed-hash-only-heartbeats" "$CHANGE_PERCENT"
        ingest_run_c "$CHANGE_PERCENT%-changed-full" "$CHANGE_PERCENT" --every-report-full
    fi
    stop_yunguand
    say "    rows changed by the runs: $(python3 -c "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute(\"SELECT count(*) FROM segment_history\").fetchone()[0], 'history rows,',
      db.execute(\"SELECT count(*) FROM audit\").fetchone()[0], 'audit entries')" "$dir/yunguan.db")"
    rm -rf "$dir"

    section "Agent reports, cold: $INGEST_HOSTS hosts the controller has no results for"
    dir=$WORKDIR/cold
    new_store "$dir"
    TOKENS=$dir/tokens
    say "\$ bench/readiness-fill.py --db $dir/yunguan.db --hosts $INGEST_HOSTS --tokens $TOKENS --cold"
    python3 "$FILL" --db "$dir/yunguan.db" --hosts "$INGEST_HOSTS" --tokens "$TOKENS" --cold | sed 's/^/    /'
    start_yunguand "$dir/yunguan.db"
    if use_c; then
        # Each host's first report, once: nothing stored for it yet.
        ingest_run_c cold-first-reports 0 --no-warmup --once
    fi
    # wrk: INGEST_SECONDS of full reports from the cold start (each host's
    # first, then full heartbeats), as measured in session 2.
    if use_wrk; then
        ingest_run cold 0 0
    fi
    stop_yunguand
    rm -rf "$dir"
fi

if [[ " $sections " == *" summary "* ]]; then
    section "Segment summaries: $SUMMARY_SEGMENTS segments, $SUMMARY_HOSTS hosts"
    dir=$WORKDIR/summary
    new_store "$dir"
    per=$(( SUMMARY_HOSTS * 4 / SUMMARY_SEGMENTS ))
    say "\$ bench/readiness-fill.py --db $dir/yunguan.db --hosts $SUMMARY_HOSTS --hosts-per-segment $per --state"
    python3 "$FILL" --db "$dir/yunguan.db" --hosts "$SUMMARY_HOSTS" --hosts-per-segment "$per" --state |
        sed 's/^/    /'
    say "store: $(du -h "$dir/yunguan.db" | cut -f1) on disk"
    # Agents are not running here: an hour's heartbeat keeps the filled
    # reports fresh for the run.
    start_yunguand "$dir/yunguan.db" --heartbeat-seconds 3600
    say "\$ $YUNGUAND --db $dir/yunguan.db --listen 127.0.0.1:0 --heartbeat-seconds 3600 &   # serves $YG_URL"
    wait_idle
    bytes=$(curl -sS -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $YG_ADMIN" "$YG_URL/api/v1/segments/seg-00042")
    say "    one segment: $bytes bytes of JSON; the list: $(curl -sS -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $YG_ADMIN" "$YG_URL/api/v1/segments") bytes"
    for c in 1 "$CONNECTIONS"; do
        t=$(( c == 1 ? 1 : WRK_THREADS ))
        say "\$ YG_TOKEN_FILE=admin.token YG_SEGMENTS=$SUMMARY_SEGMENTS wrk -t$t -c$c -d${SUMMARY_SECONDS}s --timeout $WRK_TIMEOUT --latency -s bench/segment-show.lua $YG_URL"
        (cd "$srcdir" && YG_TOKEN_FILE=$dir/admin.token YG_SEGMENTS=$SUMMARY_SEGMENTS \
            wrk -t"$t" -c"$c" -d"${SUMMARY_SECONDS}s" --timeout "$WRK_TIMEOUT" --latency \
            -s bench/segment-show.lua "$YG_URL") >"$WORKDIR/wrk-show.txt" 2>&1
        fig=$(wrk_figures "$WORKDIR/wrk-show.txt")
        say "    GET /api/v1/segments/{name}, $c connection(s): $fig"
        SUMMARY+=("summary, one segment, -c$c: $fig")
    done
    for c in 1 4; do
        say "\$ wrk -t1 -c$c -d${SUMMARY_SECONDS}s --timeout $WRK_TIMEOUT --latency -H 'Authorization: Bearer <admin.token>' $YG_URL/api/v1/segments"
        wrk -t1 -c"$c" -d"${SUMMARY_SECONDS}s" --timeout "$WRK_TIMEOUT" --latency \
            -H "Authorization: Bearer $YG_ADMIN" "$YG_URL/api/v1/segments" >"$WORKDIR/wrk-list.txt" 2>&1
        fig=$(wrk_figures "$WORKDIR/wrk-list.txt")
        say "    GET /api/v1/segments ($SUMMARY_SEGMENTS items), $c connection(s): $fig"
        SUMMARY+=("summary, full list, -c$c: $fig")
    done
    stop_yunguand
    rm -rf "$dir"
fi

section "summary (readiness)"
for r in "${SUMMARY[@]}"; do say "$r"; done
