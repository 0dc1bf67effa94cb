#!/bin/sh
# What the yunguan client does without a controller: help, usage errors,
# an unreachable controller, configuration file mistakes, oversized
# requests.  Needs top_builddir (and top_srcdir) from the test harness.
set -u

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
YUNGUAN=$top_builddir/cli/yunguan
if [ ! -x "$YUNGUAN" ]; then
    echo "SKIP: $YUNGUAN is not built"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/yunguan-cli-offline.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

# Nothing from the caller's environment may leak in.
unset YUNGUAN_URL YUNGUAN_TOKEN YUNGUAN_TOKEN_FILE YUNGUAN_CONFIG XDG_CONFIG_HOME
HOME=$tmp/home
export HOME
mkdir -p "$HOME"
LC_ALL=C
export LC_ALL

# A port on 127.0.0.1 that nothing listens on: port 1 (tcpmux) is privileged
# and unused on test machines.
DEAD=http://127.0.0.1:1

failures=0
n=0

fail()
{
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# run EXPECTED_STATUS CMD...: run, keep stdout/stderr in $tmp/out, $tmp/err.
run()
{
    expected=$1
    shift
    n=$((n + 1))
    "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -ne "$expected" ]; then
        fail "'$*' exited $status, expected $expected; stderr: $(cat "$tmp/err")"
        return 1
    fi
    return 0
}

# The failure is one line on stderr, starting with "yunguan: ".
one_sentence()
{
    lines=$(wc -l <"$tmp/err")
    if [ "$lines" -ne 1 ]; then
        fail "$1: expected one line on stderr, got $lines: $(cat "$tmp/err")"
    elif ! grep -q '^yunguan: ' "$tmp/err"; then
        fail "$1: stderr does not start with 'yunguan: ': $(cat "$tmp/err")"
    fi
}

expect_err()
{
    if ! grep -q -- "$2" "$tmp/err"; then
        fail "$1: stderr does not contain '$2': $(cat "$tmp/err")"
    fi
}

# --- help and version ------------------------------------------------------
if run 0 "$YUNGUAN" --help; then
    grep -q '^Usage: yunguan' "$tmp/out" || fail "--help prints no usage"
fi
if run 0 "$YUNGUAN" --version; then
    grep -q '^yunguan [0-9]' "$tmp/out" || fail "--version prints no version"
fi
run 0 "$YUNGUAN" help
run 0 "$YUNGUAN" help request submit
# Every command 'yunguan --help' lists, so a new one is covered too.
"$YUNGUAN" --help >"$tmp/commands" 2>&1
commands=$(sed -n 's/^  \([a-z][a-z-]*\) \([a-z][a-z-]*\) .*/\1 \2/p' "$tmp/commands")
n_commands=$(printf '%s\n' "$commands" | grep -c .)
[ "$n_commands" -ge 40 ] || fail "'yunguan --help' lists $n_commands commands, expected at least 40"
for group in $(printf '%s\n' "$commands" | cut -d' ' -f1 | uniq); do
    run 0 "$YUNGUAN" "$group" --help
done
while read -r cmd; do
    # shellcheck disable=SC2086
    if run 0 "$YUNGUAN" $cmd --help; then
        grep -q "^Usage: yunguan \[GLOBAL OPTIONS\] $cmd" "$tmp/out" ||
            fail "'$cmd --help' does not describe '$cmd'"
        [ -s "$tmp/err" ] && fail "'$cmd --help' wrote to stderr: $(cat "$tmp/err")"
    fi
    # -h too, and --help wins over missing operands
    # shellcheck disable=SC2086
    run 0 "$YUNGUAN" $cmd -h
done <<EOF
$commands
EOF
# Help needs no controller, no token and no valid configuration.
run 0 env YUNGUAN_CONFIG=/nonexistent "$YUNGUAN" --server "$DEAD" request submit --help

# --- usage errors: exit 2, one sentence ------------------------------------
run 2 "$YUNGUAN" && one_sentence "no command"
run 2 "$YUNGUAN" frobnicate && one_sentence "unknown command"
run 2 "$YUNGUAN" reqest list && one_sentence "misspelt group" && expect_err "misspelt group" "did you mean 'request'"
run 2 "$YUNGUAN" request && one_sentence "group without a command"
run 2 "$YUNGUAN" request lst && one_sentence "misspelt command" && expect_err "misspelt command" "did you mean 'request list'"
run 2 "$YUNGUAN" --bogus request list && one_sentence "unknown global option"
run 2 "$YUNGUAN" request list --bogus && one_sentence "unknown option" && expect_err "unknown option" "'--bogus'"
run 2 "$YUNGUAN" request list --limit && one_sentence "option without value"
run 2 "$YUNGUAN" request list --limit 0 && one_sentence "limit 0"
run 2 "$YUNGUAN" request list --limit 501 && one_sentence "limit 501"
run 2 "$YUNGUAN" request show && one_sentence "show without id" && expect_err "show without id" "missing ID"
run 2 "$YUNGUAN" request show 12abc && one_sentence "bad id" && expect_err "bad id" "'12abc' is not a request id"
run 2 "$YUNGUAN" request show 1 2 && one_sentence "extra operand"
run 2 "$YUNGUAN" request reject 3 && one_sentence "reject without reason" && expect_err "reject without reason" "reason is required"
run 2 "$YUNGUAN" request submit && one_sentence "submit without file"
run 2 "$YUNGUAN" quota set health --vcpus 4 && one_sentence "quota set incomplete"
run 2 "$YUNGUAN" quota set health --vcpus 4 --memory 256GB --disk 4TiB --vms 2 --max-lease-days 30 &&
    one_sentence "size without binary unit" && expect_err "size without binary unit" "'256GB'"
run 2 "$YUNGUAN" quota set 'Health Dept' --vcpus 4 --memory 256GiB --disk 4TiB --vms 2 --max-lease-days 30 &&
    one_sentence "bad department name"
run 2 "$YUNGUAN" token create && one_sentence "token create without role"
run 2 "$YUNGUAN" token create --role department && one_sentence "department token without department"
run 2 "$YUNGUAN" --token a --token-file b request list && one_sentence "token and token file"
run 2 "$YUNGUAN" --server ftp://example.org --token x request list && one_sentence "bad server URL"

# --- unreachable controller: exit 3, one sentence --------------------------
run 3 "$YUNGUAN" --server "$DEAD" --token secret-token request list &&
    one_sentence "unreachable" &&
    expect_err "unreachable" "^yunguan: cannot reach the controller at $DEAD: Connection refused$"
run 3 env YUNGUAN_URL=$DEAD YUNGUAN_TOKEN=secret-token "$YUNGUAN" audit verify &&
    one_sentence "unreachable via environment"
echo secret-token >"$tmp/token"
run 3 "$YUNGUAN" --server "$DEAD" --token-file "$tmp/token" --json quota show &&
    one_sentence "unreachable with --json"
run 3 "$YUNGUAN" --server "$DEAD" request list && one_sentence "no token" && expect_err "no token" "no token"
run 3 "$YUNGUAN" --server "$DEAD" --token-file "$tmp/missing" request list && one_sentence "missing token file"

# --- configuration file ----------------------------------------------------
cat >"$tmp/bad-key.yaml" <<EOF
server: $DEAD
tokn: secret-token
EOF
run 2 "$YUNGUAN" --config "$tmp/bad-key.yaml" request list &&
    one_sentence "unknown config key" &&
    expect_err "unknown config key" "^yunguan: $tmp/bad-key.yaml:2:1: unknown key 'tokn' (did you mean 'token'?)$"
# The file is checked even when options override it, and from YUNGUAN_CONFIG.
run 2 env YUNGUAN_CONFIG="$tmp/bad-key.yaml" "$YUNGUAN" --server "$DEAD" --token x request list &&
    expect_err "config from YUNGUAN_CONFIG" "bad-key.yaml:2:1:"
printf 'server: [%s]\n' "$DEAD" >"$tmp/bad-value.yaml"
run 2 "$YUNGUAN" --config "$tmp/bad-value.yaml" request list && one_sentence "non-scalar value" &&
    expect_err "non-scalar value" "bad-value.yaml:1:9: 'server' must be a single value"
printf 'server: a\nserver: b\n' >"$tmp/dup.yaml"
run 2 "$YUNGUAN" --config "$tmp/dup.yaml" request list && expect_err "duplicate key" "dup.yaml:2:1: duplicate key 'server'"
printf 'server: "unterminated\n' >"$tmp/syntax.yaml"
run 2 "$YUNGUAN" --config "$tmp/syntax.yaml" request list && one_sentence "YAML syntax" &&
    expect_err "YAML syntax" "syntax.yaml:[0-9]*:[0-9]*: "
run 2 "$YUNGUAN" --config "$tmp/none.yaml" request list && one_sentence "missing --config file"
# A good file is used: server and a token file relative to it.
echo secret-token >"$tmp/relative.token"
printf 'server: %s\ntoken_file: relative.token\n' "$DEAD" >"$tmp/good.yaml"
run 3 "$YUNGUAN" --config "$tmp/good.yaml" request list &&
    expect_err "good config" "cannot reach the controller at $DEAD"
# The default location.
mkdir -p "$HOME/.config/yunguan"
cp "$tmp/bad-key.yaml" "$HOME/.config/yunguan/config.yaml"
run 2 "$YUNGUAN" request list && expect_err "default config" "/.config/yunguan/config.yaml:2:1: unknown key"
rm "$HOME/.config/yunguan/config.yaml"
mkdir -p "$tmp/xdg/yunguan"
cp "$tmp/good.yaml" "$tmp/xdg/yunguan/config.yaml"
cp "$tmp/relative.token" "$tmp/xdg/yunguan/"
run 3 env XDG_CONFIG_HOME="$tmp/xdg" "$YUNGUAN" request list &&
    expect_err "XDG config" "cannot reach the controller at $DEAD"

# --- oversized request refused before anything is sent ---------------------
# (the controller is unreachable: a 1 would mean the file was refused
# locally, a 3 that the client tried to send it)
head -c 65537 /dev/zero | tr '\0' 'a' >"$tmp/big.yaml"
run 1 "$YUNGUAN" --server "$DEAD" --token x request submit "$tmp/big.yaml" &&
    one_sentence "oversized file" && expect_err "oversized file" "larger than 64 KiB"
run 1 "$YUNGUAN" --server "$DEAD" --token x request submit - <"$tmp/big.yaml" &&
    one_sentence "oversized stdin" && expect_err "oversized stdin" "<stdin>"
head -c 65536 /dev/zero | tr '\0' 'a' >"$tmp/limit.yaml"
run 3 "$YUNGUAN" --server "$DEAD" --token x request submit "$tmp/limit.yaml" &&
    expect_err "64 KiB exactly" "cannot reach the controller"
run 1 "$YUNGUAN" --server "$DEAD" --token x request submit "$tmp/none.yaml" && one_sentence "missing request file"
: >"$tmp/empty.yaml"
run 1 "$YUNGUAN" --server "$DEAD" --token x request submit "$tmp/empty.yaml" && one_sentence "empty request file"

echo "$n checks, $failures failed"
[ "$failures" -eq 0 ]
