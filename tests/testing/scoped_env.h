// ScopedEnv: sets (or, given nullptr, unsets) an environment variable for a scope's life, then
// puts back what was there. weft reads WEFT_BACKEND, WEFT_RUNNER and WEFT_TIMER when something
// is made, so what is made inside the scope sees the value. Not thread-safe (setenv).
#ifndef WEFT_TESTS_TESTING_SCOPED_ENV_H_
#define WEFT_TESTS_TESTING_SCOPED_ENV_H_

#include <cstdlib>
#include <optional>
#include <string>

namespace weft::testing {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    set(value);
  }
  ~ScopedEnv() { set(old_ ? old_->c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void set(const char* value) {
    if (value != nullptr) {
      setenv(name_, value, 1);
    } else {
      unsetenv(name_);
    }
  }

  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_SCOPED_ENV_H_
