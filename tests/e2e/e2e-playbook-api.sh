#!/usr/bin/env bash
# e2e-playbook-api.sh — playbook runs through the real yunguand, with curl
# and the CLI acting as the hosts' agents (real agents in namespaces are
# another test): a task long-poll answers with a task made while it waits,
# and '{"tasks": []}' when its wait runs out; an apply run goes canary →
# batch as results are posted; a failure stops it with the hosts not yet
# started skipped; a repeated result is not accepted twice; a host cannot
# touch another's task; roles (cloudops only checks, auditor and
# department cannot run); a host that cannot be rendered refuses the run
# with 422 and stores nothing; a controller restart mid-run carries on;
# 'yunguan playbook run --wait' follows a run and exits 1 when it failed.
if [ -z "${BASH_VERSION:-}" ]; then
    command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is needed"; exit 77; }
    exec bash "$0" "$@"
fi
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/e2e/lib.sh"
yg_setup

mkdir "$YG_TMP/db" "$YG_TMP/playbooks"
DB=$YG_TMP/db/yunguan.db
cat >"$YG_TMP/playbooks/enable-dual-stack.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: Playbook
metadata:
  name: enable-dual-stack
  description: Enable IPv6 on the segment interface with the planned address
steps:
  - name: enable ipv6
    action: sysctl.set
    args: {key: "net/ipv6/conf/{{iface}}/disable_ipv6", value: "0"}
  - name: address
    action: address.add
    args: {address: "{{plan.ipv6_cidr}}"}
EOF
cat >"$YG_TMP/config.yaml" <<EOF
playbook_dir: $YG_TMP/playbooks
playbook_batch_size: 2
playbook_host_timeout_seconds: 60
EOF
# Five hosts on an IPv6-planned segment, one on a v4-only segment.
cat >"$YG_TMP/segments.yaml" <<'EOF'
apiVersion: yunguan/v1
kind: SegmentList
segments:
  - name: health-dmz
    interface: br-health
    departments: [health]
    ipv4: {prefix: 198.51.100.0/24, gateway: 198.51.100.1}
    ipv6: {prefix: "2001:db8:10::/64", gateway: "2001:db8:10::1", slaac: false}
    hosts:
      - {name: hv01, ipv4: 198.51.100.21, ipv6: "2001:db8:10::21"}
      - {name: hv02, ipv4: 198.51.100.22, ipv6: "2001:db8:10::22"}
      - {name: hv03, ipv4: 198.51.100.23, ipv6: "2001:db8:10::23"}
      - {name: hv04, ipv4: 198.51.100.24, ipv6: "2001:db8:10::24"}
      - {name: hv05, ipv4: 198.51.100.25, ipv6: "2001:db8:10::25"}
  - name: civil-affairs
    interface: br-civil
    departments: [civil]
    ipv4: {prefix: 203.0.113.0/24, gateway: 203.0.113.1}
    hosts:
      - {name: hv09, ipv4: 203.0.113.29}
EOF

start() { yg_daemon_start "$DB" --config "$YG_TMP/config.yaml"; }
start || { not_ok "yunguand starts"; yg_finish; }
ok "yunguand starts with playbook_dir, playbook_batch_size and playbook_host_timeout_seconds"

yg_set_quota "$ADMIN" health 64 256GiB 4TiB 20 &&
NETOPS=$(yg_new_token "$ADMIN" netops) &&
CLOUDOPS=$(yg_new_token "$ADMIN" cloudops) &&
AUDITOR=$(yg_new_token "$ADMIN" auditor) &&
HEALTH=$(yg_new_token "$ADMIN" department health)
check_eq "$?" 0 "admin makes netops, cloudops, auditor and department (health) tokens"
yg "$NETOPS" segment apply "$YG_TMP/segments.yaml"
check_rc 0 "netops applies the segments"

