#include "weft/net/resolver.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "weft/core/detail/suspension.h"
#include "weft/core/reactor.h"

namespace weft::net {
namespace {

class GaiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int code) const override { return gai_strerror(code); }
};

// One lookup, shared by the awaiting task and the pool's thread. The thread delivers through
// call_from_thread only while `reactor` is set, under `mu`: the task clears it (under `mu`) when
// it stops waiting, which it does before its reactor can be destroyed.
struct Lookup {
  std::string host;
  std::string service;
  std::mutex mu;
  Reactor* reactor = nullptr;  // guarded by mu
  // Written by the pool's thread before delivery; read on the loop thread after it.
  std::vector<Address> addresses;
  std::error_code error;
  // Loop thread only.
  void (*deliver)(void* awaiter) = nullptr;
  void* awaiter = nullptr;
};

// The pool: up to kLookupThreads threads, started as lookups queue up, detached (they own the
// shared state), and stopping when the queue has been empty for a while, so an idle process
// keeps none. Threads never block exit: a lookup in progress is simply abandoned.
class LookupPool {
 public:
  static LookupPool& instance() {
    static auto* pool = new LookupPool;  // never destroyed: its threads may outlive main()
    return *pool;
  }

  void submit(std::shared_ptr<Lookup> lookup) {
    std::lock_guard lock(state_->mu);
    state_->queue.push_back(std::move(lookup));
    if (state_->idle > 0) {
      state_->cv.notify_one();
    } else if (state_->threads < kLookupThreads) {
      ++state_->threads;
      std::thread([state = state_] { work(*state); }).detach();
    }
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::shared_ptr<Lookup>> queue;
    int threads = 0;
    int idle = 0;
  };

  static void work(State& state) {
    std::unique_lock lock(state.mu);
    for (;;) {
      ++state.idle;
      const bool got = state.cv.wait_for(lock, std::chrono::seconds(10),
                                         [&state] { return !state.queue.empty(); });
      --state.idle;
      if (!got) {
        --state.threads;
        return;
      }
      std::shared_ptr<Lookup> lookup = std::move(state.queue.front());
      state.queue.pop_front();
      lock.unlock();
      run(std::move(lookup));
      lock.lock();
    }
  }

  static void run(std::shared_ptr<Lookup> shared) {
    Lookup& lookup = *shared;
    {
      std::lock_guard lock(lookup.mu);
      if (lookup.reactor == nullptr) return;  // abandoned before it started
    }
    ::addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ::addrinfo* result = nullptr;
    const int status = getaddrinfo(lookup.host.c_str(), lookup.service.c_str(), &hints, &result);
    if (status == EAI_SYSTEM) {
      lookup.error = std::error_code(errno, std::system_category());
    } else if (status != 0) {
      lookup.error = std::error_code(status, resolver_category());
    } else {
      for (::addrinfo* it = result; it != nullptr; it = it->ai_next) {
        Address address = Address::from_sockaddr(it->ai_addr, it->ai_addrlen);
        if (address.family() != Address::Family::kNone) lookup.addresses.push_back(address);
      }
      freeaddrinfo(result);
    }
    std::lock_guard lock(lookup.mu);
    if (Reactor* reactor = lookup.reactor) {
      reactor->call_from_thread([shared] {
        if (shared->deliver != nullptr) shared->deliver(shared->awaiter);
      });
    }
  }

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

class LookupAwaiter : public weft::detail::Suspension {
 public:
  explicit LookupAwaiter(std::shared_ptr<Lookup> lookup) : lookup_(std::move(lookup)) {}
  ~LookupAwaiter() {
    if (suspended()) abandon();
  }

  template <weft::detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    weft::detail::TaskContext& context = *handle.promise().context();
    if (!begin(handle, context, &LookupAwaiter::stop)) return false;
    lookup_->deliver = &LookupAwaiter::deliver;
    lookup_->awaiter = this;
    {
      std::lock_guard lock(lookup_->mu);
      lookup_->reactor = context.reactor;
    }
    // The answer comes from another thread: on virtual time the loop must neither jump ahead
    // nor declare a deadlock while the lookup runs. Held here, on the loop side (not in the
    // shared Lookup, which the pool's thread may keep past the reactor's life).
    expected_ = context.reactor->expect_call_from_thread();
    LookupPool::instance().submit(lookup_);
    return true;
  }

 private:
  static void deliver(void* self) {
    auto* awaiter = static_cast<LookupAwaiter*>(self);
    awaiter->expected_.release();
    awaiter->resume_now();
  }
  static bool stop(weft::detail::Suspension& self) {
    static_cast<LookupAwaiter&>(self).abandon();
    return true;
  }
  void abandon() {
    lookup_->deliver = nullptr;
    {
      std::lock_guard lock(lookup_->mu);
      lookup_->reactor = nullptr;
    }
    expected_.release();  // no answer will come
  }

  std::shared_ptr<Lookup> lookup_;
  Reactor::ExpectedCall expected_;
};

class SystemResolver final : public Resolver {
 public:
  Task<std::vector<Address>> resolve(std::string host, std::string service) override {
    auto lookup = std::make_shared<Lookup>();
    lookup->host = host;
    lookup->service = service;
    co_await LookupAwaiter(lookup);
    if (lookup->error) {
      throw std::system_error(lookup->error,
                              absl::StrCat("weft: resolve ", host, " (service ", service, ")"));
    }
    if (lookup->addresses.empty()) {
      throw std::system_error(EAI_NONAME, resolver_category(),
                              absl::StrCat("weft: resolve ", host, " (service ", service, ")"));
    }
    co_return std::move(lookup->addresses);
  }
};

struct ResolverSlot {
  std::mutex mu;
  std::shared_ptr<Resolver> current;
};
ResolverSlot& slot() {
  static auto* instance = new ResolverSlot;
  return *instance;
}

}  // namespace

const std::error_category& resolver_category() {
  static const GaiCategory category;
  return category;
}

std::shared_ptr<Resolver> system_resolver() {
  static const std::shared_ptr<Resolver> instance = std::make_shared<SystemResolver>();
  return instance;
}

std::shared_ptr<Resolver> set_resolver(std::shared_ptr<Resolver> resolver) {
  ResolverSlot& s = slot();
  std::lock_guard lock(s.mu);
  std::shared_ptr<Resolver> previous = std::move(s.current);
  s.current = std::move(resolver);
  return previous != nullptr ? previous : system_resolver();
}

Task<std::vector<Address>> resolve(std::string host, std::string service) {
  // Numeric host and port: no lookup at all.
  std::uint16_t port = 0;
  const auto [end, ec] = std::from_chars(service.data(), service.data() + service.size(), port);
  const bool numeric_port = ec == std::errc() && end == service.data() + service.size();
  std::string bare = host;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  if (numeric_port) {
    if (auto address = Address::from_ip(bare, port)) co_return std::vector<Address>{*address};
  }
  std::shared_ptr<Resolver> resolver;
  {
    ResolverSlot& s = slot();
    std::lock_guard lock(s.mu);
    resolver = s.current;
  }
  if (resolver == nullptr) resolver = system_resolver();
  co_return co_await resolver->resolve(std::move(host), std::move(service));
}

}  // namespace weft::net
