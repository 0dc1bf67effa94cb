#!/bin/bash
# bench/run-all.sh: build what the benchmarks need, run them all, and print
# every figure with the exact command that reproduces it.  Figures only:
# nothing here passes or fails on time.  (The one check is a count: stored
# requests = 201 answers.)
#
#   bench/run-all.sh [SECTION...]
#
# SECTIONS: sqlite mhd submit list readiness vms (default: all, in that
# order; "list" also measures submissions into a store that already holds
# FILL_COUNT requests; "readiness" runs bench/bench-readiness.sh, agent
# reports and segment summaries, with its own environment variables; "vms"
# runs bench-vms: the full VM loop on libvirt's test driver VMS_RUNS times
# and one reconcile of 10,000 domains; "vms-qemu", never by default, runs
# bench/bench-vms-qemu.sh on a real libvirtd with QEMU, as root).
#
# Environment (all optional):
#   WORKDIR         where databases and logs go; must be on a real disk, not
#                   tmpfs (default /var/tmp/yunguan-bench.<pid>, removed
#                   at the end unless KEEP=1)
#   YUNGUAND        the yunguand binary (default: the one this tree builds)
#   SUBMIT_SECONDS  wrk duration for submissions (default 15)
#   LIST_SECONDS    wrk duration per list query and connection count (default 10)
#   FILL_COUNT      requests in the store for the list benchmark (default 100000)
#   CONNECTIONS     wrk connections (default 32); WRK_THREADS (default 2)
#   VMS             VMs in the loop (default 1000); VMS_RUNS (default 3)
#   GENERATOR       simulated agents for readiness reports: c (bench/bench-ingest),
#                   wrk (bench/report.lua, session 2's figures) or both (default)
#   TLS=1           serve the API over HTTPS (a throw-away CA and certificate
#                   made with openssl): what TLS costs the submissions
#   NO_BUILD=1      do not run configure/make
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
builddir=${BUILDDIR:-$srcdir}
SUBMIT_SECONDS=${SUBMIT_SECONDS:-15}
LIST_SECONDS=${LIST_SECONDS:-10}
FILL_COUNT=${FILL_COUNT:-100000}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-2}
# A slow answer is a latency to report, not a socket error: wrk's default
# timeout (2 s) would drop it from the distribution.
WRK_TIMEOUT=${WRK_TIMEOUT:-30s}
VMS=${VMS:-1000}
VMS_RUNS=${VMS_RUNS:-3}
# Simulated agents for readiness: bench-ingest (c), wrk + report.lua, or both.
GENERATOR=${GENERATOR:-both}
sections=${*:-sqlite mhd submit list readiness vms}

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
die() { printf 'run-all.sh: %s\n' "$*" >&2; exit 1; }
# Print the command that reproduces a figure, then run it.
run() { printf '$ %s\n' "$*"; "$@"; }

for tool in wrk curl; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done

# ---- build -------------------------------------------------------------
if [ -z "${NO_BUILD:-}" ]; then
    section "build"
    if [ ! -f "$builddir/Makefile" ]; then
        [ -x "$srcdir/configure" ] || (cd "$srcdir" && autoreconf -fi)
        (cd "$builddir" && "$srcdir/configure" -q)
    fi
    make -C "$builddir" -j"$(nproc)" bench >"${TMPDIR:-/tmp}/run-all-make.$$.log" 2>&1 ||
        die "make bench failed; see ${TMPDIR:-/tmp}/run-all-make.$$.log"
fi
if grep -qE '^(CFLAGS|SAN_CFLAGS) *=.*-fsanitize' "$builddir/Makefile" 2>/dev/null; then
    die "this tree is configured with sanitizers; benchmark a default (-O2 -g) build"
fi
YUNGUAND=${YUNGUAND:-$builddir/controller/yunguand}
BENCH=$builddir/bench
[ -x "$YUNGUAND" ] || die "no yunguand at $YUNGUAND"