# Agent tokens, by enrollment (doc/AGENT.md).
declare -A AGENT
for h in hv01 hv02 hv03 hv04 hv05 hv09; do
    api POST "/api/v1/hosts/$h/enrollment" "$ADMIN"
    secret=$(jqr .secret "$YG_BODY")
    api POST /api/v1/agents/enroll "" -H "Authorization: Bearer $secret" -H 'Content-Type: application/json' \
        --data "{\"host\": \"$h\"}"
    AGENT[$h]=$(jqr .token "$YG_BODY")
done
check_match "${AGENT[hv05]}" '^yg_' "each host's agent enrolls and gets its token"

# ---- offline validation ----
yg "" playbook validate "$YG_TMP/playbooks/enable-dual-stack.yaml"
check_rc 0 "'playbook validate' accepts the playbook, without the controller"
sed 's/action: address.add/action: address.ad/' "$YG_TMP/playbooks/enable-dual-stack.yaml" >"$YG_TMP/bad.yaml"
yg "" playbook validate "$YG_TMP/bad.yaml"
check_rc 1 "... and refuses one with an unknown action (exit 1)"
check_match "$(cat "$YG_ERR")" 'bad\.yaml:11:[0-9]+: steps\[1\]\.action' "... naming FILE:LINE:COLUMN and the path"

# ---- the installed playbooks ----
yg "$AUDITOR" --json playbook list
check_rc 0 "an auditor lists the installed playbooks"
check_eq "$(jqr '.items | map(.name + ":" + (.steps | tostring)) | join(",")')" "enable-dual-stack:2" \
    "... enable-dual-stack, with its two steps"
yg "$NETOPS" playbook show enable-dual-stack
check_rc 0 "'playbook show' shows one"
api GET /api/v1/playbooks/no-such-playbook "$NETOPS"
check_status 404 "an unknown playbook is 404"
cp "$YG_TMP/playbooks/enable-dual-stack.yaml" "$YG_TMP/playbooks/renamed-copy.yaml"
api GET /api/v1/playbooks/renamed-copy "$NETOPS"
check_status 422 "a playbook file not named after its metadata.name is refused (422)"
check_match "$(jq -r .error.message "$YG_BODY")" "declares metadata.name 'enable-dual-stack'" "... saying which name it declares"
rm -f "$YG_TMP/playbooks/renamed-copy.yaml"
api GET /api/v1/playbooks/enable-dual-stack "$HEALTH"
check_status 403 "a department cannot read playbooks"

# ---- roles ----
run_body() { printf '{"playbook": "enable-dual-stack", "segment": "%s", "mode": "%s"%s}' "$1" "$2" "${3:-}"; }
api POST /api/v1/playbook-runs "$HEALTH" -H 'Content-Type: application/json' --data "$(run_body health-dmz check)"
check_status 403 "a department cannot run a playbook"
api POST /api/v1/playbook-runs "$AUDITOR" -H 'Content-Type: application/json' --data "$(run_body health-dmz check)"
check_status 403 "an auditor cannot run a playbook"
api POST /api/v1/playbook-runs "$CLOUDOPS" -H 'Content-Type: application/json' --data "$(run_body health-dmz apply)"
check_status 403 "cloudops cannot apply"
api POST /api/v1/playbook-runs "${AGENT[hv01]}" -H 'Content-Type: application/json' --data "$(run_body health-dmz check)"
check_status 403 "an agent cannot run a playbook"
api GET /api/v1/playbook-runs "$AUDITOR"
check_eq "$status $(jqr '.items | length' "$YG_BODY")" "200 0" "... and none of those made a run"

