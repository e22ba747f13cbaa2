#include "weft/net/detail/socket_calls.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "weft/core/detail/portable.h"

// Creation flags and accept4: Linux, and the BSDs (FreeBSD 10, NetBSD 8, OpenBSD 5.7 on); not
// macOS.
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
#define WEFT_HAVE_SOCK_FLAGS 1
#else
#define WEFT_HAVE_SOCK_FLAGS 0
#endif

namespace weft::net::detail {
namespace {

// The portable path's second step: flags, then SIGPIPE off. Closes `fd` and returns -1 (errno
// kept) on failure.
int finish_socket(int fd, bool set_flags) {
  if (fd < 0) return fd;
  bool ok = true;
  if (set_flags) {
    const int status = fcntl(fd, F_GETFL);
    ok = fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && status >= 0 &&
         fcntl(fd, F_SETFL, status | O_NONBLOCK) == 0;
  }
#if defined(SO_NOSIGPIPE)
  const int one = 1;
  ok = ok && setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) == 0;
#endif
  if (ok) return fd;
  const int error = errno;
  ::close(fd);
  errno = error;
  return -1;
}

bool use_creation_flags() {
  return WEFT_HAVE_SOCK_FLAGS != 0 && !weft::detail::force_portable_fallbacks();
}

}  // namespace

int open_socket(int domain, int type) {
#if WEFT_HAVE_SOCK_FLAGS
  if (use_creation_flags()) {
    return finish_socket(::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), false);
  }
#endif
  return finish_socket(::socket(domain, type, 0), true);
}

int accept_socket(int listener, ::sockaddr* peer, ::socklen_t* length) {
#if WEFT_HAVE_SOCK_FLAGS
  if (use_creation_flags()) {
    return finish_socket(::accept4(listener, peer, length, SOCK_NONBLOCK | SOCK_CLOEXEC), false);
  }
#endif
  // An accepted socket inherits O_NONBLOCK from the listener on the BSDs and macOS, not on
  // Linux: set it either way.
  return finish_socket(::accept(listener, peer, length), true);
}

}  // namespace weft::net::detail