# ---- where and on what -------------------------------------------------
WORKDIR=${WORKDIR:-/var/tmp/yunguan-bench.$$}
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
fstype=$(df -PT "$WORKDIR" | awk 'NR == 2 { print $2 }')
[ "$fstype" = tmpfs ] && say "WARNING: $WORKDIR is on tmpfs: fsync is free there; use a real disk"
pids=()
cleanup() {
    local p
    for p in "${pids[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
    [ -n "${KEEP:-}" ] || rm -rf "$WORKDIR"
}
trap cleanup EXIT

section "machine"
say "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
say "cpus:        $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
say "os:          $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
say "workdir:     $WORKDIR ($fstype on $(df -P "$WORKDIR" | awk 'NR == 2 { print $1 }'))"
say "libraries:   sqlite $(pkg-config --modversion sqlite3 2>/dev/null || echo '?'), libmicrohttpd $(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')"
say "build:       CFLAGS = $(sed -n 's/^CFLAGS = //p' "$builddir/Makefile")"
say "wrk:         -t$WRK_THREADS -c$CONNECTIONS (client and server share the same $(nproc) cpus)"

# ---- helpers ----------------------------------------------------------
# start_yunguand DB: starts it on a free port; sets YG_PID, YG_URL, YG_ADMIN.
tls_args=() curl_tls=() scheme=http
if [ "${TLS:-0}" = 1 ]; then
    command -v openssl >/dev/null || die "TLS=1 needs openssl"
    sh "$srcdir/contrib/test-pki.sh" "$WORKDIR/pki" || die "openssl cannot make the bench certificate (see $WORKDIR/pki/openssl.log)"
    tls_args=(--tls-cert "$WORKDIR/pki/server.crt" --tls-key "$WORKDIR/pki/server.key")
    curl_tls=(--cacert "$WORKDIR/pki/ca.crt")
    scheme=https
