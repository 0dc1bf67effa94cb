#!/bin/bash
# VMs through a REAL libvirtd with QEMU (TCG, no KVM): submit, approve, the
# VMs running (checked with virsh), stop/start, a department's decommission
# approved by cloud operations (domain and volume gone in virsh, addresses
# released, quota back, reclaim record), lease expiry with a shifted clock,
# and kill -9 of yunguand after each libvirt call of the journalled steps
# ('build', 'wipe', 'remove') before their record, then a
# restart: no orphan domain, no orphan volume, nothing stuck.
#
# The test makes its own 'dir' storage pool in a temp directory and an
# isolated libvirt network (its bridge is libvirt's, made and removed with
# the network; a free documentation /24 and 2001:db8:e2e::/64),
# and removes every domain, volume, pool and network it made.
#
# Skips (exit 77) without libvirtd, virsh or qemu-system-x86_64, or when
# libvirtd cannot be started.
. "$(dirname "$0")/lib.sh"

yg_require virsh qemu-system-x86_64 sqlite3 curl jq
for p in libvirtd virtlogd; do
    command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || yg_skip "'$p' is not installed; this test needs a real libvirtd"
done
[ "$(id -u)" = 0 ] || yg_skip "this test runs libvirtd's qemu:///system and must run as root"
VIRSH="virsh -q -c qemu:///system"

libvirt_up() { $VIRSH version >/dev/null 2>&1; }
if ! libvirt_up; then
    mkdir -p /var/run/libvirt /var/log/libvirt /var/lib/libvirt
    PATH=$PATH:/usr/sbin
    virtlogd -d >/dev/null 2>&1
    libvirtd -d >/dev/null 2>&1
    yg_wait_for 30 libvirt_up || yg_skip "libvirtd could not be started (virsh -c qemu:///system version fails)"
fi

yg_setup
chmod 755 "$YG_TMP"      # qemu runs as libvirt-qemu and opens the volumes below
TAG=yge2e$$
POOL=$TAG
NET=$TAG
BRIDGE=ygbr$$
BRIDGE=${BRIDGE:0:15}
INSTANCE=

libvirt_cleanup()
{
    local d v
    if [ -n "$INSTANCE" ]; then
        for d in $($VIRSH list --all --name 2>/dev/null | grep "^yg-$INSTANCE-vm-"); do
            $VIRSH destroy "$d" >/dev/null 2>&1
            $VIRSH undefine "$d" --nvram >/dev/null 2>&1 || $VIRSH undefine "$d" >/dev/null 2>&1
        done
    fi
    for v in $($VIRSH vol-list "$POOL" 2>/dev/null | awk '{print $1}'); do
        $VIRSH vol-delete --pool "$POOL" "$v" >/dev/null 2>&1
    done
    $VIRSH pool-destroy "$POOL" >/dev/null 2>&1
    $VIRSH pool-undefine "$POOL" >/dev/null 2>&1
    $VIRSH net-destroy "$NET" >/dev/null 2>&1
    $VIRSH net-undefine "$NET" >/dev/null 2>&1
}
all_cleanup() { yg_cleanup; libvirt_cleanup; }
trap all_cleanup EXIT

# ---- the host: a dir pool and an isolated network ----
mkdir -p "$YG_TMP/pool"
$VIRSH pool-define-as "$POOL" dir --target "$YG_TMP/pool" >/dev/null &&
    $VIRSH pool-start "$POOL" >/dev/null || { echo "ERROR: cannot make storage pool $POOL"; exit 99; }
# The first documentation range this machine does not use already.
NET4=
for cand in 198.51.100 203.0.113 192.0.2; do
    cat >"$YG_TMP/net.xml" <<EOF
<network>
  <name>$NET</name>
  <bridge name='$BRIDGE' stp='off'/>
  <dns enable='no'/>
  <ip address='$cand.1' prefix='24'/>
  <ip family='ipv6' address='2001:db8:e2e::1' prefix='64'/>
</network>
EOF
    if $VIRSH net-define "$YG_TMP/net.xml" >/dev/null 2>&1 && $VIRSH net-start "$NET" >/dev/null 2>&1; then
        NET4=$cand
        break
    fi
    $VIRSH net-undefine "$NET" >/dev/null 2>&1
done
[ -n "$NET4" ] || yg_skip "libvirt cannot make an isolated network here (every documentation range is in use)"

DB=$YG_TMP/y.db
cat >"$YG_TMP/yunguand.yaml" <<EOF
volume_size_override_mib: 1
shutdown_timeout_seconds: 3
reconcile_seconds: 2
decommission_approval: true
lease_notice_days: 14
lease_grace_days: 7
EOF
CONF=(--config "$YG_TMP/yunguand.yaml")
yg_daemon_start "$DB" "${CONF[@]}" || { yg_finish; }
INSTANCE=$(sqlite3 "$DB" "SELECT value FROM settings WHERE key = 'instance'")

