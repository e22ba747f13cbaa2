#!/usr/bin/env bash
# The `weft` program: listings, the demo on every backend x runner it lists, and bad input.
# Usage: weft_cli_test.sh PATH_TO_WEFT
set -uo pipefail
weft=$1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_status() {  # expect_status CODE DESCRIPTION -- command...
  local want=$1 what=$2; shift 3
  local out status
  out=$("$@" 2>&1); status=$?
  [[ $status == "$want" ]] || fail "$what: exit status $status, want $want; output: $out"
  printf '%s' "$out"
}

backends=$("$weft" backends | awk '{print $1}')
runners=$("$weft" runners | awk '{print $1}')
[[ -n $backends ]] || fail "weft backends lists nothing"
[[ -n $runners ]] || fail "weft runners lists nothing"
[[ $("$weft" backends | grep -c '\[default\]') == 1 ]] || fail "backends: not exactly one default"
[[ $("$weft" runners | grep -c '\[default\]') == 1 ]] || fail "runners: not exactly one default"

# The seed scenario, in order, on every pairing.
want=$'Going to sleep...\nHanging out!\nPartying hard!\nI HAVE AWAKENED!'
for backend in $backends; do
  for runner in $runners; do
    out=$("$weft" demo --backend "$backend" --runner "$runner" 2>&1) ||
      fail "demo --backend $backend --runner $runner exited $?: $out"
    got=$(printf '%s\n' "$out" | sed -n 's/^\[ *[0-9.]*s\] //p' |
      grep -E '^(Going to sleep...|Hanging out!|Partying hard!|I HAVE AWAKENED!)$')
    [[ $got == "$want" ]] || fail "demo --backend $backend --runner $runner printed: $out"
    # Between the cells the main thread sleeps 0.5 s: the blocking runner's loop is paused
    # (exactly no ticks); the threaded runner's keeps its 0.1 s ticker going (at least one).
    case $runner in
      blocking) grep -q "printed 0 times.*the loop was paused" <<<"$out" ||
        fail "blocking runner: the loop ran between cells: $out" ;;
      threaded | host) grep -q "the loop kept running" <<<"$out" ||
        fail "$runner runner: the ticker did not run between cells: $out" ;;
    esac
    echo "ok: demo --backend $backend --runner $runner"
  done
done

# Environment fallbacks.
first_backend=$(echo "$backends" | tail -n 1)
out=$(WEFT_BACKEND=$first_backend "$weft" demo) || fail "WEFT_BACKEND=$first_backend demo failed"
grep -q "backend" <<<"$out" || fail "demo printed no header"

# Bad input: status 2 and the valid names listed.
out=$(expect_status 2 "unknown backend" -- "$weft" demo --backend no-such-backend)
for backend in $backends; do grep -q -- "$backend" <<<"$out" || fail "unknown backend: '$backend' not listed: $out"; done
out=$(expect_status 2 "unknown runner" -- "$weft" demo --runner no-such-runner)
for runner in $runners; do grep -q -- "$runner" <<<"$out" || fail "unknown runner: '$runner' not listed: $out"; done
out=$(WEFT_BACKEND=no-such-backend expect_status 2 "bad WEFT_BACKEND" -- "$weft" demo)
grep -q "WEFT_BACKEND" <<<"$out" || fail "bad WEFT_BACKEND not named: $out"
out=$(WEFT_RUNNER=no-such-runner expect_status 2 "bad WEFT_RUNNER" -- "$weft" demo)
grep -q "WEFT_RUNNER" <<<"$out" || fail "bad WEFT_RUNNER not named: $out"
expect_status 2 "unknown flag" -- "$weft" demo --frobnicate >/dev/null
expect_status 2 "unknown command" -- "$weft" frobnicate >/dev/null
expect_status 2 "no command" -- "$weft" >/dev/null
expect_status 2 "--backend without a name" -- "$weft" demo --backend >/dev/null
out=$(expect_status 0 "--help" -- "$weft" demo --help)
grep -q "WEFT_BACKEND" <<<"$out" || fail "--help does not mention WEFT_BACKEND"

((failures == 0)) && echo "all weft CLI checks passed"
exit $((failures > 0))