# ---- a host that cannot be rendered: 422, nothing stored ----
api POST /api/v1/playbook-runs "$NETOPS" -H 'Content-Type: application/json' --data "$(run_body civil-affairs apply)"
check_status 422 "a run on a segment whose host has no IPv6 plan is refused (422)"
check_match "$(cat "$YG_BODY")" 'hv09' "... naming the host"
api GET /api/v1/playbook-runs "$NETOPS"
check_eq "$(jqr '.items | length' "$YG_BODY")" 0 "... and nothing was stored"
api POST /api/v1/playbook-runs "$NETOPS" -H 'Content-Type: application/json' \
    --data '{"playbook": "enable-dual-stack", "segment": "health-dmz", "mode": "apply", "bogus": 1}'
check_status 422 "an unknown field in the request is refused"

# ---- check mode by cloudops: every host at once ----
# A long-poll started before the run exists gets its task when it is made.
poll() { # poll HOST WAIT OUTFILE: the HTTP status goes to OUTFILE.status
    curl -sS --max-time 90 -o "$3" -w '%{http_code}' -H "Authorization: Bearer ${AGENT[$1]}" \
        "$YG_URL/api/v1/agents/self/tasks?wait=$2" >"$3.status" 2>"$3.err"
}
poll hv03 50 "$YG_TMP/poll-hv03" &
poll_pid=$!
yg_track $poll_pid
polls_waiting() { curl -sS -H "Authorization: Bearer $AUDITOR" "$YG_URL/metrics" | sed -n 's/^yunguan_task_polls_waiting //p'; }
polls_waiting_is() { [ "$(polls_waiting)" = "$1" ]; }
check "hv03's long-poll waits (yunguan_task_polls_waiting 1), holding no thread" yg_wait_for 10 polls_waiting_is 1
api POST /api/v1/playbook-runs "$CLOUDOPS" -H 'Content-Type: application/json' --data "$(run_body health-dmz check)"
check_status 201 "cloudops runs the playbook in check mode (201)"
CHECK_RUN=$(jqr .id "$YG_BODY")
# (hv03's woken poll may have fetched its task before this answer was made.)
check_eq "$(jqr '[.state, .mode, (.hosts | length), .counts.waiting + .counts.sent] | join(" ")' "$YG_BODY")" \
    "running check 5 5" "... running, on all five hosts"
wait $poll_pid
yg_untrack $poll_pid
check_eq "$(cat "$YG_TMP/poll-hv03.status")" 200 "the waiting long-poll of hv03 is answered"
check_eq "$(jq -r '.tasks | map("\(.run) \(.mode) \(.playbook) \(.steps[0].args.key) \(.segment.plan.ipv6_address)") | join(",")' \
    "$YG_TMP/poll-hv03")" "$CHECK_RUN check enable-dual-stack net/ipv6/conf/br-health/disable_ipv6 2001:db8:10::23" \
    "... with its task, rendered for hv03"

result() { # result HOST TASK STATUS [progress|result]
    api POST "/api/v1/agents/self/tasks/$2/${4:-result}" "${AGENT[$1]}" -H 'Content-Type: application/json' \
        --data "{\"status\": \"$3\", \"rolled_back\": $([ "$3" = failed ] && echo true || echo false), \"rollback_ok\": true,
                 \"message\": \"$3 on $1\", \"steps\": [{\"index\": 0, \"name\": \"enable ipv6\", \"action\": \"sysctl.set\",
                 \"status\": \"$([ "$3" = failed ] && echo undone || echo changed)\", \"before\": \"1\", \"after\": \"0\", \"duration_us\": 300}]}"
}
task_of() { # task_of HOST: fetch at once; the first task's id
    api GET "/api/v1/agents/self/tasks?wait=0" "${AGENT[$1]}"
    jqr '.tasks[0].id // empty' "$YG_BODY"
}
for h in hv01 hv02 hv04 hv05; do
    t=$(task_of "$h")
    result "$h" "$t" succeeded