sqlite3 "$DB" "INSERT INTO segments (name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, interface,
  state_since, created_at, updated_at) VALUES ('health-dmz', '$NET4.0/24', '$NET4.1',
  '2001:db8:e2e::/64', '2001:db8:e2e::1', '$BRIDGE', 'x', 'x', 'x')"
yg_set_quota "$ADMIN" health 16 8GiB 200GiB 10
HEALTH=$(yg_new_token "$ADMIN" department health)
OPS=$(yg_new_token "$ADMIN" cloudops)

yg "$OPS" host add local --uri qemu:///system --pool "$POOL" --segment health-dmz
check_rc 0 "host add: qemu:///system with pool $POOL"
host_up() { yg "$OPS" --json host show local; [ "$(jqr .host.status)" = up ]; }
check "host 'local' is up, capacity read from libvirt" yg_wait_for 30 host_up
check_match "$(jqr .host.capacity.cpus)" '^[1-9][0-9]*$' "host capacity has CPUs"

# ---- submit, approve, running ----
LEASE=$(yg_date_in 60)
request_file()   # NAME COUNT
{
    local f=$YG_TMP/req-$1.yaml
    cat >"$f" <<EOF
apiVersion: yunguan/v1
kind: ResourceRequest
metadata: {name: $1, department: health}
spec:
  purpose: e2e VMs through libvirt
  securityLevel: 2
  lease: {until: $LEASE}
  network: {segment: health-dmz, ipv6: preferred}
  vms:
    - {name: web, count: $2, vcpus: 1, memory: 64MiB, disk: 1GiB, image: none}
EOF
    printf '%s\n' "$f"
}
yg "$HEALTH" --json request submit "$(request_file booking 2)"
check_rc 0 "department submits a request for 2 VMs"
REQ=$(jqr .request.id)
yg "$OPS" request approve "$REQ"
check_rc 0 "cloud operations approves it"

vm_state() { yg "$OPS" --json vm show "$1"; jqr .vm.state; }
vms_of() { yg "$OPS" --json vm list --request "$1" --all; jqr '.items[].id'; }
all_in() # REQ STATE
{
    local id
    for id in $(vms_of "$1"); do
        [ "$(vm_state "$id")" = "$2" ] || return 1
    done
    [ -n "$(vms_of "$1")" ]
}
check "both VMs reach 'running'" yg_wait_for 90 all_in "$REQ" running ||
    { yg "$OPS" --json vm list --all; jq -c '.items[] | {id, state, step, error}' "$YG_OUT" | sed 's/^/#   /'; }
VMS=$(vms_of "$REQ")
VM1=$(echo $VMS | cut -d' ' -f1)
VM2=$(echo $VMS | cut -d' ' -f2)
yg "$OPS" --json vm show "$VM1"
DOM1=$(jqr .vm.domain)
V4_1=$(jqr .vm.ipv4)
check_eq "$($VIRSH domstate "$DOM1" 2>&1 | head -n1)" running "virsh: $DOM1 is running"
check_match "$($VIRSH domiflist "$DOM1" 2>&1)" "$BRIDGE" "virsh: its NIC is on the segment's bridge"
check_match "$($VIRSH vol-list "$POOL" 2>&1)" "$DOM1.qcow2" "virsh: its qcow2 volume is in the pool"
check_match "$V4_1" "^$NET4\\.[0-9]+\$" "VM has an IPv4 address from the segment"
check_match "$(jqr .vm.ipv6)" '^2001:db8:e2e::?' "VM has an IPv6 address from the segment"
yg "$OPS" --json request show "$REQ"
check_eq "$(jqr .request.state)" active "the request is active"
yg "$ADMIN" --json quota show health
check_eq "$(jqr .quota.usage.vms)" 2 "quota: 2 VMs in use"

# Another department neither sees nor touches these VMs.
yg_set_quota "$ADMIN" police 4 4GiB 40GiB 2
POLICE=$(yg_new_token "$ADMIN" department police)
yg "$POLICE" vm stop "$VM1"
check_rc 1 "police cannot stop health's VM"
check_match "$(cat "$YG_ERR")" "VM $VM1 does not exist" "... and is told it does not exist"
yg "$POLICE" --json vm list
check_eq "$(jqr '.items | length')" 0 "police lists no VMs"

# ---- stop and start ----
yg "$HEALTH" vm stop "$VM1" --wait 60
check_rc 0 "department stops its VM"
check_eq "$($VIRSH domstate "$DOM1" 2>&1 | head -n1)" "shut off" "virsh: shut off"
yg "$HEALTH" vm start "$VM1" --wait 60
check_rc 0 "department starts it again"
check_eq "$($VIRSH domstate "$DOM1" 2>&1 | head -n1)" running "virsh: running again"

