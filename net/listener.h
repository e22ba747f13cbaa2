// Listener: a listening TCP (or Unix-domain) socket, and accept() for its connections.
//
//   weft::net::Listener listener = weft::net::Listener::bind(weft::net::Address::loopback_v4(0));
//   std::uint16_t port = listener.local_address().port();  // port 0 picked an ephemeral one
//   weft::net::Stream client = co_await listener.accept();
//
// bind() sets SO_REUSEADDR (a restarted server rebinds at once), binds and listens with
// `backlog`. The socket is registered with a reactor once, by the first accept(), and stays so.
//
// Completion contract: accept() completes once, with a connected Stream (TCP_NODELAY on), or
// throws std::system_error (EMFILE, ENFILE, ENOBUFS, ENOMEM when the process or system is out of
// resources: the pending connection stays queued, so retrying later is right; serve() does).
// Connections the peer aborted before they were accepted are skipped. Cancelling accept()
// throws weft::Cancelled next turn and accepts nothing. One accept() at a time.
//
// Threading: accept() inside a task on the loop thread of the reactor the listener belongs to;
// bind() anywhere. Lifetime: destroying (or close()-ing) the listener closes the socket; a
// pending accept() of another task fails with ECANCELED.
#ifndef WEFT_NET_LISTENER_H_
#define WEFT_NET_LISTENER_H_

#include <sys/socket.h>

#include <coroutine>
#include <memory>

#include "weft/core/detail/suspension.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/task.h"
#include "weft/net/address.h"
#include "weft/net/detail/socket.h"
#include "weft/net/io_request.h"
#include "weft/net/stream.h"

namespace weft::net {

struct ListenOptions {
  int backlog = SOMAXCONN;
  bool reuse_address = true;  // SO_REUSEADDR (IP only)
  bool reuse_port = false;    // SO_REUSEPORT
  bool nodelay = true;        // TCP_NODELAY on accepted streams
};

class AcceptAwaiter : public weft::detail::Suspension, private IoRequest {
 public:
  AcceptAwaiter(detail::Socket* socket, bool nodelay) : socket_(socket), nodelay_(nodelay) {}
  ~AcceptAwaiter();
  template <weft::detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    return suspend(handle, *handle.promise().context());
  }
  Stream await_resume();

 private:
  friend class Listener;
  bool suspend(std::coroutine_handle<> handle, weft::detail::TaskContext& context);
  static bool stop(weft::detail::Suspension& self);
  static void complete(IoRequest& request);

  detail::Socket* socket_;
  Reactor* reactor_ = nullptr;
  int fd_ = -1;
  ::sockaddr_storage peer_{};
  socklen_t peer_length_ = 0;
  bool nodelay_;
};

class Listener {
 public:
  Listener() = default;
  // Throws std::system_error naming the address (EADDRINUSE, EACCES, ...).
  static Listener bind(const Address& address, ListenOptions options = {});
  Listener(Listener&&) noexcept = default;
  Listener& operator=(Listener&&) noexcept = default;
  ~Listener() = default;

  [[nodiscard]] AcceptAwaiter accept() { return AcceptAwaiter(socket_.get(), nodelay_); }
  // With the real port when bound to port 0.
  Address local_address() const;
  void close();
  bool is_open() const { return socket_ != nullptr && socket_->is_open(); }
  int native_handle() const { return socket_ != nullptr ? socket_->fd() : -1; }

 private:
  static bool attempt_accept(void* owner, int fd, IoRequest& request);
  static bool never(void*, int, IoRequest&) { return false; }

  std::unique_ptr<detail::Socket> socket_;
  bool nodelay_ = true;
};

}  // namespace weft::net

#endif  // WEFT_NET_LISTENER_H_