done
T3=$(jq -r '.tasks[0].id' "$YG_TMP/poll-hv03")
result hv03 "$T3" succeeded
check_eq "$status $(jqr .accepted "$YG_BODY")" "200 true" "a result is accepted"
result hv03 "$T3" succeeded
check_eq "$status $(jqr .accepted "$YG_BODY")" "200 false" "... and the same result again is not (accepted: false)"
yg "$AUDITOR" --json playbook show-run "$CHECK_RUN"
check_eq "$(jqr '[.state, .counts.succeeded] | join(" ")')" "succeeded 5" "the check run succeeded on all five hosts"

# ---- apply: canary, then batches of 2 ----
api GET "/api/v1/agents/self/tasks?wait=1" "${AGENT[hv01]}"
check_eq "$status $(jqr '.tasks | length' "$YG_BODY")" "200 0" "a long-poll with nothing to fetch answers no tasks when its wait runs out"
yg "$NETOPS" --json playbook run enable-dual-stack --segment health-dmz --apply
check_rc 0 "netops starts an apply run with the CLI"
RUN=$(jqr .id)
check_eq "$(jqr '[.canary, .batch_size, .batches] | join(" ")')" "hv01 2 3" "... hv01 is the canary, then 2 batches of 2"
check_eq "$(task_of hv02)" "" "hv02 has no task while the canary runs"
T1=$(task_of hv01)
result hv01 "$T1" running progress
check_eq "$status $(jqr .accepted "$YG_BODY")" "200 true" "the canary's progress is accepted"
yg "$NETOPS" --json playbook show-run "$RUN"
check_eq "$(jqr '.hosts | map(.host + "=" + .state) | join(",")')" "hv01=running,hv02=waiting,hv03=waiting,hv04=waiting,hv05=waiting" \
    "show-run: the canary is running, the others wait"
# hv02 long-polls; the canary's success releases batch 1 and wakes it.
poll hv02 50 "$YG_TMP/poll-hv02" &
poll_pid=$!
yg_track $poll_pid
yg_wait_for 10 polls_waiting_is 1 || diag "hv02's poll is not parked yet (the test holds either way)"
result hv01 "$T1" succeeded
wait $poll_pid
yg_untrack $poll_pid
T2=$(jq -r '.tasks[0].id // empty' "$YG_TMP/poll-hv02")
check_match "$T2" '^[0-9]+$' "the canary's success wakes hv02's long-poll with its task"
# hv03 cannot report on hv02's task.
result hv03 "$T2" succeeded
check_status 404 "a host cannot report on another host's task (404)"
T3=$(task_of hv03)
check_eq "$(task_of hv04)" "" "hv04 waits for the next batch"

# Restart the controller mid-run: the run carries on from the store.  A
# long-poll waiting when it stops is answered (no tasks), not cut off.
poll hv05 50 "$YG_TMP/poll-hv05" &
poll_pid=$!
yg_track $poll_pid
check "hv05's long-poll waits" yg_wait_for 10 polls_waiting_is 1
yg_daemon_stop
check_eq "$yg_daemon_status" 0 "yunguand stops cleanly mid-run"
wait $poll_pid
yg_untrack $poll_pid
check_eq "$(cat "$YG_TMP/poll-hv05.status") $(jq -c .tasks "$YG_TMP/poll-hv05")" "200 []" \
    "... and the waiting long-poll was answered with no tasks before it stopped"
start || { not_ok "yunguand restarts"; yg_finish; }
ok "yunguand restarts on the same database"
result hv02 "$T2" succeeded
check_eq "$status $(jqr .accepted "$YG_BODY")" "200 true" "after the restart hv02's result is accepted"
result hv03 "$T3" failed
check_status 200 "hv03 reports a failure"
yg "$NETOPS" --json playbook show-run "$RUN"
check_eq "$(jqr '[.state] + (.hosts | map(.host + "=" + .state)) | join(",")')" \
    "failed,hv01=succeeded,hv02=succeeded,hv03=failed,hv04=skipped,hv05=skipped" \
    "the failure stops the run: hv04 and hv05 are skipped, the run failed"
