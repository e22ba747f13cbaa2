// abandon(): parks an object for good, for what a forked child must neither destroy nor free.
//
// In a child process, a runner's loop thread does not exist, and the state it used (a reactor
// mid-turn, a condition variable it waited on, a thread handle that cannot be joined) cannot
// be released safely. The child keeps such objects until it exits or execs. They stay
// reachable from a global list, so leak checkers (LeakSanitizer) do not report them.
//
// Threading: thread-safe and lock-free (a lock could have been held by a thread of the parent
// at the fork).
#ifndef WEFT_RUNNERS_DETAIL_ABANDONED_H_
#define WEFT_RUNNERS_DETAIL_ABANDONED_H_

#include <memory>

namespace weft::detail {

// Never destroys or frees `object`.
void abandon(const void* object);

template <typename T>
void abandon(std::unique_ptr<T>& owner) {
  abandon(static_cast<const void*>(owner.release()));
}

}  // namespace weft::detail

#endif  // WEFT_RUNNERS_DETAIL_ABANDONED_H_
