#include "examples/cli/get_command.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "examples/cli/options.h"
#include "examples/http/http_client.h"
#include "weft/core/errors.h"
#include "weft/runners/guest_reactor.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"

namespace weft::cli {
namespace {

constexpr const char* kGetUsage =
    "usage: weft get URL [--backend NAME] [--runner NAME]\n"
    "  fetches an http:// URL (no TLS) and writes the body to standard output\n";

// The host application for `--runner host`: a poll() loop on its own thread, weft its guest.
class PollHost {
 public:
  explicit PollHost(const std::string& backend) {
    if (pipe2(stop_pipe_, O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::generic_category(), "weft get: pipe2");
    }
    thread_ = std::thread([this, backend] {
      std::optional<GuestReactor> guest;
      std::exception_ptr error;
      try {
        guest.emplace(backend);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard lock(mu_);
        guest_ = guest ? &*guest : nullptr;
        error_ = error;
        ready_ = true;
        cv_.notify_one();
      }
      if (!guest) return;
      for (;;) {
        pollfd fds[2] = {{.fd = guest->fd(), .events = POLLIN, .revents = 0},
                         {.fd = stop_pipe_[0], .events = POLLIN, .revents = 0}};
        int timeout_ms = -1;
        if (auto timeout = guest->timeout()) {
          timeout_ms = static_cast<int>(std::min<std::int64_t>(
              std::chrono::ceil<std::chrono::milliseconds>(*timeout).count(), INT_MAX));
        }
        poll(fds, 2, timeout_ms);
        if (fds[1].revents != 0) break;
        guest->step();
      }
    });
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return ready_; });
    if (error_) {
      lock.unlock();
      stop();
      std::rethrow_exception(error_);
    }
  }
  ~PollHost() { stop(); }
  Reactor& reactor() { return guest_->reactor(); }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  void stop() {
    if (!thread_.joinable()) return;
    [[maybe_unused]] ssize_t n = write(stop_pipe_[1], "x", 1);
    thread_.join();
    close(stop_pipe_[0]);
    close(stop_pipe_[1]);
  }

  int stop_pipe_[2] = {-1, -1};  // written once, to end the host's loop
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  GuestReactor* guest_ = nullptr;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace

int run_get_command(const std::vector<std::string_view>& args) {
  std::string backend, runner_name;
  std::vector<std::string> positional;
  if (std::optional<int> status = parse_command_line(
          args, {.command = "get",
                 .usage = kGetUsage,
                 .options = {{"--backend", "name", &backend}, {"--runner", "name", &runner_name}},
                 .positional = &positional,
                 .max_positional = 1,
                 .positional_error = "get takes one URL"})) {
    return *status;
  }
  if (positional.empty()) return usage_error("get needs a URL", kGetUsage);
  const std::string& url_text = positional.front();
  const std::optional<http::Url> url = http::Url::parse(url_text);
  if (!url) {
    return usage_error("bad URL '" + url_text + "': expected http://HOST[:PORT][/PATH] (no https)",
                       kGetUsage);
  }
  std::unique_ptr<PollHost> host;
  std::unique_ptr<Runner> runner;
  try {
    RunnerOptions options{.backend = backend};
    const RunnerInfo chosen = find_runner(runner_name);
    if (chosen.needs_host) {
      host = std::make_unique<PollHost>(backend);
      options.host = &host->reactor();
      options.host_thread = host->thread_id();
    }
    runner = make_runner(chosen.name, options);
  } catch (const UnknownNameError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  try {
    const http::Response response = runner->run(http::get(*url), std::chrono::seconds(60));
    runner.reset();
    host.reset();
    if (response.status < 200 || response.status > 299) {
      std::fprintf(stderr, "weft: get %s: HTTP %d %s\n", url_text.c_str(), response.status,
                   response.reason.c_str());
      return 1;
    }
    if (std::fwrite(response.body.data(), 1, response.body.size(), stdout) !=
            response.body.size() ||
        std::fflush(stdout) != 0) {
      std::fprintf(stderr, "weft: get: cannot write the body to standard output\n");
      return 1;
    }
    return 0;
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    std::fprintf(stderr, "%s%s\n", what.starts_with("weft: ") ? "" : "weft: ", what.c_str());
    return 1;
  } catch (const std::exception& e) {
    const std::string what = e.what();
    std::fprintf(stderr, "%s%s\n", what.starts_with("weft: ") ? "" : "weft: ", what.c_str());
    return 1;
  }
}

}  // namespace weft::cli
