#include "weft/core/detail/fork_generation.h"

#include <pthread.h>

namespace weft::detail {

std::atomic<std::uint32_t> g_fork_generation{0};

void watch_forks() {
  // A function-local static: thread-safe, once per process (and inherited by children, whose
  // pthread_atfork registrations are inherited too).
  [[maybe_unused]] static const int registered = pthread_atfork(
      nullptr, nullptr, [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
}

}  // namespace weft::detail
