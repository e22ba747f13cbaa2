// detail::Socket: a non-blocking descriptor with one IoHandle for its whole life, and the
// try-then-wait machinery every readiness-based net/ object shares (streams, listeners, UDP).
//
// A request is first tried with the owner's `attempt` function (the system call); only if it
// would block is it queued and the descriptor's interest armed. One read-side request at a time
// (a second throws UsageError); write-side requests queue in order. Readable interest stays
// armed after a read completes (disarmed when readiness finds nobody waiting), so a read loop
// costs no epoll_ctl per read; writable interest is dropped as soon as the queue empties.
//
// Fairness: the bytes (or operations) completed without waiting, at once or by a readiness
// event's retries, are counted; past kBudgetPerTurn the next request is queued behind a yield to
// the loop's next turn, so a connection that always has data cannot starve the others, and a
// writer cannot fill the socket in one turn while its reader is capped. Waiting resets the count.
//
// Threading: the loop thread of the reactor it is bound to (the first one a request names).
// Destroying the Socket (or close()) closes the descriptor; pending requests complete with
// ECANCELED from the next loop turn. It may be destroyed after its reactor (its IoHandle is
// then only freed).
#ifndef WEFT_NET_DETAIL_SOCKET_H_
#define WEFT_NET_DETAIL_SOCKET_H_

#include <cstddef>
#include <memory>

#include "weft/core/call_handle.h"
#include "weft/core/io_handle.h"
#include "weft/core/reactor.h"
#include "weft/net/io_request.h"

namespace weft::net::detail {

inline constexpr std::size_t kBudgetPerTurn = 256 * 1024;
// What a completed operation that moves no bytes (accept, a datagram) counts for.
inline constexpr std::size_t kOperationCost = 512;

class Socket {
 public:
  // Tries `request` once, without blocking: returns true when it finished (transferred/error
  // set), false if it would block.
  using Attempt = bool (*)(void* owner, int fd, IoRequest& request);

  Socket(int fd, void* owner, Attempt read, Attempt write)
      : fd_(fd), owner_(owner), attempt_read_(read), attempt_write_(write) {}
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  // The reactor the socket is bound to (null before its first request).
  Reactor* reactor() const { return reactor_; }
  // Binds to `reactor` now (the first request does it otherwise). UsageError if bound elsewhere.
  void bind(Reactor& reactor);

  // True if the request finished at once; otherwise it completes through on_complete later.
  // `try_first` false skips the attempt before the wait (the owner knows the socket is empty).
  bool start_read(IoRequest& request, bool try_first = true);
  bool start_write(IoRequest& request);
  // Waits for writability before the first attempt (a connect in progress).
  void start_write_after_wait(IoRequest& request);
  // True if the request was pending and now never completes.
  bool cancel_read(IoRequest& request);
  bool cancel_write(IoRequest& request);
  bool read_pending() const { return reader_ != nullptr; }
  bool write_pending() const { return writers_ != nullptr; }

  // Fails every pending request with `error` (from the next turn), unregisters and closes.
  // `before_close` runs just before ::close (for SO_LINGER). Idempotent.
  void close(int error = ECANCELED);

 private:
  struct YieldToken {
    Socket* socket;
  };

  void on_ready(IoEvents ready);
  // Runs what can run; false if the socket was destroyed by a completion.
  bool drive(bool read, bool write, bool from_readiness);
  void update_interest();
  void schedule_yield();
  void charge(const IoRequest& request);
  void fail_later(IoRequest& request, int error);

  int fd_;
  void* owner_;
  Attempt attempt_read_;
  Attempt attempt_write_;
  Reactor* reactor_ = nullptr;
  IoHandle io_;
  IoRequest* reader_ = nullptr;
  IoRequest* writers_ = nullptr;  // FIFO: head
  IoRequest* writers_tail_ = nullptr;
  bool read_armed_ = false;
  bool write_armed_ = false;
  std::size_t budget_used_ = 0;
  std::shared_ptr<YieldToken> yield_;  // set while a yield is scheduled
  CallHandle yield_call_;
  bool* destroyed_ = nullptr;  // set while drive() is on the stack
};

}  // namespace weft::net::detail

#endif  // WEFT_NET_DETAIL_SOCKET_H_
