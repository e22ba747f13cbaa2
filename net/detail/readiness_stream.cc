#include "weft/net/detail/readiness_stream.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"
#include "weft/net/detail/errors.h"
#include "weft/net/detail/socket_calls.h"

namespace weft::net::detail {

void throw_errno(int error, std::string_view what) {
  throw std::system_error(error, std::system_category(), std::string(what));
}

void make_non_blocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    throw_errno(errno, "weft: fcntl(O_NONBLOCK)");
  }
  const int fd_flags = fcntl(fd, F_GETFD);
  if (fd_flags >= 0 && (fd_flags & FD_CLOEXEC) == 0) fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC);
}

ReadinessStream::ReadinessStream(Reactor& reactor, int fd, const Address& peer)
    : reactor_(&reactor), peer_(peer), socket_(fd, this, &attempt_read, &attempt_write) {
  socket_.bind(reactor);
}

bool ReadinessStream::attempt_read(void* owner, int fd, IoRequest& request) {
  auto* self = static_cast<ReadinessStream*>(owner);
  for (;;) {
    // read(), not recv(): the same on a socket, and cheaper under some kernels' socket layers
    // (gVisor's recvfrom path costs ~3x read's for a 64 KiB copy). Writes need send() for
    // MSG_NOSIGNAL.
    const ssize_t n = ::read(fd, request.buffer.data(), request.buffer.size());
    if (n > 0) {
      request.transferred = static_cast<std::size_t>(n);
      self->drained_ = request.transferred < request.buffer.size();
      return true;
    }
    if (n == 0) {
      self->eof_ = true;
      request.transferred = 0;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    request.error = errno;
    return true;
  }
}

bool ReadinessStream::attempt_write(void* owner, int fd, IoRequest& request) {
  auto* self = static_cast<ReadinessStream*>(owner);
  if (self->connecting_) {
    // Writable after a connect in progress: the connect finished, one way or the other.
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error == EINPROGRESS || error == EALREADY) return false;
    self->connecting_ = false;
    request.error = error;
    return true;
  }
  while (request.transferred < request.buffer.size()) {
    // kSendFlags (MSG_NOSIGNAL, or SO_NOSIGPIPE on the socket): a vanished peer is an EPIPE
    // error here, never a SIGPIPE for the process.
    const ssize_t n = ::send(fd, request.buffer.data() + request.transferred,
                             request.buffer.size() - request.transferred, kSendFlags);
    if (n >= 0) {
      request.transferred += static_cast<std::size_t>(n);
      self->drained_ = true;  // see drained_: the answer to what was sent comes later
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    request.error = errno;
    return true;
  }
  return true;
}

bool ReadinessStream::start_connect(const Address& address, IoRequest& request) {
  request.transferred = 0;
  request.error = 0;
  for (;;) {
    if (::connect(socket_.fd(), address.sockaddr(), address.length()) == 0) {
      peer_ = address;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EINPROGRESS || errno == EAGAIN) break;  // EAGAIN: a Unix socket's full backlog
    request.error = errno;
    return true;
  }
  peer_ = address;
  connecting_ = true;
  socket_.start_write_after_wait(request);
  return false;
}

bool ReadinessStream::start_read(IoRequest& request) {
  request.transferred = 0;
  request.error = 0;
  if (eof_) return true;  // sticky end of stream: no system call
  return socket_.start_read(request, /*try_first=*/!drained_);
}

bool ReadinessStream::start_write(IoRequest& request) {
  request.transferred = 0;
  request.error = 0;
  return socket_.start_write(request);
}

void ReadinessStream::shutdown_write() {
  if (!socket_.is_open()) throw_errno(EBADF, "weft: shutdown_write on a closed stream");
  if (socket_.write_pending()) {
    throw UsageError("weft: shutdown_write while a write_all is pending on the stream");
  }
  if (::shutdown(socket_.fd(), SHUT_WR) != 0 && errno != ENOTCONN) {
    throw_errno(errno, absl::StrCat("weft: shutdown_write to ", peer_address().to_string()));
  }
}

void ReadinessStream::close(bool abortive) {
  if (abortive && socket_.is_open()) {
    // SO_LINGER with a zero timeout makes close() send RST and drop unsent data.
    const ::linger linger{.l_onoff = 1, .l_linger = 0};
    setsockopt(socket_.fd(), SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
  }
  socket_.close(ECANCELED);
}

Address ReadinessStream::peer_address() const {
  if (peer_.family() == Address::Family::kNone && socket_.is_open()) {
    peer_ = Address::peer_of(socket_.fd());
  }
  return peer_;
}

Address ReadinessStream::local_address() const {
  return socket_.is_open() ? Address::local_of(socket_.fd()) : Address();
}

std::unique_ptr<StreamImpl> ReadinessTransport::adopt_stream(Reactor& reactor, int fd,
                                                             const Address& peer) {
  return std::make_unique<ReadinessStream>(reactor, fd, peer);
}

std::unique_ptr<StreamImpl> ReadinessTransport::open_stream(Reactor& reactor,
                                                            const Address& address) {
  const int fd = open_socket(address.domain(), SOCK_STREAM);
  if (fd < 0) throw_errno(errno, absl::StrCat("weft: socket for ", address.to_string()));
  try {
    return std::make_unique<ReadinessStream>(reactor, fd, Address());
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace weft::net::detail

namespace weft::net {
namespace {

struct TransportRegistry {
  std::mutex mu;
  absl::flat_hash_map<std::string, std::shared_ptr<Transport>> by_name;
  // Replaced or removed transports stay alive: streams and callers may still hold a reference.
  std::vector<std::shared_ptr<Transport>> retired;
  std::atomic<bool> empty{true};
};

TransportRegistry& registry() {
  static auto* instance = new TransportRegistry;  // never destroyed: usable during exit
  return *instance;
}

}  // namespace

void register_transport(std::string backend_name, std::shared_ptr<Transport> transport) {
  TransportRegistry& r = registry();
  std::lock_guard lock(r.mu);
  if (auto it = r.by_name.find(backend_name); it != r.by_name.end()) {
    r.retired.push_back(std::move(it->second));
    r.by_name.erase(it);
  }
  if (transport != nullptr) r.by_name[std::move(backend_name)] = std::move(transport);
  r.empty.store(r.by_name.empty(), std::memory_order_release);
}

Transport& transport_for(Reactor& reactor) {
  static detail::ReadinessTransport readiness;
  TransportRegistry& r = registry();
  if (r.empty.load(std::memory_order_acquire)) return readiness;
  const std::string& name = reactor.name();
  std::lock_guard lock(r.mu);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) it = r.by_name.find(name.substr(0, name.find(':')));
  // The registry keeps a reference: a transport stays alive once handed out.
  return it != r.by_name.end() ? *it->second : readiness;
}

}  // namespace weft::net
