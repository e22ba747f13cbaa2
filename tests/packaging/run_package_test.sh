#!/usr/bin/env bash
# The packaging tests (tests/packaging/CMakeLists.txt runs each step as a ctest test):
#   install   install this build into a temporary prefix; check what is there
#   cmake     build tests/packaging/consumer with find_package; run its programs; check the
#             package's version rule and component errors
#   plugins   a program on core and runners only runs on each backend by name (plugins), and
#             maps a backend's native library only once asked for it
#   errors    a plugin for another weft version and one whose library is missing: clear errors,
#             listed as unavailable by `weft backends`
#   make      a plain Makefile consumer through pkg-config
#   glib      the out-of-tree glib backend (examples/glib_backend), built against the prefix
#             alone, installed as a plugin, listed by `weft backends` and run through the
#             conformance suites
# Environment: WEFT_SOURCE_DIR, WEFT_BUILD_DIR, WEFT_WORK_DIR, WEFT_CXX, WEFT_GENERATOR,
# WEFT_CONFORMANCE (the conformance test program), optional WEFT_CXX_LAUNCHER.
set -euo pipefail
step=$1
src=$WEFT_SOURCE_DIR
work=$WEFT_WORK_DIR
prefix=$work/prefix
weft=$prefix/bin/weft
pc_path=$(echo "$prefix"/lib*/pkgconfig "$prefix"/lib/*/pkgconfig | tr ' ' ':')

fail() {
  echo "FAIL ($step): $*" >&2
  exit 1
}

# configure_consumer SOURCE BUILD [cmake args...]
configure_consumer() {
  local source=$1 build=$2
  shift 2
  local launcher=()
  [[ -n ${WEFT_CXX_LAUNCHER:-} ]] && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$WEFT_CXX_LAUNCHER")
  cmake -S "$source" -B "$build" -G "$WEFT_GENERATOR" -DCMAKE_CXX_COMPILER="$WEFT_CXX" \
    -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" "$@"
}

case $step in
install)
  rm -rf "$work"
  mkdir -p "$work"
  cmake --install "$WEFT_BUILD_DIR" --prefix "$prefix" >"$work/install.log"
  libdir=$(dirname "$(find "$prefix" -name 'libweft_core.so' -print -quit)")
  for file in include/weft/version.h include/weft/core/reactor.h include/weft/core/detail \
    include/weft/runners/runner.h include/weft/backends/libuv/libuv_backend.h bin/weft; do
    [[ -e $prefix/$file ]] || fail "not installed: $file"
  done
  [[ -z $(find "$prefix/include" -type f ! -name '*.h') ]] || fail "non-headers under include/"
  for lib in core runners net libuv libevent asio; do
    [[ -e $libdir/libweft_$lib.a ]] || fail "no static libweft_$lib.a"
    soname=$(readelf -d "$libdir/libweft_$lib.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [[ $soname == "libweft_$lib.so.0.2" ]] || fail "libweft_$lib.so: SONAME '$soname'"
    [[ -e $libdir/pkgconfig/weft-$lib.pc ]] || fail "no weft-$lib.pc"
    [[ -e $libdir/weft-0.2/plugins/weft-backend-$lib.so || $lib =~ ^(core|runners|net)$ ]] ||
      fail "no plugin for $lib"
  done
  for file in weftConfig.cmake weftConfigVersion.cmake FindLibuv.cmake FindLibevent.cmake; do
    [[ -e $libdir/cmake/weft/$file ]] || fail "no $file"
  done
  [[ $("$weft" --version) == "weft 0.2.0" ]] || fail "weft --version: $("$weft" --version)"
  "$weft" backends | grep -q '^libuv' || fail "installed weft backends: $("$weft" backends)"
  echo "installed into $prefix"
  ;;
cmake)
  build=$work/consumer
  configure_consumer "$src/tests/packaging/consumer" "$build" >"$work/consumer-configure.log" ||
    { cat "$work/consumer-configure.log"; fail "configure"; }
  cmake --build "$build" || fail "build"
  "$build/linked_consumer" | tee "$work/linked.out"
  grep -q '^linked: libuv' "$work/linked.out" && grep -q '^linked: asio' "$work/linked.out" ||
    fail "linked consumer: backends not registered"
  ! grep -q '^linked: libevent' "$work/linked.out" || fail "libevent linked without being asked"
  grep -q '^libevent plugin: loaded' "$work/linked.out" || fail "linked consumer: no plugin"
  WEFT_PLUGIN_PATH=$(dirname "$(find "$prefix" -name weft-backend-libevent.so)") \
    "$build/static_consumer" | tee "$work/static.out"
  grep -q '^ok' "$work/static.out" || fail "static consumer"
  grep -q "^libevent plugin: refused: .*another copy of weft's core" "$work/static.out" ||
    fail "static consumer: a plugin was not refused"
  # The version rule (0.x: same minor) and the component errors, each a small project.
  probe=$work/probe
  mkdir -p "$probe"
  expect_find() {  # expect_find ok|fail TEXT -- find_package arguments
    local want=$1 text=$2
    shift 3
    printf 'cmake_minimum_required(VERSION 3.25)\nproject(probe LANGUAGES CXX)\nfind_package(%s)\n' \
      "$*" >"$probe/CMakeLists.txt"
    # One build directory for every probe (the compiler is checked once); weft_DIR is given, so
    # that no earlier probe's answer is reused.
    if configure_consumer "$probe" "$probe/build" -Dweft_DIR="$(dirname "$(find "$prefix" -name weftConfig.cmake)")" \
      >"$probe/out.log" 2>&1; then
      [[ $want == ok ]] || fail "find_package($*) should fail"
    else
      [[ $want == fail ]] || { cat "$probe/out.log"; fail "find_package($*) should succeed"; }
      # CMake wraps the message to the terminal's width: compare with the lines joined.
      tr -s ' \n' '  ' <"$probe/out.log" | grep -q -- "$text" ||
        { cat "$probe/out.log"; fail "find_package($*): no '$text'"; }
    fi
  }
  expect_find ok "" -- weft 0.2 CONFIG REQUIRED
  expect_find ok "" -- weft 0.2.0 CONFIG REQUIRED COMPONENTS libevent net
  expect_find fail "0.1" -- weft 0.1 CONFIG REQUIRED
  expect_find fail "0.3" -- weft 0.3 CONFIG REQUIRED
  expect_find fail "not a weft component" -- weft 0.2 CONFIG REQUIRED COMPONENTS libuv gtk
  # A package built without asio (WEFT_WITH_ASIO=OFF): the same files, minus that backend.
  without=$work/without-asio
  rm -rf "$without"
  cp -r "$prefix" "$without"
  config=$(find "$without" -name weftConfig.cmake)
  sed -i 's/^set(weft_BACKENDS "\(.*\)")/set(weft_BACKENDS "libuv;libevent")/' "$config"
  rm -f "$(dirname "$config")"/weft-asio-targets*.cmake
  prefix=$without expect_find fail "built without the 'asio' backend (WEFT_WITH_ASIO=OFF)" \
    -- weft 0.2 CONFIG REQUIRED COMPONENTS libuv asio
  prefix=$without expect_find ok "" -- weft 0.2 CONFIG REQUIRED COMPONENTS libuv \
    OPTIONAL_COMPONENTS asio
  echo "cmake consumer: ok"
  ;;
plugins)
  consumer=$work/consumer/plugins_consumer
  # Each alone, and all in one process: a backend's library is mapped only once asked for.
  for backend in libuv libevent asio; do "$consumer" "$backend" || fail "on $backend"; done
  "$consumer" libuv libevent:poll asio || fail "on all three"
  "$consumer" asio libevent || fail "asio, then libevent"
  # The default backend of a program that links none: the first plugin by preference.
  "$consumer" "" | grep -q "ran on : libuv" || fail "default backend is not libuv"
  ;;
errors)
  consumer=$work/consumer/plugins_consumer
  bad=$work/consumer/bad_plugins
  rm -f "$work"/consumer/libweft_test_gone.so*  # the library missinglib needs
  export WEFT_PLUGIN_PATH=$bad
  "$consumer" --expect-error oldweft "was built for weft 0.1.0, this is weft 0.2.0" ||
    fail "old version plugin"
  "$consumer" --expect-error missinglib "it needs libweft_test_gone.so" ||
    fail "missing library plugin"
  out=$("$weft" backends) || fail "weft backends exited $?"
  echo "$out"
  grep -q '^oldweft  unavailable: .*built for weft 0.1.0' <<<"$out" || fail "oldweft not listed"
  grep -q '^missinglib  unavailable: .*libweft_test_gone.so' <<<"$out" ||
    fail "missinglib not listed"
  grep -q '^libuv' <<<"$out" || fail "linked backends not listed"
  status=0
  err=$("$weft" demo --backend oldweft 2>&1 >/dev/null) || status=$?
  [[ $status == 1 ]] || fail "weft demo --backend oldweft: status $status"
  grep -q "built for weft 0.1.0" <<<"$err" || fail "weft demo --backend oldweft: $err"
  ;;
make)
  build=$work/make
  rm -rf "$build"
  mkdir -p "$build"
  cxx=$WEFT_CXX
  [[ -n ${WEFT_CXX_LAUNCHER:-} ]] && cxx="$WEFT_CXX_LAUNCHER $WEFT_CXX"
  PKG_CONFIG_PATH=$pc_path make -C "$build" -f "$src/tests/packaging/make_consumer/Makefile" \
    CXX="$cxx" || fail "make"
  "$build/plugins_consumer" libuv libevent asio || fail "run"
  ;;
glib)
  build=$work/glib
  plugins=$work/glib-plugins
  rm -rf "$build" "$plugins"
  # Built from its own directory against the installed package only.
  configure_consumer "$src/examples/glib_backend" "$build" -DWEFT_GLIB_PLUGIN_DIR="$plugins" \
    >"$work/glib-configure.log" || { cat "$work/glib-configure.log"; fail "configure"; }
  cmake --build "$build" || fail "build"
  cmake --install "$build" >/dev/null || fail "install"
  export WEFT_PLUGIN_PATH=$plugins
  out=$("$weft" backends)
  echo "$out"
  grep -q '^glib (poll)  \[plugin\]' <<<"$out" || fail "weft backends does not list glib"
  "$work/consumer/plugins_consumer" glib || fail "plugins_consumer on glib"
  # The conformance suites, on glib only.
  export WEFT_TEST_PLUGINS=glib
  listed=$("$WEFT_CONFORMANCE" --gtest_list_tests | grep -c '/glib' || true)
  ((listed > 20)) || fail "the conformance suite has $listed glib cases"
  set -o pipefail
  "$WEFT_CONFORMANCE" --gtest_filter='*/glib:*/glib_*' --gtest_brief=1 |
    tee "$work/glib-conformance.out" || fail "conformance"
  ran=$(sed -n 's/^\[==========\] \([0-9]*\) tests from .* ran.*/\1/p' "$work/glib-conformance.out")
  ((ran == listed)) || fail "$listed glib cases listed, ${ran:-none} ran"
  echo "glib: $listed conformance cases passed"
  ;;
*)
  fail "unknown step"
  ;;
esac
