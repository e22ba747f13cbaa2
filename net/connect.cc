#include "weft/net/connect.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/deferred.h"
#include "weft/core/detail/suspension.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/spawn.h"
#include "weft/core/timer_handle.h"
#include "weft/net/detail/errors.h"
#include "weft/net/resolver.h"

namespace weft::net {
namespace {

// The race of connection attempts, as one awaiter: callbacks (readiness of each attempt, the
// attempt-delay timer, the deadline) drive it, and the awaiting task is resumed once, by the
// winner, the last failure or the deadline. No task per attempt: nothing to cancel but this.
class Race : public weft::detail::Suspension {
 public:
  Race(std::vector<Address> addresses, std::string label, const ConnectOptions& options,
       TimePoint deadline)
      : addresses_(std::move(addresses)),
        label_(std::move(label)),
        options_(options),
        deadline_(deadline) {}
  ~Race() {
    if (suspended()) halt();
  }

  template <weft::detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    weft::detail::TaskContext& context = *handle.promise().context();
    reactor_ = context.reactor;
    if (!begin(handle, context, &Race::stop)) return false;
    starting_ = true;
    if (deadline_ != TimePoint::max()) {
      deadline_timer_ = reactor_->call_at(deadline_, [this] {
        timed_out_ = true;
        finish();
      });
    }
    launch();
    starting_ = false;
    if (done_) {
      abort_begin();
      halt();
      return false;
    }
    return true;
  }

  // The winner, or throws.
  std::unique_ptr<StreamImpl> await_resume() {
    Suspension::await_resume();
    if (winner_ != nullptr) return std::move(winner_);
    if (timed_out_) {
      std::string message = absl::StrCat("weft: connect ", label_, ": timed out");
      for (const std::string& failure : failures_) absl::StrAppend(&message, "; ", failure);
      detail::throw_errno(ETIMEDOUT, message);
    }
    if (addresses_.size() == 1) {
      detail::throw_errno(first_error_, absl::StrCat("weft: connect ", label_));
    }
    std::string message = absl::StrCat("weft: connect ", label_, ": every address failed (");
    for (std::size_t i = 0; i < failures_.size(); ++i) {
      absl::StrAppend(&message, i == 0 ? "" : "; ", failures_[i]);
    }
    absl::StrAppend(&message, ")");
    detail::throw_errno(first_error_ != 0 ? first_error_ : ECONNREFUSED, message);
  }

 private:
  struct Attempt : IoRequest {
    Race* race = nullptr;
    Address address;
    std::unique_ptr<StreamImpl> impl;
  };

  // Starts the next address's attempt, skipping those that fail at once; arms the delay timer.
  void launch() {
    while (!done_ && next_ < addresses_.size()) {
      const Address& address = addresses_[next_++];
      auto attempt = std::make_unique<Attempt>();
      attempt->race = this;
      attempt->address = address;
      attempt->on_complete = &Race::attempt_done;
      if (options_.on_attempt) options_.on_attempt(address);
      bool finished = false;
      try {
        attempt->impl = transport_for(*reactor_).open_stream(*reactor_, address);
        finished = attempt->impl->start_connect(address, *attempt);
      } catch (const std::system_error& error) {
        attempt->error = error.code().value();
        finished = true;
      }
      if (finished) {
        if (settle(std::move(attempt))) return;
        continue;  // failed at once: on to the next address now
      }
      attempts_.push_back(std::move(attempt));
      if (next_ < addresses_.size()) {
        delay_timer_.cancel();
        delay_timer_ = reactor_->call_later(options_.attempt_delay, [this] { launch(); });
      }
      return;
    }
    if (!done_ && attempts_.empty()) finish();  // every address failed
  }

  static void attempt_done(IoRequest& request) {
    auto& attempt = static_cast<Attempt&>(request);
    Race& race = *attempt.race;
    std::unique_ptr<Attempt> owned;
    for (auto it = race.attempts_.begin(); it != race.attempts_.end(); ++it) {
      if (it->get() == &attempt) {
        owned = std::move(*it);
        race.attempts_.erase(it);
        break;
      }
    }
    if (race.settle(std::move(owned))) return;
    race.delay_timer_.cancel();  // it failed: the next attempt starts now
    race.launch();
  }

