// IoHandle: one descriptor registered with the reactor's backend for the handle's whole life,
// for code that owns the descriptor (weft's streams in net/, a protocol library's socket).
//
// Reactor::watch_readable() watches a duplicate of the caller's fd so that a careless close()
// cannot confuse it; that costs a descriptor and a registration per watch. An IoHandle makes
// neither: it registers the fd itself, once, and changing the interest (readable, writable,
// both, none) only updates that registration (one epoll_ctl, as uv_read_start/stop do). In
// exchange the owner promises to destroy (or reset) the handle before it closes the fd.
//
// The callback receives the events that are ready among those of interest; it runs on the loop
// thread, when the backend reports them, never inside set_interest(). Readiness is
// level-triggered: it is reported again while it holds and the interest is set. Destroying the
// handle, or setting the interest to kNone, stops delivery at once, even for events already
// reported in the current iteration; both are safe from inside the callback.
//
// Threading: loop thread only. Lifetime: must not outlive its reactor.
#ifndef WEFT_CORE_IO_HANDLE_H_
#define WEFT_CORE_IO_HANDLE_H_

#include <utility>

#include "absl/functional/any_invocable.h"
#include "weft/core/backend.h"
#include "weft/core/reactor.h"

namespace weft {

class IoHandle {
 public:
  using Callback = absl::AnyInvocable<void(IoEvents ready)>;

  IoHandle() = default;
  // Registers `fd` (which must stay open until the handle is destroyed or reset) with no
  // interest yet. Throws std::system_error if the backend cannot watch it (a regular file on
  // epoll, fd >= FD_SETSIZE on select), UsageError if the fd already has an IoHandle.
  IoHandle(Reactor& reactor, int fd, Callback on_ready)
      : reactor_(&reactor), target_(reactor.register_io(fd, std::move(on_ready))) {}
  IoHandle(IoHandle&& other) noexcept
      : reactor_(std::exchange(other.reactor_, nullptr)),
        target_(std::exchange(other.target_, nullptr)) {}
  IoHandle& operator=(IoHandle&& other) noexcept {
    if (this != &other) {
      reset();
      reactor_ = std::exchange(other.reactor_, nullptr);
      target_ = std::exchange(other.target_, nullptr);
    }
    return *this;
  }
  ~IoHandle() { reset(); }

  // Unregisters (the fd may be closed afterwards). Idempotent.
  void reset() {
    if (target_ != nullptr) Reactor::unregister_io(std::exchange(target_, nullptr));
  }
  // Which events the callback is for; kNone pauses delivery but keeps the registration.
  // Throws std::system_error if the backend refuses.
  void set_interest(IoEvents events) { Reactor::set_io_interest(target_, events); }
  IoEvents interest() const;
  int fd() const;
  explicit operator bool() const { return target_ != nullptr; }
  Reactor* reactor() const { return reactor_; }

 private:
  Reactor* reactor_ = nullptr;
  Reactor::IoTarget* target_ = nullptr;
};

}  // namespace weft

#endif  // WEFT_CORE_IO_HANDLE_H_
