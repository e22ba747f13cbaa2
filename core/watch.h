// Watch: names a persistent fd-readiness or signal watcher, so it can be
// cancelled.
//
// Watchers stay registered and fire on every readiness (level-triggered) or
// every signal until cancelled. A Watch is a small value: copying it names the
// same watcher; dropping it does not cancel (call cancel(), like Twisted's
// removeReader). Threading: loop thread only. A Watch must not be used after
// its reactor is destroyed.
#ifndef WEFT_CORE_WATCH_H_
#define WEFT_CORE_WATCH_H_

#include <cstdint>

namespace weft {

class Reactor;

class Watch {
 public:
  enum class Kind : std::uint8_t { kNone, kReadable, kWritable, kSignal };

  Watch() = default;

  // Stops the watcher; its callback does not run again, even for readiness
  // already reported in the current loop iteration. Returns false if it was
  // already cancelled or is empty. Safe to call from the watcher's own
  // callback.
  bool cancel();
  bool active() const;

  Kind kind() const { return kind_; }

 private:
  friend class Reactor;
  Watch(Reactor* reactor, Kind kind, int key, std::uint64_t id)
      : reactor_(reactor), kind_(kind), key_(key), id_(id) {}
  Reactor* reactor_ = nullptr;
  Kind kind_ = Kind::kNone;
  int key_ = -1;  // the fd or the signal number
  std::uint64_t id_ = 0;
};

}  // namespace weft

#endif  // WEFT_CORE_WATCH_H_
