#!/usr/bin/env bash
# e2e-daemon.sh — the daemon itself: --help, --version, bad flags, the
# configuration file's errors with file:line:column, /healthz, /metrics, and
# SIGTERM with fifty submissions in flight (exit 0, every acknowledged
# submission stored, every stored one acknowledged).
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_require sqlite3 timeout
yg_setup

# run_daemon ARG...: yunguand in the foreground (it is expected to exit at
# once); $rc, stdout in $YG_OUT, stderr in $YG_ERR.
run_daemon()
{
    timeout 20 "$YUNGUAND" "$@" >"$YG_OUT" 2>"$YG_ERR" </dev/null
    rc=$?
}

# ---- the command line ----
mkdir "$YG_TMP/none"
NODB=$YG_TMP/none/yunguan.db
run_daemon --help
check_rc 0 "yunguand --help exits 0"
check_match "$(cat "$YG_OUT")" '^Usage: yunguand ' "... and prints the usage on stdout"
check_match "$(cat "$YG_OUT")" '--listen ADDR:PORT' "... with the options"
run_daemon --version
check_rc 0 "yunguand --version exits 0"
check_match "$(cat "$YG_OUT")" '^yunguand [0-9]+\.[0-9]+' "... and prints the version"
run_daemon --db "$NODB" --no-such-flag
check_rc 2 "an unknown flag: exit 2"
check_match "$(cat "$YG_ERR")" "yunguand --help" "... pointing to --help"
run_daemon --db "$NODB" stray-argument
check_rc 2 "a stray argument: exit 2"
check_match "$(cat "$YG_ERR")" "unexpected argument 'stray-argument'" "... naming it"
run_daemon --db "$NODB" --listen nonsense
check_rc 2 "--listen without a port: exit 2"
run_daemon --db "$NODB" --listen 127.0.0.1:99999
check_rc 2 "--listen with port 99999: exit 2"
run_daemon --db "$NODB" --log-level loud
check_rc 2 "an unknown log level: exit 2"
run_daemon --db "$NODB" --listen
check_rc 2 "--listen without its value: exit 2"
check_eq "$(ls -A "$YG_TMP/none")" "" "refused command lines created no database"

# ---- the configuration file ----
cfg=$YG_TMP/bad-key.yaml
printf 'listen: 127.0.0.1:0\ncolour: blue\n' >"$cfg"
run_daemon --config "$cfg" --db "$NODB"
check_rc 2 "a configuration file with an unknown key: exit 2"
check_match "$(cat "$YG_ERR")" "^yunguand: $cfg:2:1: colour: unknown key" "... the error is FILE:LINE:COLUMN: key: message"
cfg=$YG_TMP/bad-value.yaml
printf '# yunguand\nlisten: 127.0.0.1:0\nhttp_threads: 1000\n' >"$cfg"
run_daemon --config "$cfg" --db "$NODB"
check_rc 2 "a configuration file with a bad value: exit 2"
check_match "$(cat "$YG_ERR")" "^yunguand: $cfg:3:15: http_threads: " "... pointing at the value (line 3, column 15)"
cfg=$YG_TMP/bad-yaml.yaml
printf 'listen: [127.0.0.1:0\n' >"$cfg"
run_daemon --config "$cfg" --db "$NODB"
check_rc 2 "a configuration file that is not YAML: exit 2"
check_match "$(cat "$YG_ERR")" "^yunguand: $cfg:[0-9]+:[0-9]+: " "... with a line and a column"
run_daemon --config "$YG_TMP/does-not-exist.yaml" --db "$NODB"
check_rc 2 "a missing configuration file: exit 2"
check_match "$(cat "$YG_ERR")" "does-not-exist\.yaml" "... naming it"

mkdir "$YG_TMP/db"
DB=$YG_TMP/db/yunguan.db
cfg=$YG_TMP/good.yaml
printf 'http_threads: 4\nmax_body_bytes: 2048\nlisten: 127.0.0.1:1\n' >"$cfg"
yg_daemon_start "$DB" --config "$cfg" || { not_ok "yunguand starts with a configuration file"; yg_finish; }
ok "yunguand starts with a valid configuration file (flags override its listen)"

# ---- /healthz and /metrics ----
api GET /healthz ""
check_status 200 "/healthz answers 200 without a token"
check_eq "$(jqr .status "$YG_BODY")" ok "... {\"status\": \"ok\"}"

