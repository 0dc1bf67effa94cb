#!/usr/bin/env bash
# e2e-tls.sh — the API over HTTPS: yunguand with --tls-cert/--tls-key (a
# test CA and a certificate for 127.0.0.1 made here with openssl), the CLI
# and an agent trusting that CA with --ca-file, and what is refused: a
# client that does not trust the certificate, plain HTTP on the TLS port,
# a private key every user can read, a certificate without its key.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_require openssl sqlite3
yg_setup

AGENT=$top_builddir/agents/yunguan-agent
[ -x "$AGENT" ] || yg_skip "$AGENT is not built"

# ---- a test CA and a server certificate for 127.0.0.1 ----
pki=$YG_TMP/pki
mkdir -p "$pki"
if ! sh "$top_srcdir/contrib/test-pki.sh" "$pki"; then
    diag_file "$pki/openssl.log"
    yg_skip "openssl cannot make the test certificates"
fi
# A second CA that signed nothing here: trusting it must not be enough.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=some other CA" -keyout "$pki/other.key" -out "$pki/other.crt" >/dev/null 2>&1

mkdir "$YG_TMP/db"
DB=$YG_TMP/db/yunguan.db

# ---- what yunguand refuses before it serves ----
chmod 644 "$pki/server.key"
timeout 20 "$YUNGUAND" --db "$DB" --listen 127.0.0.1:0 --tls-cert "$pki/server.crt" \
    --tls-key "$pki/server.key" >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 2 "a private key every user can read is refused (exit 2)"
check_match "$(cat "$YG_ERR")" "TLS private key '.*server.key' can be read by every user \\(mode 0644\\)" \
    "... saying which file and its mode"
chmod 600 "$pki/server.key"
timeout 20 "$YUNGUAND" --db "$DB" --listen 127.0.0.1:0 --tls-cert "$pki/server.crt" \
    >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 2 "a certificate without its key is refused (exit 2)"
check_match "$(cat "$YG_ERR")" "needs both a certificate and its key" "... saying what is missing"
timeout 20 "$YUNGUAND" --db "$DB" --listen 127.0.0.1:0 --tls-cert "$pki/server.csr" \
    --tls-key "$pki/server.key" >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 1 "a certificate request in place of the certificate does not serve (exit 1)"
check_match "$(cat "$YG_ERR")" "cannot serve HTTPS" "... with a sentence about HTTPS"

# ---- serving HTTPS ----
YG_CA_FILE=$pki/ca.crt
yg_daemon_start "$DB" --tls-cert "$pki/server.crt" --tls-key "$pki/server.key" ||
    { not_ok "yunguand serves HTTPS"; yg_finish; }
check_match "$YG_URL" '^https://127\.0\.0\.1:[0-9]+$' "yunguand serves HTTPS ($YG_URL)"
yg_set_quota "$ADMIN" health 8 64GiB 1TiB 10
check_rc 0 "the CLI trusting the test CA (--ca-file) sets a quota over HTTPS"
HEALTH=$(yg_new_token "$ADMIN" department health)
check_match "$HEALTH" '^yg_' "... and makes a department token"
yg "$HEALTH" --json request submit "$(yg_request tls-app health 1 1)"
check_rc 0 "a department submits a request over HTTPS"
YUNGUAN_CA_FILE=$pki/ca.crt "$YUNGUAN" --server "$YG_URL" --token "$HEALTH" --json request list \
    >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 0 "YUNGUAN_CA_FILE works as --ca-file does"

# ---- what clients refuse ----
"$YUNGUAN" --server "$YG_URL" --token "$HEALTH" request list >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 3 "without the CA the CLI does not trust the controller (exit 3)"
check_match "$(cat "$YG_ERR")" "cannot trust the controller at $YG_URL: .*--ca-file" \
    "... and says so, pointing at --ca-file"
"$YUNGUAN" --server "$YG_URL" --ca-file "$pki/other.crt" --token "$HEALTH" request list \
    >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 3 "trusting another CA is not enough (exit 3)"
"$YUNGUAN" --server "https://localhost:$YG_PORT" --ca-file "$pki/ca.crt" --token "$HEALTH" request list \
    >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 3 "the right CA but a name the certificate does not carry (localhost) is refused (exit 3)"
"$YUNGUAN" --server "$YG_URL" --ca-file "$YG_TMP/no-such.pem" --token "$HEALTH" request list \
    >"$YG_OUT" 2>"$YG_ERR"
check_eq "$?" 2 "a CA file that cannot be read is a usage error (exit 2)"
check_match "$(cat "$YG_ERR")" "cannot read the CA file '.*no-such.pem' \\(from --ca-file\\)" "... naming it"
plain=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$YG_PORT/healthz" 2>/dev/null)
check_no_match "${plain:-000}" '^2' "plain HTTP on the HTTPS port gets no answer (${plain:-000})"

# ---- an agent over HTTPS ----
yg "$ADMIN" --json host enroll tls-host
check_rc 0 "admin makes an enrollment secret for tls-host"
jqr .secret >"$YG_TMP/enroll-secret"
yg "$ADMIN" host enroll tls-host2
check_match "$(cat "$YG_OUT")" "yunguan-agent --controller URL --ca-file CA.pem --host tls-host2 --enroll-token-file FILE" \
    "'host enroll' over HTTPS tells the agent to trust the CA too"
mkdir -p "$YG_TMP/agent"
"$AGENT" --controller "$YG_URL" --ca-file "$pki/ca.crt" --state-dir "$YG_TMP/agent" --host tls-host \
    --enroll-token-file "$YG_TMP/enroll-secret" --log-level debug 2>"$YG_TMP/agent.log" &
agent_pid=$!
yg_track "$agent_pid"
reported() { [ "$(sqlite3 "$DB" "SELECT last_seq FROM hosts WHERE name = 'tls-host'")" -ge 1 ] 2>/dev/null; }
check "the agent trusting the CA enrolls and its first report is applied over HTTPS" yg_wait_for 20 reported
check "... and it stored its own agent token" test -s "$YG_TMP/agent/agent.token"
kill -TERM "$agent_pid" 2>/dev/null
wait "$agent_pid" 2>/dev/null
yg_untrack "$agent_pid"

mkdir -p "$YG_TMP/agent2"
cp "$YG_TMP/agent/agent.token" "$YG_TMP/agent2/"
"$AGENT" --controller "$YG_URL" --state-dir "$YG_TMP/agent2" --host tls-host \
    --log-level debug 2>"$YG_TMP/agent2.log" &
agent_pid=$!
yg_track "$agent_pid"
untrusted() { grep -q "cannot trust the controller at $YG_URL" "$YG_TMP/agent2.log"; }
check "an agent without the CA does not trust the controller, and logs why" yg_wait_for 20 untrusted
kill -TERM "$agent_pid" 2>/dev/null
wait "$agent_pid" 2>/dev/null
yg_untrack "$agent_pid"
"$AGENT" --controller "$YG_URL" --ca-file "$YG_TMP/no-such.pem" --state-dir "$YG_TMP/agent2" \
    --host tls-host >/dev/null 2>"$YG_ERR"
check_eq "$?" 2 "an agent given a CA file it cannot read does not start (exit 2)"

yg_daemon_stop
check_eq "$yg_daemon_status" 0 "yunguand over HTTPS stops on SIGTERM with status 0"
yg_finish
