#!/bin/sh
# Build a libFuzzer target with clang, ASan and UBSan in a build directory of
# its own and run it for a while.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [TARGET]      defaults: 60 request
#
# BUILD_DIR (default ${TMPDIR:-/tmp}/yunguan-fuzz) holds the build, the
# corpus the run grows (corpus-TARGET/, never the seeds in git) and any crash
# (artifacts/).  Extra libFuzzer options may follow in FUZZ_ARGS.
# A crash found: minimise it (fuzz-TARGET -minimize_crash=1 -runs=10000 FILE),
# fix the bug, and add the input to tests/fuzz/corpus/TARGET/ under a name
# that says what it was (and to tests/fuzz/automake.mk).
set -eu

seconds=${1:-60}
target=${2:-request}
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${BUILD_DIR:-${TMPDIR:-/tmp}/yunguan-fuzz}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

mkdir -p "$builddir"
builddir=$(cd "$builddir" && pwd)

# A VPATH build needs a source tree that is not configured in place; a git
# checkout often is, so build from a snapshot of its files (tracked and new,
# not ignored) taken now.
if git -C "$srcdir" rev-parse --git-dir >/dev/null 2>&1; then
    src=$builddir/src
    mkdir -p "$src"
    (cd "$srcdir" && git ls-files -z -c -o --exclude-standard |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | (cd "$src" && tar xf -)
    if [ ! -x "$src/configure" ]; then
        echo "run-fuzz: autoreconf in $src"
        (cd "$src" && autoreconf -fi >/dev/null 2>&1)
    fi
elif [ -f "$srcdir/config.status" ]; then
    echo "run-fuzz: $srcdir is configured in place; run 'make distclean' there first" >&2
    exit 1
else
    src=$srcdir
fi

mkdir -p "$builddir/build"
cd "$builddir/build"
if [ ! -f Makefile ]; then
    echo "run-fuzz: configuring in $builddir/build"
    CC=clang "$src/configure" --enable-fuzzing --enable-asan --enable-ubsan >configure.out 2>&1 ||
        { tail -20 configure.out; exit 1; }
fi
make -j"$jobs" lib/libyunguan.la "tests/fuzz/fuzz-$target" >make.out 2>&1 ||
    { tail -40 make.out; exit 1; }

corpus=$builddir/corpus-$target
mkdir -p "$corpus" "$builddir/artifacts"
dict=
if [ -f "$src/tests/fuzz/$target.dict" ]; then
    dict=-dict=$src/tests/fuzz/$target.dict
fi
echo "run-fuzz: fuzz-$target for ${seconds}s (corpus $corpus, seeds $src/tests/fuzz/corpus/$target)"
# shellcheck disable=SC2086
exec "./tests/fuzz/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$builddir/artifacts/" $dict ${FUZZ_ARGS:-} \
    "$corpus" "$src/tests/fuzz/corpus/$target"
