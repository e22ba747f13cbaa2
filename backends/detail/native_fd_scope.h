// NativeFdScope: the conditions under which a backend lets its native library open descriptors.
//
// Two states of the process's descriptor table break native libraries in ways no return code
// reports, so a backend wraps each native call that opens descriptors (making a loop,
// re-making it after fork) in a scope that rules them out first:
//
// 1. Exhaustion. Some libraries cannot survive failing to open a descriptor: libevent 2.1
//    calls exit(1) when its signal set-up cannot make a socketpair (evsig_init_ ->
//    event_sock_err), and libuv 1.44 calls abort() when the first loop of the process cannot
//    make its process-wide signal lock pipe (uv__signal_global_init). The scope opens the
//    descriptors the call will need and closes them again just before the call: the kernel
//    hands out the lowest free numbers, so the call gets exactly those. If they cannot be
//    opened, the scope throws std::system_error (EMFILE) and the call is never made. It can
//    also require the numbers to stay below a bound (libevent's select method aborts on a
//    descriptor at or above FD_SETSIZE, glibc's fortified FD_SET).
// 2. Closed standard streams. With fd 0, 1 or 2 closed, the next descriptor opened takes that
//    number: libuv then asserts (fd > STDERR_FILENO) when it closes it, and the program's own
//    printf() would write into the library's wake-up pipe. While the scope lives, every closed
//    standard number is held by /dev/null, so the native call's descriptors land above 2.
//
// Threading: one process-wide lock is held for the scope's life, so two weft backends making
// loops at once cannot take each other's reserved room or placeholders; it is taken and
// released around fork() (pthread_atfork), so a child never inherits it locked. What remains
// is a race weft cannot close: another thread of the program that opens descriptors (not
// through weft) between the scope's release of its reservation and the native call's own
// opens can take the room, and libevent then exits, as it would without weft. A program that
// closes or redirects fd 0-2 on another thread while a reactor is being made can likewise see
// a placeholder taken or its new descriptor closed.
#ifndef WEFT_BACKENDS_DETAIL_NATIVE_FD_SCOPE_H_
#define WEFT_BACKENDS_DETAIL_NATIVE_FD_SCOPE_H_

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <iterator>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

namespace weft::backends::detail {

class NativeFdScope {
 public:
  // Holds fd 0-2 if closed, then checks that `needed` more descriptors can be opened, all below
  // `below`. Throws std::system_error (EMFILE) naming `what` if not: "weft: libevent: cannot make
  // an event_base: ...".
  NativeFdScope(int needed, const std::string& what, int below = INT_MAX) : lock_(mutex()) {
    try {
      hold_standard_fds();
      reserve(needed, what, below);
    } catch (...) {
      release_placeholders();
      throw;
    }
  }
  ~NativeFdScope() { release_placeholders(); }
  NativeFdScope(const NativeFdScope&) = delete;
  NativeFdScope& operator=(const NativeFdScope&) = delete;

  // Only the scope's lock, for a native call that closes descriptors (never throws): a library
  // that closes with a raw syscall (libuv) hides the close from ThreadSanitizer, which then takes
  // the number's reuse by a loop made on another thread for a race unless the two are ordered.
  static std::unique_lock<std::mutex> lock_only() { return std::unique_lock<std::mutex>(mutex()); }

  // The highest number the reservation had (-1 if it was empty): the native call's descriptors
  // will be numbered up to it.
  int highest_reserved() const { return highest_reserved_; }

  // True if fd 0, 1 and 2 are all open: a scope would hold none of them, so a call that needs
  // no reservation can skip it. Cold and out of line: it runs once per loop made, and inlined it
  // changed what GCC inlined elsewhere in a backend's file (Asio's start_op: +27 instructions a
  // readiness hop).
  [[gnu::cold, gnu::noinline]] static bool standard_fds_open() {
    // One poll() asks about all three (a closed number reports POLLNVAL; no events are asked
    // for and nothing is waited for): a system call per reactor instead of three.
    pollfd standard[] = {{STDIN_FILENO, 0, 0}, {STDOUT_FILENO, 0, 0}, {STDERR_FILENO, 0, 0}};
    int ready;
    do {
      ready = poll(standard, 3, 0);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return true;
    if (ready > 0) {
      return std::none_of(std::begin(standard), std::end(standard),
                          [](const pollfd& p) { return (p.revents & POLLNVAL) != 0; });
    }
    for (int fd = 0; fd <= STDERR_FILENO; ++fd) {  // poll() refused (a sandbox): ask each
      if (fcntl(fd, F_GETFD) < 0) return false;
    }
    return true;
  }

 private:
  static std::mutex& mutex() {
    // Never destroyed: reactors may be made during exit. Locked across fork() so that the
    // child's copy is never held by a thread that does not exist there.
    static std::mutex* const instance = [] {
      auto* mu = new std::mutex;
      pthread_atfork([] { mutex().lock(); }, [] { mutex().unlock(); }, [] { mutex().unlock(); });
      return mu;
    }();
    return *instance;
  }

  // A descriptor that keeps a number busy: /dev/null, or (where it cannot be opened, e.g. in a
  // bare chroot) a pipe's read end. -1 with errno set if the table is full.
  static int open_spare() {
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0 || errno == EMFILE || errno == ENFILE) return fd;
    int fds[2];
    if (pipe(fds) != 0) return -1;
    close(fds[1]);
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    return fds[0];
  }

  void hold_standard_fds() {
    if (standard_fds_open()) return;
    // open() takes the lowest free number: keep what lands on 0-2, give back the first above.
    for (;;) {
      const int fd = open_spare();
      if (fd < 0) {
        throw std::system_error(errno, std::generic_category(),
                                "weft: cannot hold the closed standard descriptors");
      }
      if (fd > STDERR_FILENO) {
        close(fd);
        return;
      }
      placeholders_.push_back(fd);
    }
  }

  void reserve(int needed, const std::string& what, int below) {
    absl::InlinedVector<int, 8> reserved;
    auto give_back = [&] {
      for (int fd : reserved) close(fd);
    };
    for (int i = 0; i < needed; ++i) {
      // One open(), then duplicates: cheaper than a path lookup each.
      const int fd = reserved.empty() ? open_spare() : fcntl(reserved.front(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        const int error = errno;
        give_back();
        throw std::system_error(
            error, std::generic_category(),
            absl::StrCat(what, ": it needs ", needed, " free descriptors and fewer are left"));
      }
      reserved.push_back(fd);
      highest_reserved_ = std::max(highest_reserved_, fd);
      if (fd >= below) {
        give_back();
        throw std::system_error(
            EMFILE, std::generic_category(),
            absl::StrCat(what, ": its descriptors would be numbered ", fd, " and above, and it ",
                         "cannot use descriptors from ", below, " on"));
      }
    }
    give_back();  // now: the native call gets these numbers
  }

  void release_placeholders() {
    for (int fd : placeholders_) close(fd);
    placeholders_.clear();
  }

  std::lock_guard<std::mutex> lock_;
  absl::InlinedVector<int, 3> placeholders_;
  int highest_reserved_ = -1;
};

}  // namespace weft::backends::detail

#endif  // WEFT_BACKENDS_DETAIL_NATIVE_FD_SCOPE_H_
