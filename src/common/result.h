// Result<T> and Status: how every module reports failure across its boundary.
//
// No exceptions cross a module boundary. A failure is an Error with a kind that
// decides the process exit status (kBadInput -> 2, everything else -> 1) and a
// message that grows context as it travels up:
//   "creating database 'feature-abc-db': role exists".
// Values are cheap to move; Results are not thread-safe, like any value.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace adhoc {

enum class ErrorKind {
  kBadInput,  // a bad file, argument or name: the user must change something (exit 2)
  kNotFound,  // a named thing does not exist (exit 1)
  kConflict,  // already exists, locked, in use (exit 1)
  kFailed,    // an operation failed (exit 1)
};

class Error {
 public:
  Error(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // The process exit status this error calls for (DESIGN: 2 bad usage or file, 1 failed).
  int exit_code() const { return kind_ == ErrorKind::kBadInput ? 2 : 1; }

  // Prepends "what: " so the outermost caller's words come first.
  Error& context(const std::string& what) {
    message_ = what + ": " + message_;
    return *this;
  }

 private:
  ErrorKind kind_;
  std::string message_;
};

inline Error BadInput(std::string message) {
  return Error(ErrorKind::kBadInput, std::move(message));
}
inline Error NotFound(std::string message) {
  return Error(ErrorKind::kNotFound, std::move(message));
}
inline Error Conflict(std::string message) {
  return Error(ErrorKind::kConflict, std::move(message));
}
inline Error Failed(std::string message) { return Error(ErrorKind::kFailed, std::move(message)); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

  // On failure, prepends context to the message; a success passes through.
  Result&& context(const std::string& what) && {
    if (!ok()) std::get<1>(v_).context(what);
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

// A Result without a value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design
  template <typename T>
  Status(const Result<T>& r) {  // NOLINT: a failed Result converts to its Status
    if (!r.ok()) error_ = r.error();
  }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(!ok());
    return *error_;
  }

  Status&& context(const std::string& what) && {
    if (error_) error_->context(what);
    return std::move(*this);
  }

 private:
  std::optional<Error> error_;
};

inline Status OkStatus() { return Status(); }

}  // namespace adhoc

// Returns early with the error of a failed Status or Result expression.
#define ADHOC_RETURN_IF_ERROR(expr)                        \
  do {                                                     \
    auto adhoc_status_ = (expr);                           \
    if (!adhoc_status_.ok()) return adhoc_status_.error(); \
  } while (0)

#define ADHOC_CONCAT_INNER(a, b) a##b
#define ADHOC_CONCAT(a, b) ADHOC_CONCAT_INNER(a, b)
// ADHOC_ASSIGN_OR_RETURN(auto x, MakeX()): binds the value or returns the error.
#define ADHOC_ASSIGN_OR_RETURN(lhs, expr)                            \
  auto ADHOC_CONCAT(adhoc_result_, __LINE__) = (expr);               \
  if (!ADHOC_CONCAT(adhoc_result_, __LINE__).ok())                   \
    return std::move(ADHOC_CONCAT(adhoc_result_, __LINE__)).error(); \
  lhs = std::move(ADHOC_CONCAT(adhoc_result_, __LINE__)).value()
