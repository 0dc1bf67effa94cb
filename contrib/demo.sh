#!/bin/sh
# The main job, on the embedded default: yunguand on a SQLite file, the
# sample requests in contrib/requests/ submitted by their two departments
# (health 卫健委, police 公安), one approved and one rejected by cloud
# operations, then where things stand.  Usage: contrib/demo.sh [BUILD_DIR]
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top}
yunguand=$build/controller/yunguand
yunguan=$build/cli/yunguan
for p in "$yunguand" "$yunguan"; do
  [ -x "$p" ] || { echo "demo: $p is not built; run 'make' first" >&2; exit 1; }
done

state=$(mktemp -d "${TMPDIR:-/tmp}/yunguan-demo.XXXXXX")
log=$state/yunguand.log
"$yunguand" --db "$state/yunguan.db" --listen 127.0.0.1:0 2>"$log" &
daemon=$!
stop() { kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true; }
trap stop EXIT INT TERM

# Wait (bounded) until it says where it listens.
port=
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
  port=$(sed -n 's/.*serving the API on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] || { kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; }
  i=$((i + 1))
done
[ -n "$port" ] || { echo "demo: yunguand did not start:" >&2; cat "$log" >&2; exit 1; }

export YUNGUAN_URL="http://127.0.0.1:$port"
admin=$(cat "$state/admin.token")
say() { printf '\n### %s\n' "$*"; }
as() { tok=$1; shift; YUNGUAN_TOKEN=$tok "$yunguan" "$@"; }
secret_of() { sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p'; }

say "yunguand is serving on $YUNGUAN_URL (store: $state/yunguan.db)"

say "admin: quotas for two departments"
as "$admin" quota set health --vcpus 64 --memory 256GiB --disk 4TiB --vms 20 --max-lease-days 365 >/dev/null
as "$admin" quota set police --vcpus 32 --memory 128GiB --disk 2TiB --vms 10 --max-lease-days 365 >/dev/null
as "$admin" quota show

say "admin: a token per department and one for cloud operations"
health=$(as "$admin" --json token create --role department --department health --description "卫健委" | secret_of)
police=$(as "$admin" --json token create --role department --department police --description "公安" | secret_of)
ops=$(as "$admin" --json token create --role cloudops --description "cloud operations" | secret_of)
as "$admin" token list

say "departments submit the sample requests (contrib/requests/)"
first_health= first_police=
for f in "$top"/contrib/requests/*.yaml; do
  dept=$(sed -n 's/^ *department: *\([a-z0-9-]*\).*/\1/p' "$f" | head -n 1)
  case $dept in
    health) tok=$health ;;
    police) tok=$police ;;
    *) echo "demo: $f names department '$dept'; skipped"; continue ;;
  esac
  echo "$dept submits $(basename "$f"):"
  id=$(as "$tok" --json request submit "$f" | sed -n 's/^    "id": *\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$id" ] || { echo "demo: submission of $f failed" >&2; exit 1; }
  echo "  stored as request $id"
  if [ "$dept" = health ] && [ -z "$first_health" ]; then first_health=$id; fi
  if [ "$dept" = police ] && [ -z "$first_police" ]; then first_police=$id; fi
done

[ -n "$first_health" ] && [ -n "$first_police" ] ||
  { echo "demo: contrib/requests/ needs a request from each of health and police" >&2; exit 1; }

say "cloud operations approves request $first_health and rejects request $first_police"
as "$ops" request approve "$first_health" --reason "capacity available; 等保 level checked"
as "$ops" request reject "$first_police" --reason "please use the existing archive cluster"

say "a department sees only its own requests (police's view)"
as "$police" request list

say "where things stand (cloud operations' view)"
as "$ops" request list
as "$admin" quota show
as "$admin" request show "$first_health"

say "the audit trail, verified"
as "$admin" audit list
as "$admin" audit verify

say "done; the store stays in $state (restart: $yunguand --db $state/yunguan.db)"
