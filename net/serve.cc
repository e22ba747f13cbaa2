#include "weft/net/serve.h"

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft::net {
namespace {

bool out_of_resources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// The connection tasks serve() started and that have not finished: cancelled with it.
class Connections {
 public:
  // Only if serve()'s frame is destroyed without finishing (its reactor went away).
  ~Connections() {
    for (Deferred<void>& deferred : snapshot()) deferred.cancel();
  }
  // Cancels every connection task and waits until each has finished its cleanup.
  Task<void> stop_all() {
    std::vector<Deferred<void>> live = snapshot();
    for (Deferred<void>& deferred : live) deferred.cancel();
    for (Deferred<void>& deferred : live) {
      try {
        co_await deferred;
      } catch (...) {
        // Reported by the errback added in add().
      }
    }
  }
  void add(Reactor& reactor, Deferred<void> done, std::string peer) {
    const std::uint64_t id = next_id_++;
    live_->emplace(id, done);
    done.add_callbacks(
        [live = live_, id] { live->erase(id); },
        [live = live_, id, &reactor, peer = std::move(peer)](std::exception_ptr error) {
          live->erase(id);
          try {
            std::rethrow_exception(error);
          } catch (const Cancelled&) {
          } catch (...) {
            reactor.report_error(std::current_exception(),
                                 absl::StrCat("serve: connection handler for ", peer));
          }
        });
  }

 private:
  // A copy: a cancelled task that finishes at once erases itself from the map.
  std::vector<Deferred<void>> snapshot() const {
    std::vector<Deferred<void>> live;
    for (auto& [id, deferred] : *live_) live.push_back(deferred);
    return live;
  }

  std::shared_ptr<absl::flat_hash_map<std::uint64_t, Deferred<void>>> live_ =
      std::make_shared<absl::flat_hash_map<std::uint64_t, Deferred<void>>>();
  std::uint64_t next_id_ = 0;
};

}  // namespace

Task<void> serve(Listener& listener, ConnectionHandler handler) {
  Reactor& reactor = *Reactor::current();
  Connections connections;
  std::exception_ptr failure;
  try {
    for (;;) {
      Stream stream;
      bool backoff = false;
      try {
        stream = co_await listener.accept();
      } catch (const std::system_error& error) {
        if (error.code().category() != std::system_category() ||
            !out_of_resources(error.code().value())) {
          throw;
        }
        backoff = true;
      }
      if (backoff) {
        co_await sleep(kAcceptBackoff);  // out of descriptors or memory: let some be released
        continue;
      }
      std::string peer = stream.peer_address().to_string();
      connections.add(reactor, spawn(reactor, handler(std::move(stream))), std::move(peer));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  // Cancellation is level-triggered: waiting for the connections needs a shield.
  co_await shield(connections.stop_all());
  std::rethrow_exception(failure);
}

}  // namespace weft::net
