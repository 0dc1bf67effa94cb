#!/bin/sh
# The main job, on the embedded default: yunguand on a SQLite file, the
# sample requests in contrib/requests/ submitted by their two departments
# (health 卫健委, police 公安), one approved and one rejected by cloud
# operations; then the closed loop of one request through libvirt: the
# segment plan, two hypervisors, the approved request provisioned onto them
# (running VMs with IPv4/IPv6 addresses), one VM decommissioned (wiped,
# addresses released, quota credited back, a reclaim record); then where
# things stand and the verified audit trail.
#
# The hypervisors are libvirt's in-process 'test' driver with a node file
# each (64 CPUs, 256 GiB): nothing to install, and the same libvirt calls
# as qemu:///system (tests/e2e/e2e-vms.sh runs the loop on a real libvirtd
# with QEMU).  Usage: contrib/demo.sh [BUILD_DIR]
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
as "$admin" quota set health --vcpus 64 --memory 256GiB --disk 4TiB --vms 20 --max-lease-days 730 >/dev/null
as "$admin" quota set police --vcpus 32 --memory 128GiB --disk 2TiB --vms 10 --max-lease-days 730 >/dev/null
as "$admin" quota show

say "admin: a token per department and one for cloud operations"
health=$(as "$admin" --json token create --role department --department health --description "卫健委" | secret_of)
police=$(as "$admin" --json token create --role department --department police --description "公安" | secret_of)
ops=$(as "$admin" --json token create --role cloudops --description "cloud operations" | secret_of)
as "$admin" token list

say "departments submit the sample requests (contrib/requests/)"
first_health= first_police= loop=
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
  [ "$f" = "$top/contrib/requests/health-open-data.yaml" ] && loop=$id
  if [ "$dept" = health ] && [ -z "$first_health" ]; then first_health=$id; fi
  if [ "$dept" = police ] && [ -z "$first_police" ]; then first_police=$id; fi
done

[ -n "$first_health" ] && [ -n "$first_police" ] ||
  { echo "demo: contrib/requests/ needs a request from each of health and police" >&2; exit 1; }

# The request the demo takes through the whole loop.
loop_file=$top/contrib/requests/health-open-data.yaml
[ -n "$loop" ] || { echo "demo: $loop_file was not stored" >&2; exit 1; }

say "cloud operations approves request $first_health and rejects request $first_police"
as "$ops" request approve "$first_health" --reason "capacity available; 等保 level checked"
as "$ops" request reject "$first_police" --reason "please use the existing archive cluster"

say "network engineers apply the segment plan (contrib/segments.yaml)"
as "$admin" segment apply "$top/contrib/segments.yaml"

say "cloud operations registers two hypervisors carrying health-dmz"
for hv in hv01 hv02; do
  cat >"$state/$hv.xml" <<XML
<node>
  <cpu><mhz>2600</mhz><model>x86_64</model><active>64</active>
       <nodes>2</nodes><sockets>2</sockets><cores>16</cores><threads>2</threads></cpu>
  <memory>268435456</memory>
  <pool type='dir'><name>vmpool</name><target><path>/var/lib/yunguan/$hv</path></target></pool>
</node>
XML
  as "$ops" host add "$hv" --uri "test://$state/$hv.xml" --pool vmpool --segment health-dmz
done
as "$ops" host list

say "request $first_health is approved but waits: its VMs say why they cannot be placed"
waiting=$(as "$ops" --json vm list --request "$first_health" | sed -n 's/^ *"id": *\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$waiting" ] && as "$ops" vm show "$waiting" | grep -i -E '^ *(VM|State|Waiting)'

say "cloud operations approves request $loop (open-data-portal): provisioned through libvirt"
as "$ops" request approve "$loop" --reason "small public service; 等保 level 2 checked"
i=0
while [ $i -lt 100 ]; do
  running=$(as "$ops" --json vm list --request "$loop" | grep -c '"state": *"running"' || true)
  [ "$running" -ge 2 ] && break
  i=$((i + 1)); sleep 0.2
done
as "$health" vm list
as "$admin" quota show health

say "the department stops using one web server: cloud operations decommissions it"
vm=$(as "$ops" --json vm list --request "$loop" | sed -n 's/^ *"id": *\([0-9]*\).*/\1/p' | head -n 1)
as "$ops" vm decommission "$vm" --reason "open-data portal needs one web server only" --wait 60
as "$ops" vm reclaim "$vm"
as "$admin" quota show health

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
