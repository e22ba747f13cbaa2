#include "weft/core/detail/wake_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "weft/core/detail/portable.h"

#if defined(__linux__)
#include <sys/eventfd.h>
#endif

namespace weft::detail {
namespace {

// weft's own descriptors stay off 0, 1 and 2 (with a standard stream closed, a program writing
// to "stdout" would otherwise write into weft's pipe). Closes `fd` on failure.
int off_standard_streams(int fd) {
  if (fd > STDERR_FILENO) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  const int error = errno;
  close(fd);
  errno = error;
  return moved;
}

[[noreturn]] void fail(int error, const char* what) {
  throw std::system_error(error, std::generic_category(), what);
}

int open_eventfd() {
#if defined(__linux__)
  const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) fail(errno, "weft: eventfd");
  const int moved = off_standard_streams(fd);
  if (moved < 0) fail(errno, "weft: eventfd");
  return moved;
#else
  fail(ENOSYS, "weft: no eventfd on this platform");
#endif
}

// A non-blocking, close-on-exec pipe. pipe2 sets both flags atomically (no other thread's
// fork+exec can inherit the pipe in between) where there is one; Linux takes the macOS path
// here, since on Linux a pipe is made only as the forced fallback, which must test that path.
void open_pipe(int fds[2]) {
#if defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) fail(errno, "weft: pipe");
#else
  if (pipe(fds) != 0) fail(errno, "weft: pipe");
  for (int i = 0; i < 2; ++i) {
    const int status = fcntl(fds[i], F_GETFL);
    if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0 || status < 0 ||
        fcntl(fds[i], F_SETFL, status | O_NONBLOCK) != 0) {
      const int error = errno;
      close(fds[0]);
      close(fds[1]);
      fail(error, "weft: pipe flags");
    }
  }
#endif
  for (int i = 0; i < 2; ++i) {
    fds[i] = off_standard_streams(fds[i]);
    if (fds[i] < 0) {
      const int error = errno;
      close(fds[1 - i]);  // the other end: still open (i == 0), or already moved (i == 1)
      fail(error, "weft: pipe");
    }
  }
}

}  // namespace

WakeFd::Kind WakeFd::default_kind() {
  return supported(Kind::kEventFd) && !force_portable_fallbacks() ? Kind::kEventFd : Kind::kPipe;
}

bool WakeFd::supported(Kind kind) {
#if defined(__linux__)
  (void)kind;
  return true;
#else
  return kind == Kind::kPipe;
#endif
}

WakeFd::WakeFd(Kind kind) : kind_(kind) {
  if (kind_ == Kind::kEventFd) {
    read_fd_ = write_fd_ = open_eventfd();
  } else {
    int fds[2];
    open_pipe(fds);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
  }
}

WakeFd::~WakeFd() {
  if (write_fd_ != read_fd_) close(write_fd_);
  close(read_fd_);
}

void WakeFd::signal() noexcept {
  // Only the first signal after a drain writes; the others find the descriptor readable
  // already (or about to be).
  if (pending_.exchange(true, std::memory_order_acq_rel)) return;
  const int saved_errno = errno;
  // EAGAIN means a full pipe or a saturated counter: readable anyway.
  if (kind_ == Kind::kEventFd) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = write(write_fd_, &one, sizeof one);
  } else {
    const char one = 1;
    [[maybe_unused]] const ssize_t n = write(write_fd_, &one, sizeof one);
  }
  errno = saved_errno;
}

bool WakeFd::drain() noexcept {
  bool was_readable = false;
  if (kind_ == Kind::kEventFd) {
    std::uint64_t count = 0;
    was_readable = read(read_fd_, &count, sizeof count) == sizeof count;
  } else {
    char bytes[64];
    for (;;) {
      const ssize_t n = read(read_fd_, bytes, sizeof bytes);
      if (n > 0) was_readable = true;
      if (n < static_cast<ssize_t>(sizeof bytes) && !(n < 0 && errno == EINTR)) break;
    }
  }
  // Cleared after reading, not before: a signal() racing this drain either wrote before the
  // read (consumed here; its caller's state is looked at after drain() returns) or finds the
  // flag already clear and writes again. Cleared first, a byte written by a signal() that set
  // the flag after the clear could be consumed here, leaving the flag set with nothing to
  // read and every later signal() skipped: a lost wake-up for good. An exchange, not a store,
  // so that the caller also sees what a signal() that skipped its write did before it.
  pending_.exchange(false, std::memory_order_acq_rel);
  return was_readable;
}

}  // namespace weft::detail
