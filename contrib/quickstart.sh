#!/bin/sh
# yunguan quick start on a fresh Debian 12 machine (run as root, or a user
# with sudo), from the top of a source checkout:
#
#   contrib/quickstart.sh demo   install, build, run the main job: yunguand on a
#                                SQLite file, sample requests from two departments,
#                                one approved, one rejected, and where things stand
#   contrib/quickstart.sh test   install, build, run the whole test suite (plain,
#                                then with ASan+UBSan, then make distcheck)
#
# .ci/run runs the second.  Environment: JOBS (parallel make jobs, default:
# number of CPUs), YG_SKIP_INSTALL=1 (packages already there), YG_SKIP_DISTCHECK=1.
set -eu

mode=${1:-}
case $mode in
  demo|test) ;;
  *) echo "usage: contrib/quickstart.sh demo|test" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

step() { printf '\n==> %s\n' "$*"; }

if [ "${YG_SKIP_INSTALL:-0}" != 1 ]; then
  step "installing packages (contrib/install-deps.sh)"
  sh contrib/install-deps.sh
fi

# libvirtd and virtlogd for the VM tests (no init system on these machines:
# start them ourselves, see MACHINE.md).  Harmless when already running.
start_libvirt() {
  command -v libvirtd >/dev/null 2>&1 || return 0
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO mkdir -p /var/run/libvirt /var/log/libvirt /var/lib/libvirt
  pgrep -x virtlogd >/dev/null 2>&1 || $SUDO virtlogd -d || true
  pgrep -x libvirtd >/dev/null 2>&1 || $SUDO libvirtd -d || true
  i=0
  while [ $i -lt 50 ]; do
    if $SUDO virsh -c qemu:///system version >/dev/null 2>&1; then return 0; fi
    i=$((i + 1)); sleep 0.2
  done
  echo "note: libvirtd did not answer; tests that need it will be skipped" >&2
}

build() {  # build DIR [configure args...]
  dir=$1; shift
  mkdir -p "$dir"
  (cd "$dir" && "$top/configure" -q "$@" && make -s -j"$jobs")
}

step "generating the build system (autoreconf -fi)"
autoreconf -fi >/dev/null

if [ "$mode" = demo ]; then
  step "building in build/"
  build "$top/build"
  step "running the demo (contrib/demo.sh)"
  exec sh contrib/demo.sh "$top/build"
fi

start_libvirt

# Counts from automake's test-suite.log of one build.
passed=0 failed=0 skipped=0
count() {
  log=$1/test-suite.log
  [ -f "$log" ] || return 0
  p=$(sed -n 's/^# PASS: *//p' "$log"); f=$(sed -n 's/^# FAIL: *//p' "$log")
  s=$(sed -n 's/^# SKIP: *//p' "$log"); x=$(sed -n 's/^# ERROR: *//p' "$log")
  xp=$(sed -n 's/^# XPASS: *//p' "$log")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${x:-0} + ${xp:-0}))
  skipped=$((skipped + ${s:-0}))
}
status=0
check() {  # check NAME DIR [configure args...]
  name=$1 dir=$2; shift 2
  step "test suite: $name ($dir)"
  build "$dir" "$@"
  if ! (cd "$dir" && make -s -j"$jobs" check); then
    status=1
    # Show what failed, then go on so the summary covers every build.
    for l in $(cd "$dir" && grep -l '^:test-result: \(FAIL\|ERROR\)' $(find . -name '*.trs') 2>/dev/null); do
      echo "---- ${l%.trs}.log"; tail -n 40 "$dir/${l%.trs}.log"
    done
  fi
  count "$dir"
}

check plain "$top/build"
check "asan+ubsan" "$top/build-asan" --enable-asan --enable-ubsan

if [ "${YG_SKIP_DISTCHECK:-0}" != 1 ] && [ -d .git ]; then
  step "make distcheck (every file in git ships; the suite passes from the tarball)"
  if ! (cd "$top/build" && make -s distcheck >"$top/build/distcheck.out" 2>&1); then
    status=1; tail -n 60 "$top/build/distcheck.out"
    echo "distcheck: FAILED"
  else
    echo "distcheck: passed"
  fi
fi

printf '\n%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ] || status=1
exit $status
