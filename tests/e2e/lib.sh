# tests/e2e/lib.sh — shared helpers of the end-to-end tests.
#
# Sourced (with bash) by tests/e2e/e2e-*.sh.  They start the real yunguand on
# a temporary SQLite file and drive it with the real yunguan CLI and curl.
#
#   yg_require PROG...          skip (exit 77) unless every PROG is installed
#   yg_setup                    temp dir $YG_TMP, cleanup trap, sanity checks
#   yg_daemon_start DB [ARG...] start yunguand on DB, wait until it serves;
#                               sets YG_PID, YG_URL, YG_LOG (and ADMIN on a
#                               first start)
#   yg_daemon_stop              SIGTERM, wait (bounded); sets yg_daemon_status
#   yg TOKEN ARG...             run the CLI; $rc, stdout in $YG_OUT, stderr in $YG_ERR
#   api METHOD PATH TOKEN [CURL ARG...]
#                               one HTTP call; $status, body in $YG_BODY,
#                               headers in $YG_HDRS ('' TOKEN: no Authorization)
#   yg_request NAME DEPT [VCPUS [COUNT]]   write a valid request file, print its path
#   ok/not_ok/check_*           TAP-like results; yg_finish prints the summary
#                               and exits 0 only when every check passed.
#
# Never sleep a fixed time to wait for something: yg_wait_for polls a
# condition in a bounded loop.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
YUNGUAND=$top_builddir/controller/yunguand
YUNGUAN=$top_builddir/cli/yunguan
E2E_DATA=$top_srcdir/tests/e2e/data

# Settings of the user running the tests must not leak into the CLI.
unset YUNGUAN_URL YUNGUAN_TOKEN YUNGUAN_TOKEN_FILE YUNGUAN_CONFIG
export LC_ALL=C

yg_n=0
yg_passed=0
yg_failed=0
yg_daemon_pids=
yg_helper_pids=
yg_ndaemons=0
YG_TMP=

# ---- results -------------------------------------------------------------

diag() { printf '# %s\n' "$*"; }

ok()
{
    yg_n=$((yg_n + 1))
    yg_passed=$((yg_passed + 1))
    printf 'ok %d - %s\n' "$yg_n" "$*"
}

not_ok()
{
    yg_n=$((yg_n + 1))
    yg_failed=$((yg_failed + 1))
    printf 'not ok %d - %s\n' "$yg_n" "$*"
}

# Show a file's head as diagnostics (after a failed check).
diag_file()
{
    [ -s "$1" ] || return 0
    head -n "${2:-20}" "$1" | sed 's/^/#   /'
}

# check DESC CMD [ARG...]: passes when CMD exits 0.
check()
{
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; return 1; fi
}

# check_eq ACTUAL EXPECTED DESC
check_eq()
{
    if [ "$1" = "$2" ]; then
        ok "$3"
    else
        not_ok "$3"
        diag "expected: '$2'"
        diag "got:      '$1'"
        return 1
    fi
}

# check_match TEXT ERE DESC
check_match()
{
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        ok "$3"
    else
        not_ok "$3"
        diag "expected to match: $2"
        printf '%s\n' "$1" | head -n 20 | sed 's/^/#   got: /'
        return 1
    fi
}

# check_no_match TEXT ERE DESC
check_no_match()
{
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        not_ok "$3"
        diag "expected not to match: $2"
        printf '%s\n' "$1" | head -n 20 | sed 's/^/#   got: /'
        return 1
    fi
    ok "$3"
}

# check_rc EXPECTED DESC: the exit status of the last yg call.
check_rc()
{
    if [ "$rc" = "$1" ]; then
        ok "$2"
    else
        not_ok "$2"
        diag "expected exit status $1, got $rc"
        diag_file "$YG_OUT"
        diag_file "$YG_ERR"
        return 1
    fi
}

# check_status EXPECTED DESC: the HTTP status of the last api call.
check_status()
{
    if [ "$status" = "$1" ]; then
        ok "$2"
    else
        not_ok "$2"
        diag "expected HTTP $1, got $status"
        diag_file "$YG_BODY"
        return 1
    fi
}

