// Stream: a connected byte stream (TCP or Unix-domain), read and written with co_await.
//
//   weft::net::Stream stream = co_await weft::net::connect("example.org", 80);
//   co_await stream.write_all("GET / HTTP/1.0\r\n\r\n");
//   std::array<std::byte, 4096> buffer;
//   while (std::size_t n = co_await stream.read_some(buffer)) consume(buffer, n);
//
// Streams come from connect() (net/connect.h), Listener::accept() (net/listener.h) or
// Stream::adopt(). Each is registered with its reactor once, for its whole life; an operation
// tries the system call first and waits for readiness only if it would block; a stream that
// always has data yields to the loop after about 256 KiB per turn, so it cannot starve others
// (docs/net.md). TCP streams have TCP_NODELAY on.
//
// Completion contract (every operation): it completes exactly once. It may complete without
// suspending the task (the socket was ready); when it suspends, the task is resumed from the loop,
// never inside the call that started the operation. Failures throw std::system_error with the
// errno (ECONNRESET, EPIPE, ETIMEDOUT, ...) and a message naming the operation and the peer.
//
// Cancellation: every operation is cancellable by weft's cancellation (Deferred::cancel, a
// runner's timeout); it then throws weft::Cancelled from the next loop turn.
//   * A cancelled read_some consumes nothing: bytes that arrive are there for the next read.
//   * A cancelled write_all that had already handed some of its bytes to the kernel marks the
//     stream broken: every later write_all throws EPIPE ("... broken by a cancelled write_all")
//     instead of sending the rest of a torn message. One cancelled before any byte left (for
//     instance while queued behind another) leaves the stream intact.
//
// Concurrency: one read at a time (a second concurrent read_some throws UsageError). Concurrent
// write_all calls (from several tasks) are queued in order: each one's bytes go out contiguously,
// in the order the calls were made, never interleaved.
//
// End of stream: read_some returns 0 once the peer has shut down its side, and at every later
// call, at once. A read into an empty buffer returns 0 too, without touching the socket.
//
// Threading: the loop thread of the reactor the stream belongs to (the one running the task that
// made it). Lifetime: destroying (or close()-ing) a stream closes its socket; operations still
// pending in other tasks fail with ECANCELED from the next turn. The Stream must not be moved
// while one of its operations is pending. A stream left over after its reactor was destroyed
// only releases its descriptor.
#ifndef WEFT_NET_STREAM_H_
#define WEFT_NET_STREAM_H_

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>

#include "weft/core/detail/suspension.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/task.h"
#include "weft/core/time.h"
#include "weft/net/address.h"
#include "weft/net/io_request.h"
#include "weft/net/stream_impl.h"

namespace weft::net {

// read_exactly() met the end of the stream first.
class EndOfStream : public std::runtime_error {
 public:
  EndOfStream(const std::string& what, std::size_t received)
      : std::runtime_error(what), received_(received) {}
  // Bytes that did arrive (they are in the buffer).
  std::size_t received() const { return received_; }

 private:
  std::size_t received_;
};

namespace detail {

// The awaiter behind read_some() and write_all().
class StreamAwaiter : public weft::detail::Suspension, protected IoRequest {
 public:
  StreamAwaiter(StreamImpl* impl, std::span<std::byte> buffer, bool write)
      : impl_(impl), write_(write) {
    this->buffer = buffer;
  }
  ~StreamAwaiter();

  template <weft::detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    return suspend(handle, *handle.promise().context());
  }

 protected:
  // Throws the operation's failure (Cancelled, or a std::system_error).
  void check() const;

 private:
  bool suspend(std::coroutine_handle<> handle, weft::detail::TaskContext& context);
  bool withdraw();
  static bool stop(weft::detail::Suspension& self);
  static void complete(IoRequest& request);

  StreamImpl* impl_;
  bool write_;
};

}  // namespace detail

class ReadAwaiter : public detail::StreamAwaiter {
 public:
  using StreamAwaiter::StreamAwaiter;
  std::size_t await_resume() const {
    check();
    return transferred;
  }
};

class WriteAwaiter : public detail::StreamAwaiter {
 public:
  using StreamAwaiter::StreamAwaiter;
  void await_resume() const { check(); }
};

class Stream {
 public:
  // No stream; every operation fails with EBADF.
  Stream() = default;
  explicit Stream(std::unique_ptr<StreamImpl> impl) : impl_(std::move(impl)) {}
  // Wraps a connected stream socket (made non-blocking); takes ownership of `fd`. Loop thread.
  static Stream adopt(Reactor& reactor, int fd);
  Stream(Stream&&) noexcept = default;
  Stream& operator=(Stream&& other) noexcept;
  ~Stream();

  // Reads what is available, at most buffer.size() bytes; waits if nothing is. Returns the count,
  // 0 at end of stream.
  [[nodiscard]] ReadAwaiter read_some(std::span<std::byte> buffer) {
    return ReadAwaiter(impl_.get(), buffer, false);
  }
  [[nodiscard]] ReadAwaiter read_some(std::span<char> buffer) {
    return read_some(std::as_writable_bytes(buffer));
  }
  // Fills the whole buffer; throws EndOfStream if the stream ends first.
  Task<void> read_exactly(std::span<std::byte> buffer);
  Task<void> read_exactly(std::span<char> buffer) {
    return read_exactly(std::as_writable_bytes(buffer));
  }
  // Completes when the kernel has taken every byte (not when the peer has read them). A writer
  // faster than its reader waits here: memory stays bounded by the caller's own buffer. The
  // bytes must stay valid until it completes.
  [[nodiscard]] WriteAwaiter write_all(std::span<const std::byte> bytes) {
    return WriteAwaiter(impl_.get(), {const_cast<std::byte*>(bytes.data()), bytes.size()}, true);
  }
  [[nodiscard]] WriteAwaiter write_all(std::string_view text) {
    return write_all(std::as_bytes(std::span(text.data(), text.size())));
  }

  // Half-close: sends FIN; the peer reads end of stream, and this side can still read. Throws
  // UsageError if a write_all is pending.
  void shutdown_write();
  // Closes gracefully (pending operations of other tasks fail with ECANCELED). Idempotent.
  void close();
  // Abortive close: the peer sees a reset (RST, via SO_LINGER 0); unsent data is dropped.
  void abort();

  // TCP only (std::system_error on a Unix stream). TCP_NODELAY is on by default.
  void set_nodelay(bool on);
  // SO_KEEPALIVE; with `idle`, also the idle time before the first probe (TCP_KEEPIDLE).
  void set_keepalive(bool on, std::optional<Duration> idle = std::nullopt);

  Address local_address() const;
  Address peer_address() const;
  bool is_open() const { return impl_ != nullptr && impl_->is_open(); }
  // The socket, for options weft does not wrap. Do not read, write or close it directly.
  int native_handle() const { return impl_ != nullptr ? impl_->native_handle() : -1; }
  StreamImpl* impl() const { return impl_.get(); }

 private:
  std::unique_ptr<StreamImpl> impl_;
};

}  // namespace weft::net

#endif  // WEFT_NET_STREAM_H_