check_match "$(jqr .message)" 'hv03' "... and the run's message names hv03"
check_eq "$(jqr '.hosts[] | select(.host == "hv03") | [.rolled_back, .steps[0].status, .steps[0].before, .steps[1].status] | join(" ")')" \
    "true undone 1 not-run" "... with hv03's step results"
check_eq "$(task_of hv04)" "" "hv04 never gets its task"
yg "$NETOPS" playbook show-run "$RUN"
check_match "$(cat "$YG_OUT")" 'hv03 +1 +failed' "show-run prints a table of hosts"

# ---- audit ----
api GET "/api/v1/audit?limit=500" "$AUDITOR"
check_match "$(jq -r '.items[] | select(.action == "playbook.run") | .after.playbook_sha256' "$YG_BODY" | head -n 1)" '^[0-9a-f]{64}$' \
    "the audit trail has the run with the playbook's SHA-256"
check_eq "$(jq -r '[.items[] | select(.action == "playbook.run-end" and .object == "playbook-run/'"$RUN"'")] | length' "$YG_BODY")" 1 \
    "... and the run's end"

# ---- cancel, --wait ----
yg "$CLOUDOPS" playbook run enable-dual-stack --segment health-dmz --apply
check_rc 1 "the CLI refuses apply for cloudops"
yg "$NETOPS" --json playbook run enable-dual-stack --segment health-dmz --apply --hosts hv04,hv05 --canary hv05
RUN2=$(jqr .id)
check_eq "$rc $(jqr '[.canary, (.hosts | length)] | join(" ")')" "0 hv05 2" "a run on two named hosts with hv05 as canary"
yg "$NETOPS" --json playbook run enable-dual-stack --segment health-dmz --apply
check_rc 1 "a second apply run on the segment is refused while one runs"
yg "$NETOPS" playbook cancel "$RUN2"
check_rc 0 "netops cancels the run"
yg "$NETOPS" --json playbook show-run "$RUN2"
check_eq "$(jqr '[.state] + (.hosts | map(.host + "=" + .state)) | join(",")')" "cancelled,hv05=cancelled,hv04=cancelled" \
    "... the run and its not-started hosts are cancelled"
yg "$NETOPS" --json playbook runs --segment health-dmz
check_eq "$(jqr '.items | map(.state) | join(",")')" "cancelled,failed,succeeded" "'playbook runs' lists them newest first"

# --wait: agents answer in the background; the CLI follows until the end.
agent_loop() { # agent_loop HOST STATUS: fetch one task (long-poll) and report STATUS
    local out=$YG_TMP/loop-$1 t
    poll "$1" 50 "$out"
    t=$(jq -r '.tasks[0].id // empty' "$out")
    [ -n "$t" ] && curl -sS -o /dev/null -H "Authorization: Bearer ${AGENT[$1]}" -H 'Content-Type: application/json' \
        --data "{\"status\": \"$2\", \"steps\": []}" "$YG_URL/api/v1/agents/self/tasks/$t/result"
}
pids=
for h in hv01 hv02 hv03 hv04 hv05; do
    agent_loop "$h" succeeded & pids="$pids $!"
done
yg_track $pids
yg "$NETOPS" playbook run "$YG_TMP/playbooks/enable-dual-stack.yaml" --segment health-dmz --apply --batch-size 4 --wait
check_rc 0 "'playbook run FILE --apply --wait' follows the run to success and exits 0"
check_match "$(cat "$YG_OUT")" 'succeeded' "... and says it succeeded"
wait $pids 2>/dev/null
yg_untrack $pids
pids=
agent_loop hv01 failed & pids="$pids $!"
yg_track $pids
yg "$NETOPS" playbook run enable-dual-stack --segment health-dmz --apply --wait
check_rc 1 "'--wait' exits 1 when the run failed"
wait $pids 2>/dev/null
yg_untrack $pids

yg_finish