yg_set_quota "$ADMIN" health 1000 4TiB 100TiB 1000 &&
HEALTH=$(yg_new_token "$ADMIN" department health) &&
AUDITOR=$(yg_new_token "$ADMIN" auditor)
check_eq "$?" 0 "admin sets a quota and creates tokens"

big=$YG_TMP/over-config-limit.yaml
yg_render request.yaml.in "$big" over-limit health 2 1
{ printf '# '; head -c 3000 /dev/zero | tr '\0' x; printf '\n'; } >>"$big"
api POST /api/v1/requests "$HEALTH" -H 'Content-Type: application/yaml' --data-binary "@$big"
check_status 413 "max_body_bytes from the configuration file applies (3 KiB body, limit 2048)"

for n in one two three; do
    yg "$HEALTH" request submit "$(yg_request "metrics-$n" health)"
done
check_rc 0 "health submits three requests"

api GET /metrics ""
check_status 401 "/metrics without a token: 401"
api GET /metrics "$HEALTH"
check_status 403 "/metrics with a department token: 403"
api GET /metrics "$AUDITOR"
check_status 200 "/metrics with an auditor token: 200"
check_match "$(api_header Content-Type)" '^text/plain' "... in the Prometheus text format"
metrics=$(cat "$YG_BODY")
check_match "$metrics" '^yunguan_requests\{state="submitted"\} 3$' 'yunguan_requests{state="submitted"} counts the three requests'
check_match "$metrics" '^yunguan_http_responses_total\{code="201"\} [1-9][0-9]*$' 'yunguan_http_responses_total{code="201"} is there'
check_match "$metrics" '^yunguan_http_responses_total\{code="413"\} 1$' '... and counts the 413 once'
check_match "$metrics" '^# TYPE yunguan_http_request_duration_seconds histogram$' "the latency histogram is declared"
check_match "$metrics" '^yunguan_http_request_duration_seconds_bucket\{le="0\.005"\} [0-9]+$' "... with its buckets"
inf=$(printf '%s\n' "$metrics" | sed -n 's/^yunguan_http_request_duration_seconds_bucket{le="+Inf"} //p')
count=$(printf '%s\n' "$metrics" | sed -n 's/^yunguan_http_request_duration_seconds_count //p')
check_match "$inf" '^[1-9][0-9]*$' '... the +Inf bucket counts every response'
check_eq "$count" "$inf" "... _count equals the +Inf bucket"
check_match "$metrics" '^yunguan_http_request_duration_seconds_sum [0-9]+(\.[0-9]+)?$' "... and there is a _sum"
check_eq "$(printf '%s\n' "$metrics" | sed -n 's/^yunguan_http_request_duration_seconds_bucket{le="[^"]*"} //p' |
            awk 'NR > 1 && $1 < prev { bad = 1 } { prev = $1 } END { print bad ? "no" : "yes" }')" yes \
    "... the buckets are cumulative"
api GET /metrics "$AUDITOR"
check_eq "$(sed -n 's/^yunguan_requests{state="submitted"} //p' "$YG_BODY")" 3 "a second scrape agrees"

# ---- SIGTERM with fifty submissions in flight ----
# Each curl connects and sends its headers, then streams its body (chunked)
# from a FIFO that this script holds open: all fifty are connected to the
# daemon, bodies incomplete, before any can finish.  Then the bodies are
# completed and SIGTERM is sent while answers are still being made.
N=50
established()   # connections from clients to the daemon's port
{
    [ -r /proc/net/tcp ] || return 0
    [ "$(awk -v p="$(printf ':%04X' "$YG_PORT")" \
             '$4 == "01" && substr($3, length($3) - 4) == p' /proc/net/tcp | wc -l)" -ge "$N" ]
}
first_answer() { grep -qs . "$YG_TMP"/burst.*.out; }
rm -f "$YG_TMP"/burst.*
fds=()
bodies=()
pids=
for ((k = 0; k < N; k++)); do
    yg_render request.yaml.in "$YG_TMP/inflight-$k.yaml" "inflight-$k" health 1 1
    bodies[k]=$(cat "$YG_TMP/inflight-$k.yaml")
    mkfifo "$YG_TMP/in.$k"
    (
        for fd in "${fds[@]}"; do exec {fd}>&-; done
        exec curl -sS --max-time 30 -o "$YG_TMP/inflight-$k.json" -w '%{http_code}' \
             -X POST -T - -H 'Expect:' -H 'Content-Type: application/yaml' \
             -H "Authorization: Bearer $HEALTH" "$YG_URL/api/v1/requests" \
             <"$YG_TMP/in.$k" >"$YG_TMP/burst.$k.out" 2>"$YG_TMP/burst.$k.err"
    ) &
    pids="$pids $!"
    yg_track $!
    exec {fd}>"$YG_TMP/in.$k"
    fds[k]=$fd
