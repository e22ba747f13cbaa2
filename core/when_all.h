// when_all / when_any: await several tasks at once (asyncio.gather and wait(FIRST_COMPLETED),
// Twisted's DeferredList, corral's allOf / anyOf), written on task groups.
//
//   auto [a, b] = co_await weft::when_all(fetch_a(), fetch_b());  // both values
//   std::vector<int> all = co_await weft::when_all(std::move(tasks));
//   auto first = co_await weft::when_any(primary(), fallback());  // std::variant, .index()
//   weft::AnyResult<int> won = co_await weft::when_any(std::move(tasks));  // {index, value}
//
// Each task runs as a child of a task group opened by the combinator, so the group's rules
// hold: the tasks start in the next turn, none outlives the combinator, a cancellation of
// the awaiting task reaches all of them, and failures come back as the group's (one as
// itself, several as TaskGroupError).
//
// when_all returns every result, in argument order (std::monostate for Task<void>); the
// first failure cancels the rest. when_any returns the first task to finish, with its index;
// the others are then cancelled and awaited (their cleanup, including awaits in a shield,
// runs before when_any returns). If the first to finish fails, when_any rethrows that.
//
// Completion contract: completes exactly once, after every task has finished.
// Threading: inside a task, on its reactor's loop thread.
#ifndef WEFT_CORE_WHEN_ALL_H_
#define WEFT_CORE_WHEN_ALL_H_

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "weft/core/errors.h"
#include "weft/core/task.h"
#include "weft/core/task_group.h"

namespace weft {

// What a Task<T> contributes to a combinator's result: T, or std::monostate for void.
template <typename T>
using ResultOf = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// when_any over a vector: which task finished first, and its value.
template <typename T>
struct AnyResult {
  std::size_t index;
  ResultOf<T> value;
};

namespace detail {

template <typename T>
Task<void> store_result(Task<T> task, std::optional<ResultOf<T>>* slot) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    slot->emplace();
  } else {
    slot->emplace(co_await std::move(task));
  }
}

// Runs one racer; the first to finish records itself and cancels the rest.
template <typename T, typename Record>
Task<void> race(Task<T> task, TaskGroup* group, bool* decided, Record record) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    if (*decided) co_return;
    *decided = true;
    record(std::monostate{});
  } else {
    T value = co_await std::move(task);
    if (*decided) co_return;
    *decided = true;
    record(std::move(value));
  }
  group->cancel();
}

template <typename... T, std::size_t... I>
Task<std::tuple<ResultOf<T>...>> when_all_impl(std::index_sequence<I...>, Task<T>... tasks) {
  std::tuple<std::optional<ResultOf<T>>...> slots;
  std::tuple<Task<T>...> pending(std::move(tasks)...);
  co_await open_task_group([&slots, &pending](TaskGroup& group) -> Task<void> {
    (group.start_soon(store_result(std::move(std::get<I>(pending)), &std::get<I>(slots))), ...);
    co_return;
  });
  co_return std::tuple<ResultOf<T>...>(std::move(*std::get<I>(slots))...);
}

template <typename... T, std::size_t... I>
Task<std::variant<ResultOf<T>...>> when_any_impl(std::index_sequence<I...>, Task<T>... tasks) {
  using Result = std::variant<ResultOf<T>...>;
  std::optional<Result> winner;
  bool decided = false;
  std::tuple<Task<T>...> pending(std::move(tasks)...);
  co_await open_task_group([&winner, &decided, &pending](TaskGroup& group) -> Task<void> {
    (group.start_soon(race(std::move(std::get<I>(pending)), &group, &decided,
                           [&winner](auto&& value) {
                             winner.emplace(std::in_place_index<I>,
                                            std::forward<decltype(value)>(value));
                           })),
     ...);
    co_return;
  });
  if (!winner) throw Cancelled();  // every task was cancelled before one finished
  co_return std::move(*winner);
}

}  // namespace detail

template <typename... T>
Task<std::tuple<ResultOf<T>...>> when_all(Task<T>... tasks) {
  return detail::when_all_impl(std::index_sequence_for<T...>(), std::move(tasks)...);
}

template <typename T>
Task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(
    std::vector<Task<T>> tasks) {
  std::vector<std::optional<ResultOf<T>>> slots(tasks.size());
  co_await open_task_group([&slots, &tasks](TaskGroup& group) -> Task<void> {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      group.start_soon(detail::store_result(std::move(tasks[i]), &slots[i]));
    }
    co_return;
  });
  if constexpr (!std::is_void_v<T>) {
    std::vector<T> values;
    values.reserve(slots.size());
    for (std::optional<T>& slot : slots) values.push_back(std::move(*slot));
    co_return values;
  }
}

template <typename... T>
requires(sizeof...(T) > 0) Task<std::variant<ResultOf<T>...>> when_any(Task<T>... tasks) {
  return detail::when_any_impl(std::index_sequence_for<T...>(), std::move(tasks)...);
}

// Throws std::invalid_argument for an empty vector (nothing could ever finish first).
template <typename T>
Task<AnyResult<T>> when_any(std::vector<Task<T>> tasks) {
  if (tasks.empty()) throw std::invalid_argument("weft: when_any of no tasks");
  std::optional<AnyResult<T>> winner;
  bool decided = false;
  co_await open_task_group([&winner, &decided, &tasks](TaskGroup& group) -> Task<void> {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      group.start_soon(
          detail::race(std::move(tasks[i]), &group, &decided, [&winner, i](ResultOf<T> value) {
            winner.emplace(AnyResult<T>{i, std::move(value)});
          }));
    }
    co_return;
  });
  if (!winner) throw Cancelled();
  co_return std::move(*winner);
}

}  // namespace weft

#endif  // WEFT_CORE_WHEN_ALL_H_
