// fork_generation(): how many times this process's ancestors and itself have forked since weft
// was first used in it, as seen from this process: a child sees one more than its parent did
// at the fork.
//
// A reactor (or runner) records the generation it was made in; a different generation later
// means it was inherited through fork(), and shares kernel objects (an epoll set, eventfds,
// the loop thread that no longer exists) with the parent. See docs/architecture.md, "fork".
//
// Threading: thread-safe; one relaxed atomic load.
#ifndef WEFT_CORE_DETAIL_FORK_GENERATION_H_
#define WEFT_CORE_DETAIL_FORK_GENERATION_H_

#include <atomic>
#include <cstdint>

namespace weft::detail {

extern std::atomic<std::uint32_t> g_fork_generation;

// Registers the pthread_atfork handler that counts forks; idempotent and thread-safe. Called
// by every reactor's constructor, so the count is right for anything made after it.
void watch_forks();

inline std::uint32_t fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_FORK_GENERATION_H_
