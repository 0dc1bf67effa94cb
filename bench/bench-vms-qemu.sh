#!/bin/bash
# bench/bench-vms-qemu.sh: VMs on a REAL libvirtd with QEMU (TCG, no KVM),
# through yunguand.  Prints figures; never passes or fails on time.
#
#   bench/bench-vms-qemu.sh [VMS]        (default 10)
#
# One request of VMS diskless-ish VMs (64 MiB, a 1 MiB qcow2 volume) is
# approved; the median seconds from approval to 'running' per VM, then
# every VM is decommissioned and the median seconds from the decommission
# to its reclaim record.  The controller's share is the wall time minus
# the time spent inside libvirt calls (yunguand logs each at debug level),
# over the wall time.  Needs root, libvirtd (started when not running),
# qemu-system-x86_64, qemu-img, sqlite3, jq, curl.  Makes and removes its
# own dir pool and isolated network (as tests/e2e/e2e-vms.sh).
# BENCH_LOG=FILE keeps yunguand's debug log (each libvirt call's time).
set -uo pipefail
N=${1:-10}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
top_builddir=${BUILDDIR:-$top_srcdir}
export top_srcdir top_builddir
. "$top_srcdir/tests/e2e/lib.sh"
VIRSH="virsh -q -c qemu:///system"
yg_require virsh qemu-system-x86_64 qemu-img sqlite3 jq curl
libvirt_up() { $VIRSH version >/dev/null 2>&1; }
if ! libvirt_up; then
    mkdir -p /var/run/libvirt /var/log/libvirt /var/lib/libvirt
    PATH=$PATH:/usr/sbin
    virtlogd -d; libvirtd -d
    yg_wait_for 30 libvirt_up || yg_skip "libvirtd could not be started"
fi
yg_setup
chmod 755 "$YG_TMP"
TAG=ygbench$$ BRIDGE=ygbb$$
BRIDGE=${BRIDGE:0:15}
INSTANCE=
cleanup()
{
    local d v
    [ -n "${BENCH_LOG:-}" ] && [ -n "${YG_LOG:-}" ] && cp "$YG_LOG" "$BENCH_LOG"
    yg_cleanup
    if [ -n "$INSTANCE" ]; then
        for d in $($VIRSH list --all --name | grep "^yg-$INSTANCE-vm-"); do
            $VIRSH destroy "$d" >/dev/null 2>&1; $VIRSH undefine "$d" >/dev/null 2>&1
        done
    fi
    for v in $($VIRSH vol-list "$TAG" 2>/dev/null | awk '{print $1}'); do
        $VIRSH vol-delete --pool "$TAG" "$v" >/dev/null 2>&1
    done
    $VIRSH pool-destroy "$TAG" >/dev/null 2>&1; $VIRSH pool-undefine "$TAG" >/dev/null 2>&1
    $VIRSH net-destroy "$TAG" >/dev/null 2>&1; $VIRSH net-undefine "$TAG" >/dev/null 2>&1
}
trap cleanup EXIT
mkdir -p "$YG_TMP/pool"
$VIRSH pool-define-as "$TAG" dir --target "$YG_TMP/pool" >/dev/null && $VIRSH pool-start "$TAG" >/dev/null ||
    { echo "cannot make a storage pool"; exit 1; }
NET4=
for cand in 198.51.100 203.0.113 192.0.2; do
    printf "<network><name>%s</name><bridge name='%s' stp='off'/><dns enable='no'/><ip address='%s.1' prefix='24'/></network>\n" \
        "$TAG" "$BRIDGE" "$cand" >"$YG_TMP/net.xml"
    if $VIRSH net-define "$YG_TMP/net.xml" >/dev/null 2>&1 && $VIRSH net-start "$TAG" >/dev/null 2>&1; then
        NET4=$cand; break
    fi
    $VIRSH net-undefine "$TAG" >/dev/null 2>&1
done
[ -n "$NET4" ] || { echo "cannot make an isolated network"; exit 1; }

DB=$YG_TMP/y.db
printf 'volume_size_override_mib: 1\nshutdown_timeout_seconds: 5\nreconcile_seconds: 600\nvcpu_overcommit: 16\n' >"$YG_TMP/y.yaml"
yg_daemon_start "$DB" --config "$YG_TMP/y.yaml" --log-level debug || exit 1
INSTANCE=$(sqlite3 "$DB" "SELECT value FROM settings WHERE key = 'instance'")
sqlite3 "$DB" "INSERT INTO segments (name, ipv4_prefix, ipv4_gateway, interface, state_since, created_at, updated_at)
  VALUES ('bench', '$NET4.0/24', '$NET4.1', '$BRIDGE', 'x', 'x', 'x')"
