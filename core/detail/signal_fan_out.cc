#include "weft/core/detail/signal_fan_out.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace weft::detail {
namespace {

constexpr int kSignalLimit = NSIG;   // signal numbers are 1 .. NSIG-1, and fit in a byte
constexpr int kSlotsPerSignal = 64;  // reactors watching one signal at once

// Each watching reactor's pipe, as write fd + 1 (0: free slot). Zero-initialized static
// storage, so valid before any constructor runs. Read by the handler; changed under
// FanOut::mu.
std::atomic<int> g_targets[kSignalLimit][kSlotsPerSignal];
// Handlers currently between reading a target and writing to it, on any thread: a pipe may be
// closed only once this is zero after its target was cleared (both seq_cst, so a handler that
// starts after the clear cannot see the old fd).
std::atomic<int> g_handlers_running{0};

void forward_signal(int signo) {
  const int saved_errno = errno;
  g_handlers_running.fetch_add(1);
  if (signo > 0 && signo < kSignalLimit) {
    const auto byte = static_cast<unsigned char>(signo);
    for (std::atomic<int>& target : g_targets[signo]) {
      const int fd = target.load() - 1;
      if (fd >= 0) {
        // Non-blocking pipe: a full one drops the byte, as the kernel merges pending signals.
        [[maybe_unused]] ssize_t n = write(fd, &byte, 1);
      }
    }
  }
  g_handlers_running.fetch_sub(1);
  errno = saved_errno;
}

struct FanOut {
  std::mutex mu;
  int watchers[kSignalLimit] = {};               // guarded by mu
  struct sigaction previous[kSignalLimit] = {};  // guarded by mu: restored by the last watcher
};

FanOut& fan_out() {
  static FanOut* const instance = new FanOut;  // never destroyed: reactors may die during exit
  return *instance;
}

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), absl::StrCat("weft: ", what));
}

}  // namespace

int add_signal_target(int signo, int write_fd) {
  if (signo <= 0 || signo >= kSignalLimit || signo == SIGKILL || signo == SIGSTOP) {
    throw_errno(EINVAL, absl::StrCat("cannot watch signal ", signo));
  }
  FanOut& f = fan_out();
  std::lock_guard lock(f.mu);
  int slot = 0;
  while (slot < kSlotsPerSignal && g_targets[signo][slot].load() != 0) ++slot;
  if (slot == kSlotsPerSignal) {
    throw_errno(ENOSPC, absl::StrCat("cannot watch signal ", signo, ": more than ", kSlotsPerSignal,
                                     " reactors watch it"));
  }
  g_targets[signo][slot].store(write_fd + 1);
  if (f.watchers[signo] == 0) {
    struct sigaction action {};
    action.sa_handler = forward_signal;
    sigfillset(&action.sa_mask);  // one handler at a time per thread; none interrupts another
    action.sa_flags = SA_RESTART;
    if (sigaction(signo, &action, &f.previous[signo]) != 0) {
      const int error = errno;
      g_targets[signo][slot].store(0);
      throw_errno(error, absl::StrCat("cannot watch signal ", signo));
    }
  }
  ++f.watchers[signo];
  return slot;
}

void remove_signal_target(int signo, int slot) {
  {
    FanOut& f = fan_out();
    std::lock_guard lock(f.mu);
    g_targets[signo][slot].store(0);
    if (--f.watchers[signo] == 0) sigaction(signo, &f.previous[signo], nullptr);
  }
  // A handler that read this target before it was cleared may still be about to write to it.
  // Handlers never block, so this wait is short.
  while (g_handlers_running.load() != 0) sched_yield();
}

}  // namespace weft::detail