yg_finish()
{
    if [ "$yg_failed" -gt 0 ] && [ -n "${YG_LOG:-}" ] && [ -s "$YG_LOG" ]; then
        diag "last lines of the daemon's log ($YG_LOG):"
        tail -n 30 "$YG_LOG" | sed 's/^/#   /'
    fi
    printf '%d passed, %d failed\n' "$yg_passed" "$yg_failed"
    [ "$yg_failed" -eq 0 ] && [ "$yg_n" -gt 0 ] && exit 0
    exit 1
}

yg_skip()
{
    printf 'SKIP: %s\n' "$*"
    exit 77
}

yg_require()
{
    local p
    for p in "$@"; do
        command -v "$p" >/dev/null 2>&1 || yg_skip "'$p' is not installed; it is needed by this test"
    done
}

# ---- set-up and clean-up -------------------------------------------------

# Does process PID still run (a zombie does not count)?
yg_alive()
{
    if [ -r "/proc/$1/stat" ]; then
        local st
        st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
        [ -n "$st" ] && [ "$st" != Z ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}

yg_cleanup()
{
    local pid
    for pid in $yg_helper_pids; do
        kill -KILL "$pid" 2>/dev/null
    done
    for pid in $yg_daemon_pids; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $yg_daemon_pids; do
        yg_wait_for 10 yg__dead "$pid" || kill -KILL "$pid" 2>/dev/null
    done
    for pid in $yg_helper_pids $yg_daemon_pids; do
        wait "$pid" 2>/dev/null
    done
    if [ -n "$YG_TMP" ] && [ -d "$YG_TMP" ]; then
        chmod -R u+w "$YG_TMP" 2>/dev/null
        rm -rf --one-file-system "$YG_TMP"
    fi
}

yg__dead() { ! yg_alive "$1"; }

yg_setup()
{
    yg_require curl jq
    local p
    for p in "$YUNGUAND" "$YUNGUAN"; do
        if [ ! -x "$p" ]; then
            echo "ERROR: '$p' is not built (run make first)"
            exit 99
        fi
    done
    YG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/yg-e2e.XXXXXXXX") || { echo "ERROR: mktemp -d failed"; exit 99; }
    trap yg_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    YG_OUT=$YG_TMP/out
    YG_ERR=$YG_TMP/err
    YG_BODY=$YG_TMP/body
    YG_HDRS=$YG_TMP/headers
    export HOME=$YG_TMP/home XDG_CONFIG_HOME=$YG_TMP/home/.config
    mkdir -p "$HOME"
}

# yg_wait_for SECONDS CMD [ARG...]: poll CMD every 50 ms until it succeeds;
# fails when it still does not after SECONDS (of wall-clock time).
yg_wait_for()
{
    local deadline=$((SECONDS + $1))
    shift
    while [ "$SECONDS" -lt "$deadline" ]; do
        "$@" && return 0
        sleep 0.05
    done
    "$@"
}

# Track background helpers (curl, subshells) for the clean-up, and forget
# them once reaped.
yg_track() { yg_helper_pids="$yg_helper_pids $*"; }
yg_untrack()
{
    local p q rest=
    for p in $yg_helper_pids; do
        for q in "$@"; do
            [ "$p" = "$q" ] && continue 2
        done
        rest="$rest $p"
    done
    yg_helper_pids=$rest
}

# ---- bursts of concurrent clients ---------------------------------------
#
#   yg_burst_prepare            a new barrier (a FIFO held open on fd 9)
#   yg_burst_add CMD [ARG...]   start CMD in the background, blocked at the
#                               barrier; its stdout goes to $YG_TMP/burst.K.out
#                               (K = 0, 1, ... in the order added)
#   yg_burst_go                 wait (bounded) until every job is at the
#                               barrier, then release them all at once
#   yg_burst_wait               wait for every job to end
#
# So that concurrent clients really overlap: none starts before all are
# ready.

yg_burst_prepare()
{
    yg_burst_n=0
    yg_burst_pids=
    rm -f "$YG_TMP"/burst.*
    mkfifo "$YG_TMP/burst.fifo" || return 1
    exec 9<>"$YG_TMP/burst.fifo"
    rm -f "$YG_TMP/burst.fifo"
}

yg_burst_add()
{
    local k=$yg_burst_n
    yg_burst_n=$((k + 1))
    (
        : >"$YG_TMP/burst.$k.ready"
        read -r _ <&9
        exec 9<&- >"$YG_TMP/burst.$k.out" 2>"$YG_TMP/burst.$k.err"
        "$@"
    ) &
    yg_burst_pids="$yg_burst_pids $!"
    yg_track $!
}

yg__burst_ready()
{
    local n
    n=$(find "$YG_TMP" -maxdepth 1 -name 'burst.*.ready' | wc -l)
    [ "$n" -eq "$yg_burst_n" ]
}

yg_burst_go()
{
    local k r=0
    yg_wait_for 10 yg__burst_ready || { diag "not every job reached the barrier"; r=1; }
    for ((k = 0; k < yg_burst_n; k++)); do
        printf 'go\n'
    done >&9
    return $r
}

yg_burst_wait()
{
    local p
    for p in $yg_burst_pids; do
        wait "$p" 2>/dev/null
    done
    yg_untrack $yg_burst_pids
    exec 9<&-
}

# yg_burst_outputs: every job's stdout, one line each, in the order added.
yg_burst_outputs()
{
    local k
    for ((k = 0; k < yg_burst_n; k++)); do
        printf '%s\n' "$(cat "$YG_TMP/burst.$k.out" 2>/dev/null)"
    done
}

# A curl call for a burst (prints the HTTP status; the body goes to the
# file named by the first argument): yg_curl BODYFILE METHOD PATH TOKEN [ARG...]
yg_curl()
{
    local body=$1 method=$2 path=$3 token=$4
    shift 4
    exec curl -sS --max-time 30 -o "$body" -w '%{http_code}' -X "$method" \
         -H "Authorization: Bearer $token" "$@" "$YG_URL$path"
}

# ---- the daemon ------------------------------------------------------------

yg__serving()
{
    grep -q 'serving the API on' "$YG_LOG" 2>/dev/null && return 0
    yg_alive "$YG_PID" || return 2
    return 1
}

yg__healthy() { curl -fsS -o /dev/null --max-time 2 ${YG_CA_FILE:+--cacert "$YG_CA_FILE"} "$YG_URL/healthz" 2>/dev/null; }

# yg_daemon_start DB [ARG...]: returns 1 (with the log shown) when it does not serve.
# With YG_NETNS and YG_LISTEN (ADDRESS:PORT) set, yunguand runs in that
# network namespace on that address (the namespace tests define a 'curl'
# function that runs there too).
yg_daemon_start()
{
    local db=$1
    shift
    yg_ndaemons=$((yg_ndaemons + 1))
    YG_LOG=$YG_TMP/yunguand.$yg_ndaemons.log
    ${YG_NETNS:+ip netns exec "$YG_NETNS"} \
        "$YUNGUAND" --db "$db" --listen "${YG_LISTEN:-127.0.0.1:0}" "$@" 2>"$YG_LOG" &
    YG_PID=$!
    yg_daemon_pids="$yg_daemon_pids $YG_PID"
    local deadline=$((SECONDS + 10)) r
    while :; do
        yg__serving
        r=$?
        [ "$r" -eq 0 ] && break
        if [ "$r" -eq 2 ] || [ "$SECONDS" -ge "$deadline" ]; then
            diag "yunguand did not start serving (log: $YG_LOG):"
            diag_file "$YG_LOG" 30
            return 1
        fi
        sleep 0.05
    done
    # HTTPS when yunguand says so (--tls-cert); clients then need YG_CA_FILE.
    local scheme=http
    grep -q 'serving the API on .* (HTTPS)' "$YG_LOG" && scheme=https
    if [ -n "${YG_LISTEN:-}" ]; then
        YG_PORT=${YG_LISTEN##*:}
        YG_URL=$scheme://$YG_LISTEN
    else
        YG_PORT=$(sed -n 's/.*serving the API on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$YG_LOG" | tail -n 1)
        YG_URL=$scheme://127.0.0.1:$YG_PORT
    fi
    if ! yg_wait_for 10 yg__healthy; then
        diag "yunguand on port '$YG_PORT' does not answer /healthz"
        return 1
    fi
    local tokfile
    tokfile=$(dirname "$db")/admin.token
    [ -s "$tokfile" ] && ADMIN=$(cat "$tokfile")
    return 0
}

# yg_daemon_stop: SIGTERM the current daemon and wait (up to 15 s) for it
# to exit; yg_daemon_status is its exit status (or 'timeout').
yg_daemon_stop()
{
    local pid=$YG_PID
    kill -TERM "$pid" 2>/dev/null
    if yg_wait_for 15 yg__dead "$pid"; then
        wait "$pid"
        yg_daemon_status=$?
    else
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        yg_daemon_status=timeout
    fi
    local p rest=
    for p in $yg_daemon_pids; do
        [ "$p" = "$pid" ] || rest="$rest $p"
    done
    yg_daemon_pids=$rest
    return 0
}

# ---- clients ---------------------------------------------------------------

# yg TOKEN ARG...: the CLI against the current daemon.
yg()
{
    local token=$1
    shift
    "$YUNGUAN" --server "$YG_URL" ${YG_CA_FILE:+--ca-file "$YG_CA_FILE"} --token "$token" "$@" \
        >"$YG_OUT" 2>"$YG_ERR"
    rc=$?
    return 0
}

# api METHOD PATH TOKEN [CURL ARG...]
api()
{
    local method=$1 path=$2 token=$3
    shift 3
    local auth=()
    [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
    status=$(curl -sS --max-time 30 ${YG_CA_FILE:+--cacert "$YG_CA_FILE"} -o "$YG_BODY" -D "$YG_HDRS" -w '%{http_code}' \
                  -X "$method" "${auth[@]}" "$@" "$YG_URL$path" 2>"$YG_TMP/curl.err")
    [ -n "$status" ] || status=000
    return 0
}

# jqr FILTER [FILE]: one raw value from a JSON file (default: the last stdout).
jqr() { jq -r "$1" "${2:-$YG_OUT}" 2>/dev/null; }

# The value of header NAME in the last api call (without CR).
api_header()
{
    tr -d '\r' <"$YG_HDRS" | sed -n "s/^$1: *//Ip" | tail -n 1
}

# ---- request documents -----------------------------------------------------

# A date N days from today (UTC), YYYY-MM-DD.
yg_date_in()
{
    local t=$(( $(date -u +%s) + $1 * 86400 ))
    date -u -d "@$t" +%F 2>/dev/null || date -u -r "$t" +%F
}

# yg_render TEMPLATE OUT NAME DEPT VCPUS COUNT: fill a template of tests/e2e/data.
yg_render()
{
    sed -e "s/@NAME@/$3/g" -e "s/@DEPARTMENT@/$4/g" -e "s/@VCPUS@/$5/g" -e "s/@COUNT@/$6/g" \
        -e "s/@LEASE@/$(yg_date_in 30)/g" "$E2E_DATA/$1" >"$2"
}

# yg_request NAME DEPT [VCPUS [COUNT]]: a valid YAML request, VCPUS per VM
# (default 2), COUNT VMs (default 1) of 4 GiB memory and 40 GiB disk each;
# prints the file's path.
yg_request()
{
    local f=$YG_TMP/req-$1.yaml
    yg_render request.yaml.in "$f" "$1" "$2" "${3:-2}" "${4:-1}"
    printf '%s\n' "$f"
}

# yg_new_token ADMIN_TOKEN ROLE [DEPT]: create a token, print its secret.
yg_new_token()
{
    yg "$1" --json token create --role "$2" ${3:+--department "$3"} --description "e2e $2 ${3:-}"
    [ "$rc" = 0 ] || { diag "token create --role $2 failed:"; diag_file "$YG_ERR"; return 1; }
    jqr .token.secret
}

# yg_set_quota ADMIN_TOKEN DEPT VCPUS MEMORY DISK VMS
yg_set_quota()
{
    yg "$1" quota set "$2" --vcpus "$3" --memory "$4" --disk "$5" --vms "$6" --max-lease-days 365
    [ "$rc" = 0 ] || { diag "quota set $2 failed:"; diag_file "$YG_ERR"; return 1; }
}

# ---- the audit chain (as controller/audit.c computes it) -------------------

# One field: "LENGTH:" + the bytes, or "-:" for NULL (pass the word NULL
# through yg_audit_hash with a leading backslash: \NULL).
yg__audit_field()
{
    if [ "$1" = '\NULL' ]; then
        printf -- '-:'
    else
        printf '%d:%s' "${#1}" "$1"
    fi
}

# yg_audit_hash PREV_HASH AT ACTOR ROLE ACTION OBJECT BEFORE AFTER
# (BEFORE/AFTER: JSON text or \NULL); prints the entry's hash in hex.
yg_audit_hash()
{
    local f
    {
        yg__audit_field yunguan-audit-v1
        for f in "$@"; do
            yg__audit_field "$f"
        done
    } | sha256sum | cut -d' ' -f1
}