# A VM stopped behind the controller's back: the lifecycle event says so.
$VIRSH destroy "$DOM1" >/dev/null
check "a domain destroyed in virsh becomes 'stopped' (libvirt event)" yg_wait_for 20 \
    sh -c "[ \"\$($YUNGUAN --server $YG_URL --token $OPS --json vm show $VM1 | jq -r .vm.state)\" = stopped ]"
yg "$OPS" vm start "$VM1" --wait 60

# ---- decommission: the department asks, cloud operations approves ----
yg "$HEALTH" --json vm decommission "$VM1" --reason "no longer needed"
check_rc 0 "department asks to decommission"
DR=$(jqr .decommission_request.id)
check_match "$DR" '^[0-9]+$' "a decommission request waits for cloud operations"
check_eq "$(vm_state "$VM1")" running "the VM still runs until approval"
yg "$OPS" vm approve-decommission "$DR"
check_rc 0 "cloud operations approves"
check "the VM is decommissioned" yg_wait_for 60 sh -c "[ \"\$($YUNGUAN --server $YG_URL --token $OPS --json vm show $VM1 | jq -r .vm.state)\" = decommissioned ]"
check_no_match "$($VIRSH list --all --name)" "^$DOM1\$" "virsh: the domain is gone"
check_no_match "$($VIRSH vol-list "$POOL")" "$DOM1" "virsh: the volume is gone"
yg "$HEALTH" --json vm reclaim "$VM1"
check_rc 0 "the department reads the reclaim record"
check_eq "$(jqr .reclaim.wipe_method)" zero "the volume was wiped with zeros before deletion"
check_eq "$(jqr .reclaim.freed.addresses.ipv4)" "$V4_1" "the reclaim record names the released IPv4 address"
check_eq "$(jqr .reclaim.approved_by)" "$(sqlite3 "$DB" "SELECT 'token:' || id FROM tokens WHERE role = 'cloudops'")" \
    "approved by cloud operations"
yg "$OPS" --json vm show "$VM1"
check_eq "$(jqr .vm.ipv4)" null "the address is released"
yg "$ADMIN" --json quota show health
check_eq "$(jqr .quota.usage.vms)" 1 "quota: back to 1 VM in use"

# ---- lease expiry with a shifted clock (test-only YUNGUAN_TEST_NOW_OFFSET) ----
yg "$ADMIN" vm lease-policy health --notice-days 30 --grace-days 2
check_rc 0 "admin sets the lease policy of health"
restart_at() # DAYS_FROM_NOW
{
    yg_daemon_stop
    YUNGUAN_TEST_NOW_OFFSET=$(($1 * 86400)) yg_daemon_start "$DB" "${CONF[@]}"
}
lease_state() { yg "$OPS" --json vm show "$VM2"; jqr .vm.lease.state; }
restart_at 40                              # 20 days before the lease ends
check "a lease notice 30 days ahead" yg_wait_for 30 sh -c "[ \"\$($YUNGUAN --server \$0 --token $OPS --json vm show $VM2 | jq -r .vm.lease.state)\" = notice ]" "$YG_URL"
yg "$HEALTH" vm list
check_match "$(cat "$YG_OUT")" "Lease notice for VM $VM2" "'yunguan vm list' shows the notice"
restart_at 61                              # the day after it ended
check "at expiry the VM is stopped" yg_wait_for 60 sh -c "[ \"\$($YUNGUAN --server \$0 --token $OPS --json vm show $VM2 | jq -r .vm.state)\" = stopped ]" "$YG_URL"
DOM2=$(sqlite3 "$DB" "SELECT domain_name FROM vms WHERE id = $VM2")
check_eq "$($VIRSH domstate "$DOM2" 2>&1 | head -n1)" "shut off" "virsh: the expired VM is shut off"
check_eq "$(lease_state)" expired "lease state 'expired'"
restart_at 64                              # past the 2-day grace period
check "after the grace period the VM is decommissioned" yg_wait_for 60 sh -c "[ \"\$($YUNGUAN --server \$0 --token $OPS --json vm show $VM2 | jq -r .vm.state)\" = decommissioned ]" "$YG_URL"
check_no_match "$($VIRSH list --all --name)" "^$DOM2\$" "virsh: the expired domain is gone"
yg "$OPS" --json request show "$REQ"
check_eq "$(jqr .request.state)" closed "the request closed with its last VM"
audit=$(sqlite3 "$DB" "SELECT group_concat(action, ' ') FROM audit WHERE object = 'vm/$VM2'")
check_match "$audit" 'vm.lease-notice.*vm.lease-expired.*vm.stopped.*vm.decommission.*vm.reclaimed' \
    "every lease step is in the audit trail"
