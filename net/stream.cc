#include "weft/net/stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/net/detail/errors.h"

namespace weft::net {
namespace detail {

bool StreamAwaiter::suspend(std::coroutine_handle<> handle, weft::detail::TaskContext& context) {
  transferred = 0;
  error = 0;
  if (impl_ != nullptr && &impl_->reactor() != context.reactor) {
    throw UsageError("weft: a stream was used from a task of another reactor than its own");
  }
  // Cancellation is level-triggered: in a cancelled scope every await raises Cancelled, even
  // one that could complete at once.
  if (!begin(handle, context, &StreamAwaiter::stop)) return false;
  if (impl_ == nullptr || !impl_->is_open()) {
    error = EBADF;
  } else if (write_ && impl_->broken) {
    error = EPIPE;
  }
  if (error != 0 || buffer.empty()) {
    abort_begin();
    return false;
  }
  on_complete = &StreamAwaiter::complete;
  bool done = false;
  try {
    done = write_ ? impl_->start_write(*this) : impl_->start_read(*this);
  } catch (...) {
    abort_begin();
    throw;
  }
  if (done) {
    abort_begin();  // the socket was ready: no suspension, no loop turn
    return false;
  }
  return true;
}

bool StreamAwaiter::withdraw() {
  if (!pending) return false;
  const bool withdrawn = write_ ? impl_->cancel_write(*this) : impl_->cancel_read(*this);
  // Part of a message is in the kernel already: a later write would tear it.
  if (withdrawn && write_ && transferred > 0) impl_->broken = true;
  return withdrawn;
}

// Cancelled while suspended: withdraw the request; if it could not be withdrawn (it already
// completed, or close() queued its failure) the completion resumes the task instead.
bool StreamAwaiter::stop(weft::detail::Suspension& self) {
  return static_cast<StreamAwaiter&>(self).withdraw();
}

void StreamAwaiter::complete(IoRequest& request) {
  static_cast<StreamAwaiter&>(request).resume_now();
}

StreamAwaiter::~StreamAwaiter() {
  // The task's frame is destroyed while suspended here (its reactor went away).
  if (suspended() && pending) withdraw();
}

void StreamAwaiter::check() const {
  Suspension::await_resume();  // Cancelled
  if (error == 0) return;
  std::string peer = "(closed stream)";
  if (impl_ != nullptr) peer = impl_->peer_address().to_string();
  if (write_ && error == EPIPE && impl_ != nullptr && impl_->broken) {
    detail::throw_errno(error, absl::StrCat("weft: write_all to ", peer,
                                            ": the stream was broken by a cancelled write_all "
                                            "(part of its message was sent)"));
  }
  detail::throw_errno(error,
                      absl::StrCat("weft: ", write_ ? "write_all to " : "read_some from ", peer));
}

}  // namespace detail

Stream Stream::adopt(Reactor& reactor, int fd) {
  detail::make_non_blocking(fd);
  return Stream(transport_for(reactor).adopt_stream(reactor, fd, Address()));
}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Stream::~Stream() { close(); }

Task<void> Stream::read_exactly(std::span<std::byte> buffer) {
  std::size_t done = 0;
  while (done < buffer.size()) {
    const std::size_t n = co_await read_some(buffer.subspan(done));
    if (n == 0) {
      throw EndOfStream(
          absl::StrCat("weft: read_exactly from ", peer_address().to_string(),
                       ": end of stream after ", done, " of ", buffer.size(), " bytes"),
          done);
    }
    done += n;
  }
}

void Stream::shutdown_write() {
  if (impl_ == nullptr) detail::throw_errno(EBADF, "weft: shutdown_write on an empty stream");
  impl_->shutdown_write();
}

void Stream::close() {
  if (impl_ != nullptr) impl_->close(false);
}

void Stream::abort() {
  if (impl_ != nullptr) impl_->close(true);
}

void Stream::set_nodelay(bool on) {
  const int value = on ? 1 : 0;
  if (setsockopt(native_handle(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) != 0) {
    detail::throw_errno(
        errno, absl::StrCat("weft: TCP_NODELAY on stream to ", peer_address().to_string()));
  }
}

void Stream::set_keepalive(bool on, std::optional<Duration> idle) {
  const int value = on ? 1 : 0;
  if (setsockopt(native_handle(), SOL_SOCKET, SO_KEEPALIVE, &value, sizeof value) != 0) {
    detail::throw_errno(
        errno, absl::StrCat("weft: SO_KEEPALIVE on stream to ", peer_address().to_string()));
  }
  if (on && idle) {
    const int seconds = static_cast<int>(
        std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(*idle).count()));
    // The idle time's option: TCP_KEEPIDLE (Linux, the BSDs), TCP_KEEPALIVE (macOS); OpenBSD
    // has only a system-wide setting.
#if defined(TCP_KEEPIDLE)
    constexpr int kIdleOption = TCP_KEEPIDLE;
    constexpr const char* kIdleName = "TCP_KEEPIDLE";
#elif defined(TCP_KEEPALIVE)
    constexpr int kIdleOption = TCP_KEEPALIVE;
    constexpr const char* kIdleName = "TCP_KEEPALIVE";
#endif
#if defined(TCP_KEEPIDLE) || defined(TCP_KEEPALIVE)
    if (setsockopt(native_handle(), IPPROTO_TCP, kIdleOption, &seconds, sizeof seconds) != 0) {
      detail::throw_errno(
          errno, absl::StrCat("weft: ", kIdleName, " on stream to ", peer_address().to_string()));
    }
#else
    detail::throw_errno(ENOPROTOOPT,
                        absl::StrCat("weft: keep-alive idle time (not settable per socket on "
                                     "this platform) on stream to ",
                                     peer_address().to_string()));
#endif
  }
}

Address Stream::local_address() const { return impl_ ? impl_->local_address() : Address(); }
Address Stream::peer_address() const { return impl_ ? impl_->peer_address() : Address(); }

}  // namespace weft::net
