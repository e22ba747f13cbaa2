// What an exception_ptr holds, for the places that report or classify errors without
// rethrowing them to a caller (error handlers, unhandled-error reports, task groups).
//
// Threading: pure functions; safe anywhere.
#ifndef WEFT_CORE_DETAIL_EXCEPTION_TEXT_H_
#define WEFT_CORE_DETAIL_EXCEPTION_TEXT_H_

#include <exception>
#include <string>

namespace weft::detail {

// The exception's what(), or "non-standard exception".
inline std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
  }
}

// True if `error` holds an E (or a type derived from it).
template <typename E>
bool holds(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_EXCEPTION_TEXT_H_
