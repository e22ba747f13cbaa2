// FileFlagsGuard: puts a descriptor's file status flags back after a native library call that
// switches the descriptor to non-blocking mode (libuv's uv_poll_init, Asio's first wait).
//
// Why: O_NONBLOCK belongs to the open file, not the descriptor, and weft watches a duplicate
// that shares the open file with the caller's fd; weft promises not to change the caller's
// flags. A descriptor that was non-blocking already is left alone (nothing changed: no second
// system call).
//
// Threading: whatever the descriptor's owner allows; the guard is a scope on one thread.
#ifndef WEFT_BACKENDS_DETAIL_FILE_FLAGS_GUARD_H_
#define WEFT_BACKENDS_DETAIL_FILE_FLAGS_GUARD_H_

#include <fcntl.h>

namespace weft::backends::detail {

class FileFlagsGuard {
 public:
  explicit FileFlagsGuard(int fd) : fd_(fd), flags_(fcntl(fd, F_GETFL)) {}
  ~FileFlagsGuard() {
    if (flags_ >= 0 && (flags_ & O_NONBLOCK) == 0) fcntl(fd_, F_SETFL, flags_);
  }
  FileFlagsGuard(const FileFlagsGuard&) = delete;
  FileFlagsGuard& operator=(const FileFlagsGuard&) = delete;

 private:
  int fd_;
  int flags_;  // -1 if they could not be read: then nothing is put back
};

}  // namespace weft::backends::detail

#endif  // WEFT_BACKENDS_DETAIL_FILE_FLAGS_GUARD_H_
