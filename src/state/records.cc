#include "state/records.h"

#include <array>
#include <utility>

namespace adhoc::state {
namespace {

template <typename E, size_t N>
using Names = std::array<std::pair<E, std::string_view>, N>;

constexpr Names<EnvStatus, 6> kEnvStatuses{{{EnvStatus::kCreating, "creating"},
                                            {EnvStatus::kRunning, "running"},
                                            {EnvStatus::kUpdating, "updating"},
                                            {EnvStatus::kSleeping, "sleeping"},
                                            {EnvStatus::kFailed, "failed"},
                                            {EnvStatus::kDestroying, "destroying"}}};
constexpr Names<TaskStatus, 6> kTaskStatuses{{{TaskStatus::kStarting, "starting"},
                                              {TaskStatus::kHealthy, "healthy"},
                                              {TaskStatus::kUnhealthy, "unhealthy"},
                                              {TaskStatus::kExited, "exited"},
                                              {TaskStatus::kFailed, "failed"},
                                              {TaskStatus::kStopped, "stopped"}}};
constexpr Names<RouteKind, 2> kRouteKinds{
    {{RouteKind::kService, "service"}, {RouteKind::kFolder, "folder"}}};
constexpr Names<OperationStatus, 4> kOperationStatuses{{{OperationStatus::kRunning, "running"},
                                                        {OperationStatus::kDone, "done"},
                                                        {OperationStatus::kFailed, "failed"},
                                                        {OperationStatus::kUndone, "undone"}}};
constexpr Names<StepStatus, 5> kStepStatuses{{{StepStatus::kPending, "pending"},
                                              {StepStatus::kRunning, "running"},
                                              {StepStatus::kDone, "done"},
                                              {StepStatus::kFailed, "failed"},
                                              {StepStatus::kUndone, "undone"}}};

template <typename E, size_t N>
std::string_view NameOf(const Names<E, N>& names, E value) {
  for (const auto& [v, name] : names)
    if (v == value) return name;
  return "unknown";
}

template <typename E, size_t N>
Result<E> ValueOf(const Names<E, N>& names, std::string_view name, std::string_view what) {
  for (const auto& [v, n] : names)
    if (n == name) return v;
  return BadInput("unknown " + std::string(what) + " '" + std::string(name) + "'");
}

}  // namespace

std::string_view ToString(EnvStatus s) { return NameOf(kEnvStatuses, s); }
std::string_view ToString(TaskStatus s) { return NameOf(kTaskStatuses, s); }
std::string_view ToString(RouteKind k) { return NameOf(kRouteKinds, k); }
std::string_view ToString(OperationStatus s) { return NameOf(kOperationStatuses, s); }
std::string_view ToString(StepStatus s) { return NameOf(kStepStatuses, s); }

Result<EnvStatus> ParseEnvStatus(std::string_view s) {
  return ValueOf(kEnvStatuses, s, "environment status");
}
Result<TaskStatus> ParseTaskStatus(std::string_view s) {
  return ValueOf(kTaskStatuses, s, "task status");
}
Result<RouteKind> ParseRouteKind(std::string_view s) {
  return ValueOf(kRouteKinds, s, "route kind");
}
Result<OperationStatus> ParseOperationStatus(std::string_view s) {
  return ValueOf(kOperationStatuses, s, "operation status");
}
Result<StepStatus> ParseStepStatus(std::string_view s) {
  return ValueOf(kStepStatuses, s, "step status");
}

}  // namespace adhoc::state
