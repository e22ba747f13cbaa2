// UdpSocket: a datagram socket (UDP over IPv4 or IPv6), with co_await send and receive.
//
//   weft::net::UdpSocket socket = weft::net::UdpSocket::bind(weft::net::Address::loopback_v4(0));
//   co_await socket.send_to(bytes, peer);
//   weft::net::Datagram datagram = co_await socket.receive_from(buffer);
//
// Like a stream, the socket is registered with its reactor once (at its first operation) and
// tries each system call before waiting. A datagram larger than the buffer is reported, not
// silently cut: Datagram::truncated is set and Datagram::size is the datagram's real size (the
// buffer holds its first buffer.size() bytes; the rest is gone, as the kernel drops it).
//
// Completion contract: each operation completes once; it may complete without suspending.
// Failures throw std::system_error with the errno and the peer (ECONNREFUSED on a connected
// socket whose peer has no listener, EMSGSIZE, ...). Cancelling an operation throws
// weft::Cancelled next turn; a cancelled receive loses no datagram and a cancelled send sends
// nothing. One receive at a time; concurrent sends are queued in order.
//
// Threading: operations inside a task on the loop thread of the reactor the socket belongs to
// (the first one used). Lifetime: destroying the socket closes it; operations still pending in
// other tasks fail with ECANCELED.
#ifndef WEFT_NET_UDP_SOCKET_H_
#define WEFT_NET_UDP_SOCKET_H_

#include <sys/socket.h>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "weft/core/detail/suspension.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/task.h"
#include "weft/net/address.h"
#include "weft/net/detail/socket.h"
#include "weft/net/io_request.h"

namespace weft::net {

struct Datagram {
  std::size_t size = 0;  // the datagram's size (may exceed the buffer: see truncated)
  Address from;
  bool truncated = false;
};

class DatagramAwaiter : public weft::detail::Suspension, private IoRequest {
 public:
  DatagramAwaiter(detail::Socket* socket, std::span<std::byte> buffer, const Address* to,
                  bool send);
  ~DatagramAwaiter();
  template <weft::detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    return suspend(handle, *handle.promise().context());
  }
  Datagram await_resume();

 private:
  friend class UdpSocket;
  bool suspend(std::coroutine_handle<> handle, weft::detail::TaskContext& context);
  static bool stop(weft::detail::Suspension& self);
  static void complete(IoRequest& request);

  detail::Socket* socket_;
  const Address* to_;
  bool send_;
  bool truncated_ = false;
  ::sockaddr_storage from_{};
  socklen_t from_length_ = 0;
};

class UdpSocket {
 public:
  UdpSocket() = default;
  // A socket bound to `address` (port 0: an ephemeral port). Throws std::system_error.
  static UdpSocket bind(const Address& address);
  UdpSocket(UdpSocket&&) noexcept = default;
  UdpSocket& operator=(UdpSocket&&) noexcept = default;

  // Fixes the peer: send() goes there, and only its datagrams are received. Does not wait.
  void connect(const Address& peer);

  // Sends one datagram; completes when the kernel has taken it. Returns a Datagram whose size is
  // the bytes sent.
  [[nodiscard]] DatagramAwaiter send_to(std::span<const std::byte> bytes, const Address& to) {
    return DatagramAwaiter(socket_.get(), as_mutable(bytes), &to, true);
  }
  [[nodiscard]] DatagramAwaiter send_to(std::string_view text, const Address& to) {
    return send_to(std::as_bytes(std::span(text.data(), text.size())), to);
  }
  [[nodiscard]] DatagramAwaiter send(std::span<const std::byte> bytes) {
    return DatagramAwaiter(socket_.get(), as_mutable(bytes), nullptr, true);
  }
  [[nodiscard]] DatagramAwaiter send(std::string_view text) {
    return send(std::as_bytes(std::span(text.data(), text.size())));
  }
  // Receives one datagram into `buffer`, with its sender.
  [[nodiscard]] DatagramAwaiter receive_from(std::span<std::byte> buffer) {
    return DatagramAwaiter(socket_.get(), buffer, nullptr, false);
  }
  [[nodiscard]] DatagramAwaiter receive_from(std::span<char> buffer) {
    return receive_from(std::as_writable_bytes(buffer));
  }

  Address local_address() const;
  void close();
  bool is_open() const { return socket_ != nullptr && socket_->is_open(); }
  int native_handle() const { return socket_ != nullptr ? socket_->fd() : -1; }

 private:
  static std::span<std::byte> as_mutable(std::span<const std::byte> bytes) {
    return {const_cast<std::byte*>(bytes.data()), bytes.size()};
  }
  static bool attempt_receive(void* owner, int fd, IoRequest& request);
  static bool attempt_send(void* owner, int fd, IoRequest& request);

  std::unique_ptr<detail::Socket> socket_;
};

}  // namespace weft::net

#endif  // WEFT_NET_UDP_SOCKET_H_