done
yg_wait_for 10 established || diag "not all $N clients were connected before the bodies were sent"
trap '' PIPE    # a client that gave up must not kill this script
complete_bodies() # FROM TO
{
    local k fd
    for ((k = $1; k < $2; k++)); do
        fd=${fds[k]}
        printf '%s\n' "${bodies[k]}" >&"$fd"
        exec {fd}>&-
    done
}
# The first half completes and one answer is awaited (so that some are
# acknowledged); the second half completes right before SIGTERM.
complete_bodies 0 $((N / 2))
yg_wait_for 10 first_answer || diag "no submission was answered before the stop"
complete_bodies $((N / 2)) "$N"
yg_daemon_stop
check_eq "$yg_daemon_status" 0 "SIGTERM with $N submissions in flight: the daemon exits 0"
for p in $pids; do
    wait "$p" 2>/dev/null
done
yg_untrack $pids
statuses=$(for ((k = 0; k < N; k++)); do printf '%s\n' "$(cat "$YG_TMP/burst.$k.out")"; done)
diag "answers: $(printf '%s\n' "$statuses" | sort | uniq -c | tr -s ' \n' ' ')"
check_eq "$(printf '%s\n' "$statuses" | grep -cvE '^(201|503|000)$')" 0 \
    "every submission got 201 or 503 (or, past the stop, no connection: 000)" ||
    { printf '%s\n' "$statuses" | grep -vE '^(201|503|000)$' | sort | uniq -c | sed 's/^/#   /'; }
acked=$(for ((k = 0; k < N; k++)); do
            [ "$(cat "$YG_TMP/burst.$k.out")" = 201 ] && jq -r .request.name "$YG_TMP/inflight-$k.json"
        done | sort)
n_acked=$(printf '%s' "$acked" | grep -c .)
check_match "$n_acked" '^[1-9][0-9]*$' "some submissions were acknowledged before the stop ($n_acked)"
stored=$(sqlite3 "$DB" "SELECT name FROM requests WHERE name LIKE 'inflight-%' ORDER BY name")
diag "$(printf '%s\n' "$stored" | grep -c .) of the $N submissions are stored, $n_acked were acknowledged"
missing=$(comm -23 <(printf '%s\n' "$acked") <(printf '%s\n' "$stored" | sort) | grep . | tr '\n' ' ')
check_eq "$missing" "" "every acknowledged submission is in the database after the stop"
unanswered=$(comm -13 <(printf '%s\n' "$acked") <(printf '%s\n' "$stored" | sort) | grep . | tr '\n' ' ')
check_eq "$unanswered" "" "every stored submission was answered 201 before the daemon exited"
check_eq "$(sqlite3 "$DB" 'PRAGMA integrity_check')" ok "the database passes integrity_check"
check_eq "$(sqlite3 "$DB" "SELECT count(*) FROM requests r WHERE name LIKE 'inflight-%' AND
              (SELECT count(*) FROM transitions t WHERE t.request_id = r.id) = 1 AND
              (SELECT count(*) FROM audit a WHERE a.object = 'request/' || r.id) = 1")" \
    "$(printf '%s\n' "$stored" | grep -c .)" "each stored one has its transition and its audit entry"

yg_daemon_start "$DB" || not_ok "yunguand starts again after the stop"
yg "$AUDITOR" audit verify
check_rc 0 "after a restart the audit trail verifies"
yg "$HEALTH" --json request list --all
check_eq "$(jqr '[.items[] | select(.name | startswith("inflight-"))] | length')" "$(printf '%s\n' "$stored" | grep -c .)" \
    "the API lists the same stored submissions"
yg_daemon_stop
check_eq "$yg_daemon_status" 0 "an idle daemon exits 0 on SIGTERM"

yg_finish