restart_at 0

# ---- kill -9 between a libvirt call and its record, then restart ----
# The journal records intents: 'build' (volume, define, start), 'shutdown'
# (the shutdown and the wipe, whose method is recorded before the volume
# goes) and 'remove' (delete-volume, undefine) are one step each.  A kill
# after any call of an intent leaves the intent journalled; the restart
# runs it again from its first call.
n=0
for call in volume define start wipe delete-volume undefine; do
    n=$((n + 1))
    case $call in
    volume|define|start) journal=build want=running ;;
    wipe) journal=shutdown want=decommissioned ;;
    *) journal=remove want=decommissioned ;;
    esac
    yg "$HEALTH" --json request submit "$(request_file crash$n 1)"
    R=$(jqr .request.id)
    if [ "$want" = decommissioned ]; then
        yg "$OPS" request approve "$R"
        yg_wait_for 90 all_in "$R" running
        V=$(vms_of "$R")
        yg_daemon_stop
        YUNGUAN_TEST_KILL_AFTER_STEP=$call yg_daemon_start "$DB" "${CONF[@]}"
        api POST "/api/v1/vms/$V/decommission" "$OPS" -d '{}'
    else
        yg_daemon_stop
        YUNGUAN_TEST_KILL_AFTER_STEP=$call yg_daemon_start "$DB" "${CONF[@]}"
        yg "$OPS" request approve "$R"
    fi
    PID=$YG_PID
    check "yunguand dies (SIGKILL) right after the libvirt call '$call'" yg_wait_for 90 yg__dead "$PID"
    wait "$PID" 2>/dev/null
    V=$(sqlite3 "$DB" "SELECT id FROM vms WHERE request_id = $R")
    D=$(sqlite3 "$DB" "SELECT domain_name FROM vms WHERE id = $V")
    check_eq "$(sqlite3 "$DB" "SELECT step FROM vms WHERE id = $V")" "$journal" \
        "the journal still says '$journal' is to run (its call '$call' ran, unrecorded)"
    yg_daemon_start "$DB" "${CONF[@]}"
    check "after the restart the VM ends '$want'" yg_wait_for 90 all_in "$R" "$want"
    ndom=$($VIRSH list --all --name | grep -c "^$D\$")
    nvol=$($VIRSH vol-list "$POOL" | grep -c "$D.qcow2")
    if [ "$want" = running ]; then
        check_eq "$ndom/$nvol" 1/1 "exactly one domain and one volume for VM $V"
    else
        check_eq "$ndom/$nvol" 0/0 "no domain and no volume left for VM $V"
        check_eq "$(sqlite3 "$DB" "SELECT wipe_method FROM reclaims WHERE vm_id = $V")" zero \
            "the reclaim record names the wipe that was done (zero)"
    fi
done

# ---- decommission everything: nothing of this store is left in libvirt ----
for V in $(sqlite3 "$DB" "SELECT id FROM vms WHERE state NOT IN ('decommissioned')"); do
    api POST "/api/v1/vms/$V/decommission" "$OPS" -d '{}'
done
none_left() { [ "$(sqlite3 "$DB" "SELECT count(*) FROM vms WHERE state <> 'decommissioned'")" = 0 ]; }
check "every VM decommissioned" yg_wait_for 90 none_left
check_eq "$($VIRSH list --all --name | grep -c "^yg-$INSTANCE-vm-")" 0 "virsh list --all: no domain of this store"
check_eq "$($VIRSH vol-list "$POOL" | grep -c "yg-$INSTANCE-vm-")" 0 "virsh vol-list: no volume of this store"
check_eq "$(sqlite3 "$DB" "SELECT count(*) FROM vms WHERE step IS NOT NULL OR state = 'provisioning'")" 0 \
    "no VM stuck mid-journal"
check_eq "$(sqlite3 "$DB" "SELECT count(*) FROM vms v WHERE NOT EXISTS (SELECT 1 FROM reclaims r WHERE r.vm_id = v.id)")" 0 \
    "one reclaim record per VM"
yg "$ADMIN" --json quota show health
check_eq "$(jqr .quota.usage.vcpus)/$(jqr .quota.usage.vms)" 0/0 "quota fully credited"
api GET /api/v1/drift "$OPS"
check_eq "$(jq -r '[.items[] | select(.ours == true or .kind == "vm-gone")] | length' "$YG_BODY")" 0 \
    "drift: no orphan of ours, no VM gone"
yg "$ADMIN" --json audit verify
check_eq "$(jqr .ok)" true "the audit trail verifies"
yg_finish
