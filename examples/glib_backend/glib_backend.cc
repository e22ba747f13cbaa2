// The glib backend: a weft Reactor on a GMainContext it owns (registered as "glib"), built out
// of weft's tree against the installed package, as a plugin (weft-backend-glib.so).
//
// It is written against weft's public backend contract only (weft/core/backend.h) and is the
// worked example of docs/install.md. Maps: a requested turn to a non-blocking iteration;
// wake() to an atomic flag plus g_main_context_wakeup() (thread-safe; GLib's wake-up fd stays
// signalled until the next poll, so a wake that races the start of run_once() is not lost);
// weft's one timer to a GSource with a ready time (GLib's microsecond monotonic clock; GLib
// rounds its poll timeout up, so it never fires early); fd interest to one GSource per fd with
// a unix fd tag (g_source_add_unix_fd / g_source_modify_unix_fd: what g_unix_fd_add does, with
// the interest changeable in place). Signals are not the backend's: the reactor receives them
// through its own pipe, watched here like any fd.
//
// Threading: as the Backend contract: loop thread only, except wake().
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>

#include "weft/core/backend.h"
#include "weft/core/backend_registry.h"

namespace weft_glib {
namespace {

using weft::IoEvents;

class GlibBackend;

// GLib allocates a source with the size given to g_source_new: our fields follow its own.
struct TimerSource {
  GSource source;
  GlibBackend* backend;
};

struct FdSource {
  GSource source;
  GlibBackend* backend;
  int fd;
  gpointer tag;
  IoEvents interest;
};

gboolean dispatch_timer(GSource* source, GSourceFunc, gpointer);
gboolean dispatch_fd(GSource* source, GSourceFunc, gpointer);

// No prepare/check: GLib makes a source with a ready time, or a unix fd, ready by itself.
GSourceFuncs timer_funcs = {nullptr, nullptr, dispatch_timer, nullptr, nullptr, nullptr};
GSourceFuncs fd_funcs = {nullptr, nullptr, dispatch_fd, nullptr, nullptr, nullptr};

GIOCondition condition_of(IoEvents events) {
  unsigned condition = 0;
  if (weft::any(events & IoEvents::kReadable)) condition |= G_IO_IN;
  if (weft::any(events & IoEvents::kWritable)) condition |= G_IO_OUT;
  return static_cast<GIOCondition>(condition);
}

class GlibBackend final : public weft::Backend {
 public:
  explicit GlibBackend(weft::LoopHooks& hooks) : hooks_(hooks), context_(new_context()) {
    timer_ = reinterpret_cast<TimerSource*>(g_source_new(&timer_funcs, sizeof(TimerSource)));
    timer_->backend = this;
    g_source_set_ready_time(&timer_->source, -1);
    g_source_attach(&timer_->source, context_);
  }

  ~GlibBackend() override {
    for (auto& [fd, source] : fds_) destroy(&source->source);
    destroy(&timer_->source);
    g_main_context_unref(context_);
  }

  GlibBackend(const GlibBackend&) = delete;
  GlibBackend& operator=(const GlibBackend&) = delete;

  std::string description() const override {
    return "glib " + std::to_string(glib_major_version) + "." + std::to_string(glib_minor_version) +
           "." + std::to_string(glib_micro_version) + " (poll)";
  }

  void run_once(bool may_block) override {
    // Pending work must not wait for the kernel: a requested turn, or a wake already seen.
    const bool block = may_block && !turn_requested_ && !woken_.load(std::memory_order_acquire);
    g_main_context_iteration(context_, block ? TRUE : FALSE);
    const bool woken = woken_.exchange(false, std::memory_order_acq_rel);
    if (turn_requested_ || woken) {
      turn_requested_ = false;
      hooks_.run_turn();
    }
  }

  void request_turn() override { turn_requested_ = true; }

  void wake() override {
    woken_.store(true, std::memory_order_release);
    g_main_context_wakeup(context_);
  }

  void set_timer(weft::TimePoint deadline) override {
    // GLib's clock is its own (g_get_monotonic_time, microseconds): carry the distance over,
    // rounded up, and saturate the far future rather than overflow.
    const weft::Duration left = weft::sub_saturating(deadline, weft::Clock::now());
    const gint64 now = g_get_monotonic_time();
    gint64 ready = now;
    if (left > weft::Duration::zero()) {
      const auto micros = std::chrono::ceil<std::chrono::microseconds>(left).count();
      ready = micros > G_MAXINT64 - now ? G_MAXINT64 : now + micros;
    }
    g_source_set_ready_time(&timer_->source, ready);
  }

