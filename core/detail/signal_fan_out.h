// SignalFanOut: weft's one process-wide handler per signal number, which hands each signal to
// every reactor watching it.
//
// Native libraries disagree about signals shared by several loops: libevent gives a signal to
// the last base that added it, Asio and libuv each install their own handler and restore
// SIG_DFL when they stop, so two reactors of different backends used to steal signals from each
// other and could leave the process killable. weft therefore owns the disposition itself, like
// libuv does for its own loops: the first watcher of a signal installs weft's handler and saves
// the disposition the program had; the handler writes the signal number (one byte) to a pipe
// per watching reactor; the last watcher to leave restores the saved disposition.
//
// Threading: add() and remove() are thread-safe; the handler is async-signal-safe (it only
// loads atomics and calls write()). Limits: kSlotsPerSignal reactors may watch one signal at
// once; a full pipe drops the byte, as the kernel merges pending signals.
#ifndef WEFT_CORE_DETAIL_SIGNAL_FAN_OUT_H_
#define WEFT_CORE_DETAIL_SIGNAL_FAN_OUT_H_

namespace weft::detail {

// Starts writing `signo` to `write_fd` whenever the process receives it; returns a slot for
// remove_signal_target(). Throws std::system_error (bad signal number, sigaction failure, too
// many watchers).
int add_signal_target(int signo, int write_fd);

// Stops writing `signo` to the fd added in `slot`. When it returns, no handler is still about
// to write to that fd, so it may be closed. The last target of a signal restores the
// disposition that was in place before the first was added.
void remove_signal_target(int signo, int slot);

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_SIGNAL_FAN_OUT_H_
