#include "weft/net/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/net/detail/errors.h"
#include "weft/net/detail/socket_calls.h"

namespace weft::net {

Listener Listener::bind(const Address& address, ListenOptions options) {
  const int fd = detail::open_socket(address.domain(), SOCK_STREAM);
  if (fd < 0) detail::throw_errno(errno, absl::StrCat("weft: socket for ", address.to_string()));
  const auto fail = [fd, &address](const char* what) {
    const int error = errno;
    ::close(fd);
    detail::throw_errno(error, absl::StrCat("weft: ", what, " ", address.to_string()));
  };
  const int one = 1;
  if (address.is_ip() && options.reuse_address &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    fail("SO_REUSEADDR on");
  }
  if (options.reuse_port) {
    // Linux spreads connections over every socket bound to the port; macOS and the BSDs let
    // them bind but give the connections to one (FreeBSD's SO_REUSEPORT_LB balances).
#if defined(SO_REUSEPORT)
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) fail("SO_REUSEPORT on");
#else
    errno = ENOPROTOOPT;
    fail("SO_REUSEPORT (not on this platform) on");
#endif
  }
  if (::bind(fd, address.sockaddr(), address.length()) != 0) fail("bind");
  if (::listen(fd, options.backlog) != 0) fail("listen on");
  Listener listener;
  listener.socket_ = std::make_unique<detail::Socket>(fd, nullptr, &attempt_accept, &never);
  listener.nodelay_ = options.nodelay;
  return listener;
}

bool Listener::attempt_accept(void*, int fd, IoRequest& request) {
  auto& awaiter = static_cast<AcceptAwaiter&>(request);
  for (;;) {
    awaiter.peer_length_ = sizeof awaiter.peer_;
    const int accepted = detail::accept_socket(fd, reinterpret_cast<::sockaddr*>(&awaiter.peer_),
                                               &awaiter.peer_length_);
    if (accepted >= 0) {
      awaiter.fd_ = accepted;
      return true;
    }
    switch (errno) {
      case EAGAIN:
#if EAGAIN != EWOULDBLOCK
      case EWOULDBLOCK:
#endif
        return false;
      // The connection died in the queue (or a signal came): take the next one.
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
      case EPERM:
        continue;
      default:
        request.error = errno;
        return true;
    }
  }
}

Address Listener::local_address() const {
  return is_open() ? Address::local_of(socket_->fd()) : Address();
}

void Listener::close() {
  if (socket_ != nullptr) socket_->close(ECANCELED);
}

bool AcceptAwaiter::suspend(std::coroutine_handle<> handle, weft::detail::TaskContext& context) {
  error = 0;
  reactor_ = context.reactor;
  if (!begin(handle, context, &AcceptAwaiter::stop)) return false;  // cancelled scope
  try {
    if (socket_ == nullptr || !socket_->is_open()) {
      error = EBADF;
    } else {
      socket_->bind(*context.reactor);
      on_complete = &AcceptAwaiter::complete;
      if (!socket_->start_read(*this)) return true;
    }
  } catch (...) {
    abort_begin();
    throw;
  }
  abort_begin();
  return false;
}

bool AcceptAwaiter::stop(weft::detail::Suspension& self) {
  auto& awaiter = static_cast<AcceptAwaiter&>(self);
  return awaiter.pending && awaiter.socket_->cancel_read(awaiter);
}

void AcceptAwaiter::complete(IoRequest& request) {
  static_cast<AcceptAwaiter&>(request).resume_now();
}

AcceptAwaiter::~AcceptAwaiter() {
  if (suspended() && pending) socket_->cancel_read(*this);
  if (fd_ >= 0) ::close(fd_);  // accepted but never handed out (cancelled meanwhile)
}

Stream AcceptAwaiter::await_resume() {
  Suspension::await_resume();
  if (error != 0) {
    std::string where = "(closed listener)";
    if (socket_ != nullptr && socket_->is_open()) {
      const Address local = Address::local_of(socket_->fd());
      if (local.family() != Address::Family::kNone) where = local.to_string();
    }
    detail::throw_errno(error, absl::StrCat("weft: accept on ", where));
  }
  const int fd = std::exchange(fd_, -1);
  const Address peer =
      Address::from_sockaddr(reinterpret_cast<const ::sockaddr*>(&peer_), peer_length_);
  std::unique_ptr<StreamImpl> impl;
  try {
    impl = transport_for(*reactor_).adopt_stream(*reactor_, fd, peer);
  } catch (...) {
    ::close(fd);
    throw;
  }
  Stream stream(std::move(impl));
  if (nodelay_ && peer.is_ip()) {
    const int one = 1;
    setsockopt(stream.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return stream;
}

}  // namespace weft::net
