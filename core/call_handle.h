// CallHandle: names a callback queued with Reactor::call_soon() or call_from_thread(), so it
// can be cancelled before it runs (asyncio's Handle).
//
// A handle is a small value: copying it names the same callback; dropping it does not cancel.
// Threading: a handle from call_soon() is loop-thread only, like call_soon(); a handle from
// call_from_thread() may be used on any thread. Either must not be used after its reactor is
// destroyed.
#ifndef WEFT_CORE_CALL_HANDLE_H_
#define WEFT_CORE_CALL_HANDLE_H_

#include <cstdint>

namespace weft {

class Reactor;

class CallHandle {
 public:
  CallHandle() = default;

  // Prevents the callback from running and destroys it. Returns true if this call prevented
  // it; false if it already started running (or ran), was already cancelled, or the handle
  // is empty. A callback of the current turn that has not started yet is still prevented.
  bool cancel();
  // True until the callback starts running or is cancelled.
  bool pending() const;

 private:
  friend class Reactor;
  CallHandle(Reactor* reactor, std::uint64_t sequence, bool from_thread)
      : reactor_(reactor), sequence_(sequence), from_thread_(from_thread) {}
  Reactor* reactor_ = nullptr;
  std::uint64_t sequence_ = 0;
  bool from_thread_ = false;
};

}  // namespace weft

#endif  // WEFT_CORE_CALL_HANDLE_H_
