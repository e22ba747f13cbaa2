// WakeFd: a descriptor that one thread polls for readability and any other thread (or a signal
// handler) makes readable: "wake up, there is something to look at". The guest reactor uses
// one to tell the host its helper thread saw work, and one to cut the helper's wait short; a
// backend whose native loop is made without locks (libevent's, EVENT_BASE_FLAG_NOLOCK) watches
// one for its cross-thread wake().
//
// Two kinds, chosen at run time: an eventfd (Linux: one descriptor, a counter), or a
// non-blocking, close-on-exec pipe (everywhere: macOS and the BSDs have no eventfd). Linux
// uses the eventfd unless the portable fallbacks are forced (core/detail/portable.h), so the
// pipe is tested on Linux too.
//
// Signals coalesce: any number of signal() calls between two drain() calls make the descriptor
// readable once and cost one write.
//
// Threading: signal() from any thread or a signal handler (async-signal-safe); fd() and
// drain() on the polling thread. Lifetime: the destructor closes the descriptors; no signal()
// may run during or after it. Across fork(), the descriptors' files are shared with the
// parent: a child must not signal or drain an inherited WakeFd, only destroy it.
#ifndef WEFT_CORE_DETAIL_WAKE_FD_H_
#define WEFT_CORE_DETAIL_WAKE_FD_H_

#include <atomic>

namespace weft::detail {

class WakeFd {
 public:
  enum class Kind {
    kEventFd,  // Linux only
    kPipe,     // everywhere
  };

  // An eventfd on Linux unless the portable fallbacks are forced, else a pipe. Throws
  // UsageError for an invalid $WEFT_PORTABLE.
  static Kind default_kind();
  // Whether `kind` exists on this platform.
  static bool supported(Kind kind);

  // Opens the descriptors (numbered above 2). Throws std::system_error (EMFILE when the
  // descriptors ran out; ENOSYS for an eventfd off Linux).
  explicit WakeFd(Kind kind = default_kind());
  ~WakeFd();
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;

  Kind kind() const { return kind_; }
  // What to poll for readability.
  int fd() const { return read_fd_; }

  // Makes fd() readable until the next drain(). Any thread; async-signal-safe; keeps errno.
  void signal() noexcept;
  // Makes fd() not readable (unless a signal() races it). Returns true if it was readable.
  bool drain() noexcept;

 private:
  const Kind kind_;
  int read_fd_ = -1;
  int write_fd_ = -1;  // == read_fd_ for an eventfd
  // Set by the first signal() after a drain, which alone writes; cleared by drain().
  std::atomic<bool> pending_{false};
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_WAKE_FD_H_
