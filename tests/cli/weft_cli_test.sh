#!/usr/bin/env bash
# The `weft` program: listings, the demo on every backend x runner it lists, and bad input.
# Usage: weft_cli_test.sh PATH_TO_WEFT
set -uo pipefail
weft=$1
# Failures are counted in a file: checks made inside $(...) (expect_status) run in a subshell,
# where a counter in a variable would be lost.
failure_log=$(mktemp)
trap 'rm -f "$failure_log"' EXIT
fail() { echo "FAIL: $*" | tee -a "$failure_log" >&2; }
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
    got=$(printf '%s\n' "$out" | sed -n 's/^\[ *[0-9.]*s\] \[cell [0-9]*\] //p' |
      grep -E '^(Going to sleep...|Hanging out!|Partying hard!|I HAVE AWAKENED!)$')
    [[ $got == "$want" ]] || fail "demo --backend $backend --runner $runner printed: $out"
    # Every narrated line is tagged with the cell whose work printed it. Cell 1's lines, its
    # timers' and its ticker's say [cell 1], the ticker's even while cell 2 runs (at least one
    # tick falls in cell 2's 0.25 s); only "ticker stopped" is cell 2's.
    narrated=$(printf '%s\n' "$out" | sed -n 's/^\[ *[0-9.]*s\] //p')
    untagged=$(grep -v '^\[cell [12]\] ' <<<"$narrated")
    [[ -z $untagged ]] || fail "demo --runner $runner: lines without a cell tag: $untagged"
    for line in "Going to sleep..." "Hanging out!" "Partying hard!" "I HAVE AWAKENED!"; do
      grep -qxF "[cell 1] $line" <<<"$narrated" || fail "demo --runner $runner: '$line' not tagged [cell 1]: $out"
    done
    grep -qxF "[cell 2] ticker stopped" <<<"$narrated" ||
      fail "demo --runner $runner: 'ticker stopped' not tagged [cell 2]: $out"
    noises_in_cell_2=$(printf '%s\n' "$out" | sed -n '/^-- cell 2$/,$p' | grep -c 'LOUD NOISES!$')
    ((noises_in_cell_2 > 0)) || fail "demo --runner $runner: the ticker printed nothing during cell 2: $out"
    grep 'LOUD NOISES!$' <<<"$narrated" | grep -qvxF '[cell 1] LOUD NOISES!' &&
      fail "demo --runner $runner: a tick not attributed to cell 1: $out"
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

# Virtual time (docs/time.md): the seed's timestamps exact, on every runner. Exact timestamps
# show the clock is virtual; the real time is reported, not asserted (sanitizer builds start
# slowly, and speed is the bench's job).
for runner in $runners; do
  start_ns=$(date +%s%N)
  out=$("$weft" demo --runner "$runner" --clock virtual 2>&1) ||
    fail "demo --runner $runner --clock virtual exited $?: $out"
  elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
  for line in "[ 0.000s] [cell 1] Going to sleep..." "[ 0.100s] [cell 1] Hanging out!" \
      "[ 0.500s] [cell 1] Partying hard!" "[ 1.000s] [cell 1] I HAVE AWAKENED!"; do
    grep -qxF "$line" <<<"$out" || fail "demo --runner $runner --clock virtual: no '$line': $out"
  done
  grep -q "ticker stopped" <<<"$out" || fail "demo --runner $runner --clock virtual: incomplete: $out"
  echo "ok: demo --runner $runner --clock virtual ($elapsed_ms ms)"
done
out=$(expect_status 2 "unknown clock" -- "$weft" demo --clock sundial)
grep -q "steady, virtual" <<<"$out" || fail "unknown clock: names not listed: $out"

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

# Empty names: an empty flag value is an error, never a silent "the default".
for flag in "--backend" "--runner"; do
  out=$(expect_status 2 "$flag ''" -- "$weft" demo "$flag" "")
  grep -q -- "$flag needs a name" <<<"$out" || fail "$flag '': no clear message: $out"
  out=$(expect_status 2 "$flag=" -- "$weft" demo "$flag=")
  grep -q -- "$flag needs a name" <<<"$out" || fail "$flag=: no clear message: $out"
done
# A set but empty variable means unset (the default), as for most programs.
[[ $(WEFT_BACKEND='' "$weft" backends | grep -c '\[default\]') == 1 ]] ||
  fail "WEFT_BACKEND='': not exactly one default"