  void clear_timer() override { g_source_set_ready_time(&timer_->source, -1); }

  void set_fd_interest(int fd, IoEvents events) override {
    auto it = fds_.find(fd);
    if (it != fds_.end()) {
      // kNone keeps the source, polled for nothing, until release_fd().
      it->second->interest = events;
      g_source_modify_unix_fd(&it->second->source, it->second->tag, condition_of(events));
      return;
    }
    if (events == IoEvents::kNone) return;
    // poll() would report a closed descriptor as POLLNVAL forever: refuse it here instead.
    if (fcntl(fd, F_GETFD) == -1) {
      throw std::system_error(errno, std::generic_category(),
                              "weft: glib: cannot watch fd " + std::to_string(fd));
    }
    auto* source = reinterpret_cast<FdSource*>(g_source_new(&fd_funcs, sizeof(FdSource)));
    source->backend = this;
    source->fd = fd;
    source->interest = events;
    source->tag = g_source_add_unix_fd(&source->source, fd, condition_of(events));
    g_source_attach(&source->source, context_);
    fds_.emplace(fd, source);
  }

  void release_fd(int fd) override {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;
    destroy(&it->second->source);
    fds_.erase(it);
  }

  void after_fork_in_child() override {
    // Nothing to replace: GLib polls with poll(), so no kernel set is shared with the parent,
    // and its wake-up descriptor is closed, not written, when the context goes.
  }

  void timer_fired() {
    clear_timer();  // a firing disarms, as the contract says
    hooks_.timer_expired();
  }

  void fd_fired(FdSource* source) {
    const unsigned condition = g_source_query_unix_fd(&source->source, source->tag);
    IoEvents ready = IoEvents::kNone;
    if (condition & (G_IO_IN | G_IO_PRI)) ready = ready | IoEvents::kReadable;
    if (condition & G_IO_OUT) ready = ready | IoEvents::kWritable;
    // Hang-up and errors: let the watchers' own I/O calls report them.
    if (condition & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) ready = IoEvents::kBoth;
    // Only what is asked for now: an earlier callback of this iteration may have changed it.
    ready = ready & source->interest;
    if (weft::any(ready)) hooks_.fd_ready(source->fd, ready);
  }

 private:
  // GLib ends the process (g_error) if its wake-up descriptor cannot be made: check that one
  // can be, so that running out is an exception (EMFILE) instead, as the contract requires.
  static GMainContext* new_context() {
    const int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe == -1) {
      throw std::system_error(errno, std::generic_category(),
                              "weft: glib: cannot make a GMainContext");
    }
    close(probe);
    return g_main_context_new();
  }

  static void destroy(GSource* source) {
    g_source_destroy(source);
    g_source_unref(source);
  }

  weft::LoopHooks& hooks_;
  GMainContext* const context_;
  TimerSource* timer_ = nullptr;
  std::unordered_map<int, FdSource*> fds_;
  bool turn_requested_ = false;
  std::atomic<bool> woken_{false};
};

gboolean dispatch_timer(GSource* source, GSourceFunc, gpointer) {
  reinterpret_cast<TimerSource*>(source)->backend->timer_fired();
  return G_SOURCE_CONTINUE;
}

gboolean dispatch_fd(GSource* source, GSourceFunc, gpointer) {
  // GLib holds a reference during dispatch: the source may be destroyed by the callback.
  auto* fd_source = reinterpret_cast<FdSource*>(source);
  fd_source->backend->fd_fired(fd_source);
  return G_SOURCE_CONTINUE;
}

const weft::BackendRegistration kRegistration(weft::BackendInfo{
    .name = "glib",
    .mechanism = "poll",
    .preference = 50,
    .factory = [](weft::LoopHooks& hooks) -> std::unique_ptr<weft::Backend> {
      return std::make_unique<GlibBackend>(hooks);
    },
});

}  // namespace
}  // namespace weft_glib

// The plugin's entry point: weft checks its version and ABI tag before it keeps "glib".
WEFT_BACKEND_PLUGIN("glib");
