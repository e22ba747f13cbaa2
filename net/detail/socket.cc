#include "weft/net/detail/socket.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"

namespace weft::net::detail {

Socket::~Socket() {
  if (destroyed_ != nullptr) *destroyed_ = true;
  close();
}

void Socket::bind(Reactor& reactor) {
  if (reactor_ == &reactor) return;
  if (reactor_ != nullptr) {
    throw UsageError(absl::StrCat("weft: socket fd ", fd_, " belongs to reactor '",
                                  reactor_->name(), "', not '", reactor.name(), "'"));
  }
  if (fd_ < 0) return;
  io_ = IoHandle(reactor, fd_, [this](IoEvents ready) { on_ready(ready); });
  reactor_ = &reactor;
}

void Socket::charge(const IoRequest& request) {
  budget_used_ += request.transferred > kOperationCost ? request.transferred : kOperationCost;
}

bool Socket::start_read(IoRequest& request, bool try_first) {
  if (reader_ != nullptr) {
    throw UsageError("weft: a read is already pending on this socket (one reader at a time)");
  }
  request.pending = false;
  if (!try_first) {
    budget_used_ = 0;  // the wait is a natural yield
  } else if (budget_used_ < kBudgetPerTurn) {
    if (attempt_read_(owner_, fd_, request)) {
      charge(request);
      return true;
    }
    budget_used_ = 0;  // drained: the next wait is a natural yield
  } else {
    schedule_yield();
  }
  request.pending = true;
  reader_ = &request;
  update_interest();
  return false;
}

bool Socket::start_write(IoRequest& request) {
  request.pending = false;
  request.next = nullptr;
  // Behind others: keep the order (the queue's head is retried as the socket drains).
  if (writers_ == nullptr) {
    if (budget_used_ < kBudgetPerTurn) {
      if (attempt_write_(owner_, fd_, request)) {
        charge(request);
        return true;
      }
      budget_used_ = 0;
    } else {
      schedule_yield();
    }
  }
  request.pending = true;
  if (writers_tail_ != nullptr) {
    writers_tail_->next = &request;
  } else {
    writers_ = &request;
  }
  writers_tail_ = &request;
  update_interest();
  return false;
}

void Socket::start_write_after_wait(IoRequest& request) {
  request.pending = true;
  request.next = nullptr;
  if (writers_tail_ != nullptr) {
    writers_tail_->next = &request;
  } else {
    writers_ = &request;
  }
  writers_tail_ = &request;
  update_interest();
}

bool Socket::cancel_read(IoRequest& request) {
  if (!request.pending || reader_ != &request) return false;
  reader_ = nullptr;
  request.pending = false;
  // Readable interest stays armed (lazy disarm): the next read is likely soon.
  return true;
}

bool Socket::cancel_write(IoRequest& request) {
  if (!request.pending) return false;
  IoRequest* previous = nullptr;
  for (IoRequest* it = writers_; it != nullptr; previous = it, it = it->next) {
    if (it != &request) continue;
    (previous != nullptr ? previous->next : writers_) = it->next;
    if (writers_tail_ == it) writers_tail_ = previous;
    request.pending = false;
    request.next = nullptr;
    update_interest();
    return true;
  }
  return false;
}

void Socket::fail_later(IoRequest& request, int error) {
  request.pending = false;
  request.next = nullptr;
  request.error = error;
  reactor_->call_soon([&request] { request.on_complete(request); });
}

void Socket::close(int error) {
  if (reader_ != nullptr) fail_later(*std::exchange(reader_, nullptr), error);
  while (writers_ != nullptr) {
    IoRequest* request = writers_;
    writers_ = request->next;
    fail_later(*request, error);
  }
  writers_tail_ = nullptr;
  if (yield_ != nullptr) {
    yield_->socket = nullptr;
    // The queued callback still holds the token unless the reactor dropped it (it is being or
    // was destroyed): only then is the handle's reactor gone.
    if (yield_.use_count() > 1) yield_call_.cancel();
    yield_.reset();
  }
  io_.reset();
  read_armed_ = write_armed_ = false;
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void Socket::update_interest() {
  if (!io_) {
    if (reactor_ == nullptr) return;  // unbound: nothing is waiting yet
    return;
  }
  const bool want_read = reader_ != nullptr || read_armed_;
  const bool want_write = writers_ != nullptr;
  if (want_read == read_armed_ && want_write == write_armed_) return;
  IoEvents events = IoEvents::kNone;
  if (want_read) events = events | IoEvents::kReadable;
  if (want_write) events = events | IoEvents::kWritable;
  io_.set_interest(events);
  read_armed_ = want_read;
  write_armed_ = want_write;
}

void Socket::on_ready(IoEvents ready) {
  const bool readable = any(ready & IoEvents::kReadable);
  if (readable && reader_ == nullptr) read_armed_ = false;  // nobody waits: disarm (lazily)
  if (!drive(readable, any(ready & IoEvents::kWritable), true)) return;
  update_interest();
}

bool Socket::drive(bool read, bool write, bool from_readiness) {
  bool destroyed = false;
  destroyed_ = &destroyed;
  // Writes first: a request/response peer drains its replies before reading more. Completions
  // here count against the turn's budget like those made at once: the task resumed by one
  // completion often queues its next write at once, and without the count this loop would go
  // on until the socket is full (a writer filling megabytes per turn while its reader, capped,
  // fell behind: loopback throughput dropped to 0.3x of raw libuv's, the receiver's window
  // stuck small and every read paying for the sender's queued segments).
  if (write) {
    while (writers_ != nullptr) {
      if (budget_used_ >= kBudgetPerTurn) {
        schedule_yield();
        break;
      }
      IoRequest& request = *writers_;
      if (!attempt_write_(owner_, fd_, request)) {
        if (from_readiness) budget_used_ = 0;
        break;
      }
      charge(request);
      writers_ = request.next;
      if (writers_ == nullptr) writers_tail_ = nullptr;
      request.pending = false;
      request.next = nullptr;
      request.on_complete(request);
      if (destroyed) return false;
      if (fd_ < 0) break;
    }
  }
  if (read && reader_ != nullptr && fd_ >= 0) {
    if (budget_used_ >= kBudgetPerTurn) {
      schedule_yield();
    } else {
      IoRequest& request = *reader_;
      if (attempt_read_(owner_, fd_, request)) {
        charge(request);
        reader_ = nullptr;
        request.pending = false;
        request.on_complete(request);
        if (destroyed) return false;
      } else if (from_readiness) {
        budget_used_ = 0;
      }
    }
  }
  destroyed_ = nullptr;
  return true;
}

void Socket::schedule_yield() {
  if (yield_ != nullptr || reactor_ == nullptr) return;
  yield_ = std::make_shared<YieldToken>(YieldToken{this});
  yield_call_ = reactor_->call_soon([token = yield_] {
    Socket* self = token->socket;
    if (self == nullptr) return;
    self->yield_.reset();
    self->budget_used_ = 0;
    if (!self->drive(self->reader_ != nullptr, self->writers_ != nullptr, false)) return;
    self->update_interest();
  });
}

}  // namespace weft::net::detail