# A bad $WEFT_BACKEND / $WEFT_RUNNER is an error for the listings too (not a listing with no
# default marked): status 2, the variable named, the valid names listed.
out=$(WEFT_BACKEND=junk expect_status 2 "WEFT_BACKEND=junk backends" -- "$weft" backends)
grep -q "WEFT_BACKEND" <<<"$out" || fail "WEFT_BACKEND=junk backends: variable not named: $out"
for backend in $backends; do grep -q -- "$backend" <<<"$out" || fail "WEFT_BACKEND=junk backends: '$backend' not listed: $out"; done
out=$(WEFT_RUNNER=junk expect_status 2 "WEFT_RUNNER=junk runners" -- "$weft" runners)
grep -q "WEFT_RUNNER" <<<"$out" || fail "WEFT_RUNNER=junk runners: variable not named: $out"
for runner in $runners; do grep -q -- "$runner" <<<"$out" || fail "WEFT_RUNNER=junk runners: '$runner' not listed: $out"; done

# Output that cannot be written is a failure (status 1, a message), never a silent success.
for args in "backends" "runners" "demo --help" "demo"; do
  # shellcheck disable=SC2086
  err=$("$weft" $args 2>&1 >/dev/full); status=$?
  [[ $status == 1 ]] || fail "weft $args >/dev/full: exit status $status, want 1: $err"
  grep -q "^weft: error writing to standard output" <<<"$err" ||
    fail "weft $args >/dev/full: no message: $err"
done
for args in "backends" "demo"; do
  # shellcheck disable=SC2086
  err=$("$weft" $args 2>&1 >&-); status=$?
  [[ $status == 1 ]] || fail "weft $args >&-: exit status $status, want 1: $err"
  grep -q "^weft: cannot write to standard output" <<<"$err" || fail "weft $args >&-: no message: $err"
done
# Closed stdin or stderr: nothing is read from stdin, and a closed stderr only loses messages;
# the demo works (libuv aborts if its descriptors land on 0-2, so weft keeps them taken).
for runner in $runners; do
  out=$("$weft" demo --runner "$runner" 2>&1 <&-) ||
    fail "demo --runner $runner <&-: exit status $?: $out"
  grep -q "ticker stopped" <<<"$out" || fail "demo --runner $runner <&-: incomplete: $out"
  out=$("$weft" demo --runner "$runner" 2>&-) ||
    fail "demo --runner $runner 2>&-: exit status $?: $out"
  grep -q "ticker stopped" <<<"$out" || fail "demo --runner $runner 2>&-: incomplete: $out"
done
out=$(expect_status 2 "unknown runner, stderr closed" -- "$weft" demo --runner no-such-runner 2>&-)

# A failure at run time (here: too few descriptors left for the loop) is one message, status 1,
# with its "weft: " prefix once. The program runs with only the standard streams open below the
# limit (the limit caps the numbers of new descriptors); the smallest limit at which it still
# loads varies with the build, so try a few.
close_inherited_fds() {
  local fd
  for fd in $(ls /proc/self/fd); do
    ((fd > 2 && fd < 100)) && eval "exec $fd>&-"
  done
  return 0
}
tried=""
for limit in 4 5 6 7 8 9 10 12 16; do
  # The redirections are made before the limit is set, so that the shell itself can make them.
  out=$({ close_inherited_fds && ulimit -n "$limit" && "$weft" demo --runner threaded; } 2>&1 >/dev/null)
  status=$?
  # Too few for the program to load; libevent's own fatal error, which exits the process itself
  # (event_errx); sanitizers starved of descriptors reporting errors of their own (UBSan probes
  # memory through a pipe): none of these is what is tested here.
  grep -q -e "^\[err\]" -e "runtime error:" -e "Sanitizer" -e "error while loading" <<<"$out" &&
    continue
  tried=$limit
  [[ $status == 0 ]] && continue
  [[ $status == 1 ]] || fail "demo with $limit descriptors: exit status $status, want 1: $out"
  grep -q "^weft: " <<<"$out" || fail "demo with $limit descriptors: no message: $out"
  grep -q "weft: weft:" <<<"$out" && fail "demo with $limit descriptors: doubled prefix: $out"
  break
done
[[ -n $tried ]] || echo "skipped: no descriptor limit made a run-time failure"

failures=$(wc -l <"$failure_log")
((failures == 0)) && echo "all weft CLI checks passed"
exit $((failures > 0))