fi
start_yunguand() {
    local db=$1 log=$1.log port="" i
    "$YUNGUAND" --db "$db" --listen 127.0.0.1:0 "${tls_args[@]}" >"$log" 2>&1 &
    YG_PID=$!
    pids+=("$YG_PID")
    for i in $(seq 1 100); do
        port=$(sed -n 's/.*serving the API on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && break
        kill -0 "$YG_PID" 2>/dev/null || { cat "$log" >&2; die "yunguand did not start"; }
        sleep 0.1
    done
    [ -n "$port" ] || die "yunguand did not say where it serves (see $log)"
    YG_URL=$scheme://127.0.0.1:$port
    YG_ADMIN=$(cat "$(dirname "$db")/admin.token")
}
stop_yunguand() {
    kill -TERM "$YG_PID" 2>/dev/null || true
    wait "$YG_PID" 2>/dev/null || true
}
api() {    # api METHOD PATH [JSON]
    local args=(-sS "${curl_tls[@]}" -X "$1" -H "Authorization: Bearer $YG_ADMIN" -H 'Content-Type: application/json')
    [ $# -ge 3 ] && args+=(--data "$3")
    curl "${args[@]}" "$YG_URL$2"
}
json_field() {    # json_field EXPR < json  (python3 -c, no jq needed)
    python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
metric() {    # metric NAME_WITH_LABELS: the value from /metrics, 0 when absent
    api GET /metrics | awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
# cpu_ms PID: user+system CPU the process has used so far, in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# wait_idle: until the store's change counter stands still for a second
# (requests wrk gave up on are still being served).
wait_idle() {
    local a b i
    a=$(metric yunguan_store_changes_total)
    for i in $(seq 1 120); do
        sleep 1
        b=$(metric yunguan_store_changes_total)
        [ "$a" = "$b" ] && return 0
        a=$b
    done
}
# department_token DEPT: a department-role token (quota set large first).
department_token() {
    local q=1099511627776
    api PUT "/api/v1/quotas/$1" \
        "{\"vcpus\":$q,\"memory_mib\":$q,\"disk_gib\":$q,\"vms\":$q,\"max_lease_days\":3650}" >/dev/null
    api POST /api/v1/tokens "{\"role\":\"department\",\"department\":\"$1\",\"description\":\"bench\"}" |
        json_field 'd["token"]["secret"]'
}
# wrk_figures FILE: "rps p50 p99 non2xx" from plain wrk --latency output.
wrk_figures() {
    awk '/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 } /^Requests\/sec:/ { rps = $2 }
         /Non-2xx or 3xx responses:/ { non = $5 }
         END { printf "%s req/s, p50 %s, p99 %s, non-2xx %d\n", rps, p50, p99, non + 0 }' "$1"
}
# submit_run LABEL TOKENFILE DEPT: wrk with submit.lua; checks the counts.
submit_run() {
    local label=$1 tokenfile=$2 dept=$3 out="$WORKDIR/wrk-$1.txt"
    local before_201 before_jobs before_commits before_rows before_unanswered
    before_201=$(metric 'yunguan_http_responses_total{code="201"}')
    before_unanswered=$(metric yunguan_http_unanswered_changes_total)
    before_jobs=$(metric yunguan_store_changes_total)
    before_commits=$(metric yunguan_store_commits_total)
    before_rows=$(metric 'yunguan_requests{state="submitted"}')
    local cpu0 load0
    cpu0=$(cpu_ms "$YG_PID")
    load0=$(loadavg)
    say "\$ YG_TOKEN_FILE=$tokenfile YG_DEPARTMENT=$dept YG_RUN_ID=$label \\"
    say "    wrk -t$WRK_THREADS -c$CONNECTIONS -d${SUBMIT_SECONDS}s --timeout $WRK_TIMEOUT --latency -s bench/submit.lua $YG_URL"
    (cd "$srcdir" && YG_TOKEN_FILE=$tokenfile YG_DEPARTMENT=$dept YG_RUN_ID=$label \
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SUBMIT_SECONDS}s" --timeout "$WRK_TIMEOUT" --latency -s bench/submit.lua \
        "$YG_URL") >"$out" 2>&1 || { cat "$out"; die "wrk failed"; }
    local load1 cpu
    load1=$(loadavg)
    wait_idle   # the answers wrk stopped waiting for are committed by now
    cpu=$(( $(cpu_ms "$YG_PID") - cpu0 ))
    local line wrk_201 non2xx server_201 jobs commits rows unanswered
    line=$(grep '^SUBMIT ' "$out")
    grep '^status ' "$out" | sed 's/^/    /'
    wrk_201=$(sed -n 's/.* status_201=\([0-9]*\).*/\1/p' <<<"$line")
    non2xx=$(sed -n 's/.* non_2xx=\([0-9]*\).*/\1/p' <<<"$line")
    server_201=$(( $(metric 'yunguan_http_responses_total{code="201"}') - before_201 ))
    jobs=$(( $(metric yunguan_store_changes_total) - before_jobs ))
    commits=$(( $(metric yunguan_store_commits_total) - before_commits ))
    rows=$(( $(metric 'yunguan_requests{state="submitted"}') - before_rows ))
    unanswered=$(( $(metric yunguan_http_unanswered_changes_total) - before_unanswered ))
    say "$line"
    say "    counts: wrk saw $wrk_201 x 201 and $non2xx non-2xx; yunguand answered $server_201 x 201"
    say "            and stored $unanswered whose client had hung up before the answer;"
    say "            $rows requests stored; $jobs changes in $commits commits ($(awk -v j="$jobs" -v c="$commits" 'BEGIN { printf "%.1f", c ? j / c : 0 }') per commit)"
    say "    cpu:    yunguand used $cpu ms of CPU = $(awk -v c="$cpu" -v n="$rows" 'BEGIN { printf "%.0f", n ? c * 1000 / n : 0 }') us per stored request; load average $load0 -> $load1"
    # Every stored request was answered 201, except those whose client
    # hung up first (wrk closes its connections at the end of the run, one
    # request in flight on each at most); nothing was answered 201 without
    # being stored, and wrk saw no 201 that yunguand did not send.
    if [ "$rows" -eq $((server_201 + unanswered)) ] && [ "$unanswered" -le "$CONNECTIONS" ] &&
       [ "$wrk_201" -le "$server_201" ] && [ "$rows" -le $((wrk_201 + CONNECTIONS)) ]; then
        say "    check:  stored = 201 answers + $unanswered unanswered (wrk hung up on $((rows - wrk_201)) in flight when it stopped): ok"
    else
        say "    check:  MISMATCH: $rows stored, $server_201 answered 201, $unanswered stored after the client hung up, $wrk_201 seen by wrk"
    fi
    FIG[$label]="$(sed -n 's/.* rps=\([0-9]*\) p50_ms=\([0-9.]*\) .* p99_ms=\([0-9.]*\) .*/\1 req\/s, p50 \2 ms, p99 \3 ms/p' <<<"$line"), non-2xx $non2xx"
    RPS[$label]=$(sed -n 's/.* rps=\([0-9]*\) .*/\1/p' <<<"$line")
}
declare -A FIG RPS

# ---- 3b: SQLite alone ---------------------------------------------------
if [[ " $sections " == *" sqlite "* ]]; then
    section "SQLite alone: the rows of one submission, WAL, synchronous=FULL (bench-sqlite-insert)"
    for g in 1 32; do
        n=$(( g == 1 ? 3000 : 40000 ))
        out=$(cd "$srcdir" && run "$BENCH/bench-sqlite-insert" --db "$WORKDIR/sqlite.db" \
              --count "$n" --group "$g" --source bench/request.yaml)
        say "$out"
        RPS[sqlite-$g]=$(sed -n 's/.* = \([0-9]*\) submissions\/s.*/\1/p' <<<"$out")
        FIG[sqlite-$g]="${RPS[sqlite-$g]} submissions/s, $(sed -n 's/.*, \([0-9.]*\) ms\/commit.*/\1/p' <<<"$out") ms per commit"
    done
    out=$(cd "$srcdir" && run "$BENCH/bench-sqlite-insert" --db "$WORKDIR/sqlite.db" \
          --count 40000 --group 32 --source bench/request.yaml --synchronous OFF)
    say "$out   (reference: no fsync at all)"
    rm -f "$WORKDIR"/sqlite.db*
fi

# ---- 3a: HTTP alone -----------------------------------------------------
if [[ " $sections " == *" mhd "* ]]; then
    section "HTTP alone: libmicrohttpd, yunguand's threading, a constant answer (bench-mhd-constant)"
    "$BENCH/bench-mhd-constant" --port 0 >"$WORKDIR/mhd.out" 2>&1 &
    mhd_pid=$!
    pids+=("$mhd_pid")
    for i in $(seq 1 50); do grep -q '^port ' "$WORKDIR/mhd.out" && break; sleep 0.1; done
    mhd_url=http://127.0.0.1:$(awk '/^port / { print $2 }' "$WORKDIR/mhd.out")
    mhd_cpu0=$(cpu_ms "$mhd_pid")
    mhd_load0=$(loadavg)
    say "\$ bench/bench-mhd-constant --port 0 &"
    say "\$ YG_TOKEN=x wrk -t$WRK_THREADS -c$CONNECTIONS -d${SUBMIT_SECONDS}s --timeout $WRK_TIMEOUT --latency -s bench/submit.lua $mhd_url"
    (cd "$srcdir" && YG_TOKEN=x wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SUBMIT_SECONDS}s" --timeout "$WRK_TIMEOUT" \
        --latency -s bench/submit.lua "$mhd_url") >"$WORKDIR/wrk-mhd.txt" 2>&1
    line=$(grep '^SUBMIT ' "$WORKDIR/wrk-mhd.txt")
    say "$line"
    n=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$line")
    say "    cpu:    bench-mhd-constant used $(( $(cpu_ms "$mhd_pid") - mhd_cpu0 )) ms of CPU = $(awk -v c="$(( $(cpu_ms "$mhd_pid") - mhd_cpu0 ))" -v n="$n" 'BEGIN { printf "%.0f", n ? c * 1000 / n : 0 }') us per request; load average $mhd_load0 -> $(loadavg)"
    FIG[mhd]=$(sed -n 's/.* rps=\([0-9]*\) p50_ms=\([0-9.]*\) .* p99_ms=\([0-9.]*\) .*/\1 req\/s, p50 \2 ms, p99 \3 ms/p' <<<"$line")
    RPS[mhd]=$(sed -n 's/.* rps=\([0-9]*\) .*/\1/p' <<<"$line")
    kill "$mhd_pid"; wait "$mhd_pid" 2>/dev/null || true
fi

# ---- 1: submissions over HTTP, empty store ----------------------------------
if [[ " $sections " == *" submit "* ]]; then
    section "Submissions over HTTP into an empty store (yunguand, bench/submit.lua)"
    mkdir -p "$WORKDIR/submit"
    start_yunguand "$WORKDIR/submit/yunguan.db"
    say "\$ $YUNGUAND --db $WORKDIR/submit/yunguan.db --listen 127.0.0.1:0 &   # serves $YG_URL"
    department_token bench >"$WORKDIR/submit/dept.token"
    say "\$ PUT /api/v1/quotas/bench (large limits); POST /api/v1/tokens {role: department, department: bench}"
    submit_run submit-empty "$WORKDIR/submit/dept.token" bench
    stop_yunguand
    if command -v sqlite3 >/dev/null; then
        say "    rows in the file after stopping: $(sqlite3 "$WORKDIR/submit/yunguan.db" \
            "SELECT (SELECT count(*) FROM requests) || ' requests, ' || (SELECT count(*) FROM request_vms) || ' VM groups, ' || (SELECT count(*) FROM transitions) || ' transitions, ' || (SELECT count(*) FROM audit) || ' audit entries'")"
    fi
    rm -rf "$WORKDIR/submit"
fi

# ---- 2: listing a store of FILL_COUNT requests ----------------------------------
if [[ " $sections " == *" list "* ]]; then
    section "Listing a store of $FILL_COUNT requests (bench-store-fill, then yunguand + wrk)"
    mkdir -p "$WORKDIR/list"
    db=$WORKDIR/list/yunguan.db
    (cd "$srcdir" && run "$BENCH/bench-store-fill" --db "$db" --count "$FILL_COUNT" --source bench/request.yaml)
    start_yunguand "$db"
    say "\$ $YUNGUAND --db $db --listen 127.0.0.1:0 &   # serves $YG_URL"
    say "store: $(du -h "$db" | cut -f1) on disk"
    next=$(api GET '/api/v1/requests?department=health&state=active&limit=50' | json_field 'd["next"]')
    deep=$((FILL_COUNT / 2))
    queries=(
        "dept+state|/api/v1/requests?department=health&state=active&limit=50"
        "dept+state page 2|/api/v1/requests?department=health&state=active&limit=50&after=$next"
        "dept+state deep|/api/v1/requests?department=health&state=active&limit=50&after=$deep"
        "small dept, rare state|/api/v1/requests?department=environment&state=failed&limit=50"
        "tiny dept, common state|/api/v1/requests?department=archives&state=active&limit=50"
        "dept only|/api/v1/requests?department=police&limit=50"
        "state only|/api/v1/requests?state=submitted&limit=50"
        "unfiltered|/api/v1/requests?limit=50"
        "unfiltered deep|/api/v1/requests?limit=50&after=$deep"
    )
    declare -a LIST_ROWS
    for q in "${queries[@]}"; do
        label=${q%%|*}
        path=${q#*|}
        items=$(api GET "$path" | json_field 'len(d["items"])')
        # One client: the time to serve one page.  CONNECTIONS clients: the
        # same under load (queueing included).
        for c in 1 "$CONNECTIONS"; do
            t=$(( c == 1 ? 1 : WRK_THREADS ))
            say "\$ wrk -t$t -c$c -d${LIST_SECONDS}s --timeout $WRK_TIMEOUT --latency -H 'Authorization: Bearer <admin.token>' '$YG_URL$path'"
            wrk -t"$t" -c"$c" -d"${LIST_SECONDS}s" --timeout "$WRK_TIMEOUT" --latency \
                -H "Authorization: Bearer $YG_ADMIN" "$YG_URL$path" >"$WORKDIR/wrk-list.txt" 2>&1
            fig=$(wrk_figures "$WORKDIR/wrk-list.txt")
            say "    $label, $c connection(s): $fig ($items items per page)"
            LIST_ROWS+=("$label, -c$c: $fig ($items items)")
        done
    done

    section "Submissions over HTTP into the store of $FILL_COUNT requests (department health)"
    department_token health >"$WORKDIR/list/health.token"
    submit_run submit-filled "$WORKDIR/list/health.token" health
    stop_yunguand
    rm -rf "$WORKDIR/list"
fi

# ---- 4: dual-stack readiness ------------------------------------------------
if [[ " $sections " == *" readiness "* ]]; then
    section "Dual-stack readiness: agent reports, segment summaries (bench/bench-readiness.sh)"
    NO_BUILD=1 YUNGUAND=$YUNGUAND BUILDDIR=$builddir WORKDIR=$WORKDIR/readiness KEEP=1 \
        CONNECTIONS=$CONNECTIONS WRK_THREADS=$WRK_THREADS WRK_TIMEOUT=$WRK_TIMEOUT \
        GENERATOR=$GENERATOR BENCH_INGEST=$BENCH/bench-ingest \
        "$here/bench-readiness.sh" || say "bench-readiness.sh failed"
fi

# ---- 5: VMs through libvirt (issue 4) ----------------------------------------
if [[ " $sections " == *" vms "* ]]; then
    section "VMs: the full loop on libvirt's test driver, $VMS VMs, $VMS_RUNS runs (bench-vms)"
    say "(CPU time per VM is the figure to compare on a shared machine; wall figures need a low load average)"
    for i in $(seq 1 "$VMS_RUNS"); do
        say "-- run $i, load average $(cut -d' ' -f1-3 /proc/loadavg)"
        run env WORKDIR="$WORKDIR" "$BENCH/bench-vms" loop "$VMS" | tee "$WORKDIR/vms-loop-$i.txt"
        FIG[vms-$i]=$(awk '/whole loop: +[0-9.]+x wall/ { print $3 " wall, " $5 " CPU" }' "$WORKDIR/vms-loop-$i.txt")
    done
    section "VMs: one reconcile of 10,000 domains on 4 test-driver hosts"
    run env WORKDIR="$WORKDIR" "$BENCH/bench-vms" reconcile 10000
fi
if [[ " $sections " == *" vms-qemu "* ]]; then
    section "VMs on a real libvirtd with QEMU (bench/bench-vms-qemu.sh 10)"
    run "$here/bench-vms-qemu.sh" 10 || say "bench-vms-qemu.sh failed"
fi

# ---- summary -------------------------------------------------------------
section "summary"
[ -n "${FIG[submit-empty]:-}" ] && say "submissions, empty store:        ${FIG[submit-empty]}"
[ -n "${FIG[submit-filled]:-}" ] && say "submissions, $FILL_COUNT in store:  ${FIG[submit-filled]}"
[ -n "${FIG[mhd]:-}" ] && say "HTTP alone (constant answer):    ${FIG[mhd]}"
[ -n "${FIG[sqlite-1]:-}" ] && say "SQLite alone, 1 per commit:      ${FIG[sqlite-1]}"
[ -n "${FIG[sqlite-32]:-}" ] && say "SQLite alone, 32 per commit:     ${FIG[sqlite-32]}"
if [ -n "${RPS[submit-empty]:-}" ]; then
    for k in mhd sqlite-1 sqlite-32; do
        [ -n "${RPS[$k]:-}" ] && say "submissions / $k: $(awk -v a="${RPS[submit-empty]}" -v b="${RPS[$k]}" 'BEGIN { printf "%.3f", a / b }')"
    done
fi
for i in $(seq 1 "$VMS_RUNS"); do
    [ -n "${FIG[vms-$i]:-}" ] && say "VM loop ($VMS VMs), controller / direct, run $i: ${FIG[vms-$i]}"
done
if [ -n "${LIST_ROWS+x}" ]; then
    for r in "${LIST_ROWS[@]}"; do say "list $r"; done
fi
