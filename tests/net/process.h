// A child process for the real-peer tests (python3, nginx, curl, socat): started with
// posix_spawn, its stdout captured, stopped (SIGTERM, then SIGKILL) and reaped when destroyed,
// so no test leaves a server behind.
#ifndef WEFT_TESTS_NET_PROCESS_H_
#define WEFT_TESTS_NET_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace weft::testing {

// The first of `names` found on $PATH (or as an absolute path), else "".
inline std::string find_program(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (name[0] == '/') {
      if (access(name, X_OK) == 0) return name;
      continue;
    }
    const char* path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
      const std::size_t end = dirs.find(':', start);
      std::string candidate =
          dirs.substr(start, end == std::string::npos ? std::string::npos : end - start) + "/" +
          name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  return "";
}

class Process {
 public:
  // Starts `argv`. Its stdout goes to one end of a socketpair (stdout_fd() is the other, so a
  // weft Stream can adopt it); stderr goes to ours unless `quiet`.
  explicit Process(const std::vector<std::string>& argv, bool quiet = false) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pair[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (quiet) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(pair[1]);
    stdout_fd_ = pair[0];
  }
  ~Process() {
    stop();
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  // Hands the stdout descriptor over (to a Stream); the Process no longer closes it.
  int take_stdout() { return std::exchange(stdout_fd_, -1); }
  // Blocking: a line of stdout, waiting at most `limit`.
  std::optional<std::string> read_line(std::chrono::milliseconds limit) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char c;
      if (read(stdout_fd_, &c, 1) != 1) return std::nullopt;
      if (c == '\n') return line;
      line += c;
    }
    return std::nullopt;
  }
  // Blocking: everything on stdout until EOF, then the exit status (-1 if killed).
  std::pair<std::string, int> finish(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buffer[65536];
      const ssize_t n = read(stdout_fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return {out, wait(deadline)};
  }
  // Waits for the exit, at most until `deadline`; then kills. Returns the exit status or -1.
  int wait(std::chrono::steady_clock::time_point deadline) {
    if (pid_ <= 0) return -1;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop();
    return -1;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_NET_PROCESS_H_
