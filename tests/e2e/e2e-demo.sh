#!/bin/bash
# The main job (contrib/demo.sh, run by 'contrib/quickstart.sh demo') must
# keep working: it is what a new user runs first.  Sample files age (a
# lease date that no longer fits a policy), so it runs in every test pass.
# The demo's store goes to this test's temporary directory.
. "$(dirname "$0")/lib.sh"
yg_setup

out=$YG_TMP/demo.out
TMPDIR=$YG_TMP sh "$top_srcdir/contrib/demo.sh" "$top_builddir" >"$out" 2>&1
demo_rc=$?
check_eq "$demo_rc" 0 "contrib/demo.sh runs to the end (exit 0)"
[ "$demo_rc" = 0 ] || diag_file "$out" 40
check_match "$(cat "$out")" "stored as request 4" "the four sample requests are stored"
check_match "$(cat "$out")" "is now 'approved'" "cloud operations approves"
check_match "$(cat "$out")" "is now 'rejected'" "... and rejects"
check_match "$(cat "$out")" "Waiting: +segment 'health-internal'" "a request that cannot be placed says why"
running=$(grep -cE '^ *[0-9]+ +web-[12] .* running +hv0[12] ' "$out")
check_eq "$running" 2 "the open-data portal's two web VMs run, one on each hypervisor"
check_match "$(cat "$out")" "VM [0-9]+ is decommissioned" "one VM is decommissioned"
check_match "$(cat "$out")" "Freed: +2 vCPU, 4 GiB memory, 40 GiB disk" "... with its reclaim record"
check_match "$(cat "$out")" "health +18 / 64" "... and the quota is credited back (20 → 18 vCPUs)"
check_match "$(tail -n 5 "$out")" "verified|intact|OK" "the audit trail verifies"
yg_finish
