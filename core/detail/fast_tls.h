// WEFT_FAST_TLS: marks a hot thread_local pointer of weft's libraries "initial-exec".
//
// Why: weft_core and weft_runners are shared libraries, where a plain thread_local is reached
// through a __tls_get_addr call (a function call and a lookup; `perf` put it at 2-3% of a
// spawn and of a blocking run). An initial-exec variable lives in the static TLS block and is
// one %fs-relative load. The price is static TLS that a library loaded later with dlopen() must
// find room for: glibc keeps a surplus for exactly this, and weft's initial-exec variables are
// a few pointers (40 bytes), so weft stays loadable with dlopen (tests/packaging/dlopen_test.cc
// loads it into a program that does not link it). Use it only for small, constant-initialized,
// hot variables.
//
// Threading: n/a (a declaration attribute).
#ifndef WEFT_CORE_DETAIL_FAST_TLS_H_
#define WEFT_CORE_DETAIL_FAST_TLS_H_

#if defined(__ELF__)
#define WEFT_FAST_TLS __attribute__((tls_model("initial-exec")))
#else
#define WEFT_FAST_TLS
#endif

#endif  // WEFT_CORE_DETAIL_FAST_TLS_H_