  // Records a finished attempt; true if it won (the race is then over).
  bool settle(std::unique_ptr<Attempt> attempt) {
    if (attempt->error == 0) {
      winner_ = std::move(attempt->impl);
      finish();
      return true;
    }
    if (first_error_ == 0) first_error_ = attempt->error;
    failures_.push_back(
        absl::StrCat(attempt->address.to_string(), ": ", std::strerror(attempt->error)));
    attempt->impl.reset();
    return false;
  }

  void finish() {
    if (done_) return;
    done_ = true;
    if (starting_) return;  // await_suspend sees done_ and does not suspend
    halt();
    resume_now();
  }

  // Closes every attempt still in flight and the timers.
  void halt() {
    delay_timer_.cancel();
    deadline_timer_.cancel();
    for (auto& attempt : attempts_) {
      if (attempt->pending) attempt->impl->cancel_write(*attempt);
    }
    attempts_.clear();
  }

  static bool stop(weft::detail::Suspension& self) {
    auto& race = static_cast<Race&>(self);
    race.done_ = true;
    race.halt();
    return true;
  }

  std::vector<Address> addresses_;
  std::string label_;
  const ConnectOptions& options_;
  TimePoint deadline_;
  Reactor* reactor_ = nullptr;
  std::size_t next_ = 0;
  std::vector<std::unique_ptr<Attempt>> attempts_;
  TimerHandle delay_timer_;
  TimerHandle deadline_timer_;
  std::unique_ptr<StreamImpl> winner_;
  std::vector<std::string> failures_;
  int first_error_ = 0;
  bool done_ = false;
  bool starting_ = false;
  bool timed_out_ = false;
};

void apply_options(Stream& stream, const Address& address, const ConnectOptions& options) {
  if (!address.is_ip()) return;
  if (options.nodelay) stream.set_nodelay(true);
  if (options.keepalive) stream.set_keepalive(true);
}

}  // namespace

std::vector<Address> interleave_families(const std::vector<Address>& addresses) {
  if (addresses.empty()) return {};
  const Address::Family first = addresses.front().family();
  std::vector<Address> preferred, other;
  for (const Address& address : addresses) {
    (address.family() == first ? preferred : other).push_back(address);
  }
  std::vector<Address> result;
  result.reserve(addresses.size());
  for (std::size_t i = 0; i < std::max(preferred.size(), other.size()); ++i) {
    if (i < preferred.size()) result.push_back(preferred[i]);
    if (i < other.size()) result.push_back(other[i]);
  }
  return result;
}

Task<Stream> connect_any(std::vector<Address> addresses, std::string label,
                         ConnectOptions options) {
  if (addresses.empty()) {
    detail::throw_errno(EADDRNOTAVAIL, absl::StrCat("weft: connect ", label, ": no address"));
  }
  Reactor& reactor = *Reactor::current();
  const TimePoint deadline = add_saturating(reactor.now(), options.timeout);
  std::unique_ptr<StreamImpl> impl =
      co_await Race(interleave_families(addresses), label, options, deadline);
  const Address peer = impl->peer_address();
  Stream stream(std::move(impl));
  apply_options(stream, peer, options);
  co_return stream;
}

Task<Stream> connect(Address address, ConnectOptions options) {
  std::vector<Address> addresses;
  addresses.push_back(address);
  co_return co_await connect_any(std::move(addresses), address.to_string(), std::move(options));
}

Task<Stream> connect(std::string host, std::uint16_t port, ConnectOptions options) {
  std::string label = host.find(':') != std::string::npos && !host.starts_with('[')
                          ? absl::StrCat("[", host, "]:", port)
                          : absl::StrCat(host, ":", port);
  Reactor& reactor = *Reactor::current();
  const TimePoint start = reactor.now();
  std::vector<Address> addresses;
  if (options.timeout == Duration::max()) {
    addresses = co_await resolve(host, std::to_string(port));
  } else {
    // The lookup counts against the connect timeout.
    CancelScope scope({.deadline = add_saturating(start, options.timeout)});
    std::optional<std::vector<Address>> found =
        co_await scope.run(resolve(host, std::to_string(port)));
    if (!found) {
      detail::throw_errno(ETIMEDOUT,
                          absl::StrCat("weft: connect ", label, ": timed out resolving the host"));
    }
    addresses = std::move(*found);
    const Duration spent = sub_saturating(reactor.now(), start);
    options.timeout = spent >= options.timeout ? Duration::zero() : options.timeout - spent;
  }
  co_return co_await connect_any(std::move(addresses), std::move(label), std::move(options));
}

}  // namespace weft::net