yg_set_quota "$ADMIN" health 64 16GiB 500GiB 100 >/dev/null
yg "$ADMIN" host add local --uri qemu:///system --pool "$TAG" --segment bench
host_up() { yg "$ADMIN" --json host show local; [ "$(jqr .host.status)" = up ]; }
yg_wait_for 30 host_up || { echo "host not up"; exit 1; }
cat >"$YG_TMP/req.yaml" <<EOF
apiVersion: yunguan/v1
kind: ResourceRequest
metadata: {name: bench, department: health}
spec:
  purpose: benchmark
  securityLevel: 2
  lease: {until: $(yg_date_in 30)}
  network: {segment: bench, ipv6: off}
  vms:
    - {name: vm, count: $N, vcpus: 1, memory: 64MiB, disk: 1GiB, image: none}
EOF
yg "$ADMIN" --json request submit "$YG_TMP/req.yaml"
REQ=$(jqr .request.id)
count_state() { sqlite3 "$DB" "SELECT count(*) FROM vms WHERE state = '$1' AND step IS NULL"; }
all_state() { [ "$(count_state "$1")" = "$N" ]; }

log_mark=$(wc -l <"$YG_LOG")
t0=$(date +%s.%N)
yg "$ADMIN" request approve "$REQ"
yg_wait_for 600 all_state running || { echo "not every VM ran"; exit 1; }
t1=$(date +%s.%N)
libvirt_up_ms=$(tail -n +"$((log_mark + 1))" "$YG_LOG" | sed -n 's/.*libvirt time: .* took \([0-9.]*\) ms/\1/p' | awk '{s+=$1} END {print s+0}')

# Per VM: from the approval (its vm.create) to its vm.running, from the audit trail.
per_vm_up=$(sqlite3 "$DB" "SELECT (julianday(r.at) - julianday(c.at)) * 86400 FROM audit c JOIN audit r
  ON r.object = c.object AND r.action = 'vm.running' WHERE c.action = 'vm.create' ORDER BY 1")

log_mark=$(wc -l <"$YG_LOG")
t2=$(date +%s.%N)
for V in $(sqlite3 "$DB" "SELECT id FROM vms"); do
    api POST "/api/v1/vms/$V/decommission" "$ADMIN" -d '{}'
done
yg_wait_for 600 all_state decommissioned || { echo "not every VM was reclaimed"; exit 1; }
t3=$(date +%s.%N)
libvirt_down_ms=$(tail -n +"$((log_mark + 1))" "$YG_LOG" | sed -n 's/.*libvirt time: .* took \([0-9.]*\) ms/\1/p' | awk '{s+=$1} END {print s+0}')
per_vm_down=$(sqlite3 "$DB" "SELECT (julianday(r.at) - julianday(c.at)) * 86400 FROM audit c JOIN audit r
  ON r.object = c.object AND r.action = 'vm.reclaimed' WHERE c.action = 'vm.decommission' ORDER BY 1")
wipes=$(sqlite3 "$DB" "SELECT group_concat(DISTINCT wipe_method) FROM reclaims")

# 100 * (wall - libvirt) / wall, not below 0 (the log's clock is coarser).
share() { echo "x = 100 * ($1 - $2 / 1000) / $1; if (x < 0) x = 0; x" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }
up_wall=$(echo "$t1 - $t0" | bc -l)
down_wall=$(echo "$t3 - $t2" | bc -l)
printf 'real QEMU (TCG) on qemu:///system, %d VMs of 64 MiB with a 1 MiB qcow2 volume, one host\n' "$N"
printf '  approval -> running:       median %.2f s per VM (min %.2f, max %.2f); all %d in %.2f s\n' \
    "$(echo "$per_vm_up" | median)" "$(echo "$per_vm_up" | head -n1)" "$(echo "$per_vm_up" | tail -n1)" "$N" "$up_wall"
printf '    time inside libvirt calls: %.2f s; the controller'"'"'s share of the wall time: %.1f %%\n' \
    "$(echo "$libvirt_up_ms / 1000" | bc -l)" "$(share "$up_wall" "$libvirt_up_ms")"
printf '  decommission -> reclaimed: median %.2f s per VM (min %.2f, max %.2f); all %d in %.2f s (wipe: %s)\n' \
    "$(echo "$per_vm_down" | median)" "$(echo "$per_vm_down" | head -n1)" "$(echo "$per_vm_down" | tail -n1)" "$N" \
    "$down_wall" "$wipes"
printf '    time inside libvirt calls: %.2f s; the controller'"'"'s share of the wall time: %.1f %%\n' \
    "$(echo "$libvirt_down_ms / 1000" | bc -l)" "$(share "$down_wall" "$libvirt_down_ms")"
