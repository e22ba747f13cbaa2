#include "weft/net/udp_socket.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "weft/core/reactor.h"
#include "weft/net/detail/errors.h"
#include "weft/net/detail/socket_calls.h"

namespace weft::net {
namespace {

// MSG_TRUNC as a recvmsg() flag (Linux): the result is the datagram's real size even when it
// did not fit. Elsewhere the result is what was copied, and only msg_flags says it was cut.
#if defined(__linux__)
constexpr int kReceiveFlags = MSG_TRUNC;
#else
constexpr int kReceiveFlags = 0;
#endif

}  // namespace

UdpSocket UdpSocket::bind(const Address& address) {
  const int fd = detail::open_socket(address.domain(), SOCK_DGRAM);
  if (fd < 0) detail::throw_errno(errno, absl::StrCat("weft: socket for ", address.to_string()));
  if (::bind(fd, address.sockaddr(), address.length()) != 0) {
    const int error = errno;
    ::close(fd);
    detail::throw_errno(error, absl::StrCat("weft: bind ", address.to_string()));
  }
  UdpSocket socket;
  socket.socket_ = std::make_unique<detail::Socket>(fd, nullptr, &attempt_receive, &attempt_send);
  return socket;
}

void UdpSocket::connect(const Address& peer) {
  if (!is_open()) detail::throw_errno(EBADF, "weft: connect on a closed UDP socket");
  if (::connect(socket_->fd(), peer.sockaddr(), peer.length()) != 0) {
    detail::throw_errno(errno, absl::StrCat("weft: UDP connect to ", peer.to_string()));
  }
}

Address UdpSocket::local_address() const {
  return is_open() ? Address::local_of(socket_->fd()) : Address();
}

void UdpSocket::close() {
  if (socket_ != nullptr) socket_->close(ECANCELED);
}

bool UdpSocket::attempt_receive(void*, int fd, IoRequest& request) {
  auto& awaiter = static_cast<DatagramAwaiter&>(request);
  ::iovec iov{.iov_base = request.buffer.data(), .iov_len = request.buffer.size()};
  for (;;) {
    ::msghdr message{};
    message.msg_name = &awaiter.from_;
    message.msg_namelen = sizeof awaiter.from_;
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd, &message, kReceiveFlags);
    if (n >= 0) {
      request.transferred = static_cast<std::size_t>(n);
      awaiter.from_length_ = message.msg_namelen;
      awaiter.truncated_ = (message.msg_flags & MSG_TRUNC) != 0 ||
                           static_cast<std::size_t>(n) > request.buffer.size();
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    request.error = errno;
    return true;
  }
}

bool UdpSocket::attempt_send(void*, int fd, IoRequest& request) {
  auto& awaiter = static_cast<DatagramAwaiter&>(request);
  for (;;) {
    const ssize_t n =
        awaiter.to_ != nullptr
            ? ::sendto(fd, request.buffer.data(), request.buffer.size(), detail::kSendFlags,
                       awaiter.to_->sockaddr(), awaiter.to_->length())
            : ::send(fd, request.buffer.data(), request.buffer.size(), detail::kSendFlags);
    if (n >= 0) {
      request.transferred = static_cast<std::size_t>(n);
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    request.error = errno;
    return true;
  }
}

DatagramAwaiter::DatagramAwaiter(detail::Socket* socket, std::span<std::byte> buffer,
                                 const Address* to, bool send)
    : socket_(socket), to_(to), send_(send) {
  this->buffer = buffer;
}

bool DatagramAwaiter::suspend(std::coroutine_handle<> handle, weft::detail::TaskContext& context) {
  error = 0;
  transferred = 0;
  if (!begin(handle, context, &DatagramAwaiter::stop)) return false;  // cancelled scope
  try {
    if (socket_ == nullptr || !socket_->is_open()) {
      error = EBADF;
    } else {
      socket_->bind(*context.reactor);
      on_complete = &DatagramAwaiter::complete;
      if (!(send_ ? socket_->start_write(*this) : socket_->start_read(*this))) return true;
    }
  } catch (...) {
    abort_begin();
    throw;
  }
  abort_begin();
  return false;
}

bool DatagramAwaiter::stop(weft::detail::Suspension& self) {
  auto& awaiter = static_cast<DatagramAwaiter&>(self);
  if (!awaiter.pending) return false;
  return awaiter.send_ ? awaiter.socket_->cancel_write(awaiter)
                       : awaiter.socket_->cancel_read(awaiter);
}

void DatagramAwaiter::complete(IoRequest& request) {
  static_cast<DatagramAwaiter&>(request).resume_now();
}

DatagramAwaiter::~DatagramAwaiter() {
  if (suspended() && pending) stop(*this);
}

Datagram DatagramAwaiter::await_resume() {
  Suspension::await_resume();
  if (error != 0) {
    std::string where = to_ != nullptr ? to_->to_string() : std::string("connected peer");
    if (!send_) {
      where = "(receive)";
      if (socket_ != nullptr && socket_->is_open()) {
        const Address local = Address::local_of(socket_->fd());
        if (local.family() != Address::Family::kNone) where = local.to_string();
      }
    }
    detail::throw_errno(error,
                        absl::StrCat("weft: ", send_ ? "send_to " : "receive_from on ", where));
  }
  Datagram datagram;
  datagram.size = transferred;
  datagram.truncated = truncated_;
  if (!send_) {
    datagram.from =
        Address::from_sockaddr(reinterpret_cast<const ::sockaddr*>(&from_), from_length_);
  } else if (to_ != nullptr) {
    datagram.from = *to_;
  }
  return datagram;
}

}  // namespace weft::net
