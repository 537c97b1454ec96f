#include <gtest/gtest.h>

#include "common/paths.h"
#include "state/store.h"
#include "state/test_support.h"

namespace adhoc::state {
namespace {

using testing::TempDir;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes and opens the store again, as a restarted control plane would.
  void Reopen() {
    store_.reset();
    auto opened = Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    store_ = std::move(opened).value();
  }

  Operation Begin(const std::string& env, const std::string& kind,
                  const std::vector<std::string>& steps) {
    auto op = store_->BeginOperation(env, kind, R"({"versions":{"backend":"v1"}})", steps);
    EXPECT_TRUE(op.ok()) << op.error().message();
    return op.ok() ? *op : Operation{};
  }

  TempDir dir_;
  // 2023-11-14T22:13:20Z
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>(1'700'000'000'000);
  std::unique_ptr<Store> store_;
};

TEST_F(JournalTest, BeginRecordsTheOperationWithPendingSteps) {
  Operation op = Begin("demo", "up", {"build", "database", "redis"});
  EXPECT_GT(op.id, 0);
  EXPECT_EQ(op.env, "demo");
  EXPECT_EQ(op.kind, "up");
  EXPECT_EQ(op.status, OperationStatus::kRunning);
  EXPECT_EQ(op.started_at, 1'700'000'000'000);
  EXPECT_FALSE(op.finished_at.has_value());
  EXPECT_EQ(op.input_json, R"({"versions":{"backend":"v1"}})");
  ASSERT_EQ(op.steps.size(), 3u);
  EXPECT_EQ(op.steps[0].name, "build");
  EXPECT_EQ(op.steps[2].name, "redis");
  for (const Step& s : op.steps) EXPECT_EQ(s.status, StepStatus::kPending);
}

TEST_F(JournalTest, OnlyOneOperationRunsPerEnvironment) {
  Operation first = Begin("demo", "deploy", {"build"});
  clock_->Advance(1000);
  auto second = store_->BeginOperation("demo", "destroy", "{}", {"stop"});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind(), ErrorKind::kConflict);
  EXPECT_EQ(second.error().message(),
            "beginning destroy of environment 'demo': environment 'demo' is busy: operation " +
                std::to_string(first.id) + " (deploy) has been running since 2023-11-14T22:13:20Z");

  // Another environment is not affected.
  EXPECT_TRUE(store_->BeginOperation("other", "up", "{}", {}).ok());

  ASSERT_TRUE(store_->FinishOperation(first.id, OperationStatus::kDone).ok());
  EXPECT_TRUE(store_->BeginOperation("demo", "destroy", "{}", {"stop"}).ok());
}

TEST_F(JournalTest, StepsRecordTheirProgressAndUndoData) {
  Operation op = Begin("demo", "up", {"database", "redis", "services"});
  clock_->Advance(10);
  ASSERT_TRUE(store_->StartStep(op.id, "database").ok());
  clock_->Advance(10);
  ASSERT_TRUE(
      store_->CompleteStep(op.id, "database", R"({"drop_database":"demo-db","drop_role":"demo"})")
          .ok());
  ASSERT_TRUE(store_->StartStep(op.id, "redis").ok());
  clock_->Advance(10);
  ASSERT_TRUE(store_->FailStep(op.id, "redis", "port in use").ok());

  auto got = store_->GetOperation(op.id);
  ASSERT_TRUE(got.ok()) << got.error().message();
  const Step& database = got->steps[0];
  EXPECT_EQ(database.status, StepStatus::kDone);
  EXPECT_EQ(database.started_at, 1'700'000'000'010);
  EXPECT_EQ(database.finished_at, 1'700'000'000'020);
  EXPECT_EQ(database.undo_json, R"({"drop_database":"demo-db","drop_role":"demo"})");
  const Step& redis = got->steps[1];
  EXPECT_EQ(redis.status, StepStatus::kFailed);
  EXPECT_EQ(redis.error, "port in use");
  EXPECT_EQ(redis.finished_at, 1'700'000'000'030);
  EXPECT_EQ(got->steps[2].status, StepStatus::kPending);

  // Rolling back: the done step is undone, then the operation ends as undone.
  ASSERT_TRUE(store_->UndoStep(op.id, "database").ok());
  ASSERT_TRUE(store_->FinishOperation(op.id, OperationStatus::kUndone, "redis: port in use").ok());
  got = store_->GetOperation(op.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->steps[0].status, StepStatus::kUndone);
  EXPECT_EQ(got->steps[0].undo_json, R"({"drop_database":"demo-db","drop_role":"demo"})");
  EXPECT_EQ(got->status, OperationStatus::kUndone);
  EXPECT_EQ(got->error, "redis: port in use");
  EXPECT_EQ(got->finished_at, 1'700'000'000'030);
}

TEST_F(JournalTest, StepRulesAreEnforced) {
  Operation op = Begin("demo", "deploy", {"build", "roll"});
  auto unknown = store_->StartStep(op.id, "nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(unknown.error().message(), "starting step 'nope' of operation " +
                                           std::to_string(op.id) + ": operation " +
                                           std::to_string(op.id) + " has no such step");

  ASSERT_TRUE(store_->CompleteStep(op.id, "build", "{}").ok());
  auto redo = store_->StartStep(op.id, "build");
  ASSERT_FALSE(redo.ok());
  EXPECT_EQ(redo.error().kind(), ErrorKind::kConflict);
  EXPECT_FALSE(store_->UndoStep(op.id, "roll").ok());  // pending: nothing to undo

  ASSERT_TRUE(store_->AddStep(op.id, "cleanup").ok());
  EXPECT_FALSE(store_->AddStep(op.id, "cleanup").ok());  // names are unique
  EXPECT_EQ(store_->GetOperation(op.id)->steps.back().name, "cleanup");

  ASSERT_TRUE(store_->FinishOperation(op.id, OperationStatus::kDone).ok());
  auto late = store_->StartStep(op.id, "roll");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().kind(), ErrorKind::kConflict);
  EXPECT_FALSE(store_->FinishOperation(op.id, OperationStatus::kFailed).ok());
  EXPECT_EQ(store_->FinishOperation(op.id, OperationStatus::kRunning).error().kind(),
            ErrorKind::kBadInput);
}

TEST_F(JournalTest, DuplicateStepNamesLeaveNoOperationBehind) {
  auto op = store_->BeginOperation("demo", "up", "{}", {"build", "build"});
  ASSERT_FALSE(op.ok());
  EXPECT_EQ(op.error().kind(), ErrorKind::kConflict);
  auto unfinished = store_->ListUnfinishedOperations();
  ASSERT_TRUE(unfinished.ok());
  EXPECT_TRUE(unfinished->empty());
  EXPECT_TRUE(store_->BeginOperation("demo", "up", "{}", {"build"}).ok());
}

TEST_F(JournalTest, UnfinishedOperationsSurviveARestartWithTheirUndoData) {
  Operation done = Begin("a", "up", {"x"});
  ASSERT_TRUE(store_->FinishOperation(done.id, OperationStatus::kDone).ok());
  Operation interrupted = Begin("b", "up", {"database", "redis"});
  ASSERT_TRUE(store_->CompleteStep(interrupted.id, "database", R"({"drop":"b-db"})").ok());
  ASSERT_TRUE(store_->StartStep(interrupted.id, "redis").ok());
  Operation failed = Begin("c", "deploy", {"build"});
  ASSERT_TRUE(store_->FinishOperation(failed.id, OperationStatus::kFailed, "no tree").ok());
  Operation also_running = Begin("d", "sleep", {});

  Reopen();  // the control plane crashed and came back

  auto unfinished = store_->ListUnfinishedOperations();
  ASSERT_TRUE(unfinished.ok()) << unfinished.error().message();
  ASSERT_EQ(unfinished->size(), 2u);
  const Operation& b = (*unfinished)[0];
  EXPECT_EQ(b.id, interrupted.id);
  EXPECT_EQ(b.env, "b");
  ASSERT_EQ(b.steps.size(), 2u);
  EXPECT_EQ(b.steps[0].status, StepStatus::kDone);
  EXPECT_EQ(b.steps[0].undo_json, R"({"drop":"b-db"})");
  EXPECT_EQ(b.steps[1].status, StepStatus::kRunning);
  EXPECT_EQ((*unfinished)[1].id, also_running.id);
  // Recovery may retry the running step.
  EXPECT_TRUE(store_->StartStep(b.id, "redis").ok());
}

TEST_F(JournalTest, TheUndoOfARunningStepIsRecordedBeforeItActs) {
  Operation op = Begin("a", "up", {"service api"});
  // Not yet running: nothing to record against.
  EXPECT_FALSE(store_->RecordStepUndo(op.id, "service api", "{}").ok());
  ASSERT_TRUE(store_->StartStep(op.id, "service api").ok());
  ASSERT_TRUE(store_->RecordStepUndo(op.id, "service api", R"({"stop":["api-1"]})").ok());
  Reopen();  // died mid-step
  auto unfinished = store_->ListUnfinishedOperations();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].steps[0].status, StepStatus::kRunning);
  EXPECT_EQ((*unfinished)[0].steps[0].undo_json, R"({"stop":["api-1"]})");
  EXPECT_FALSE(store_->RecordStepUndo(op.id, "nope", "{}").ok());
}

TEST_F(JournalTest, LastOperationAndHistoryOfAnEnvironment) {
  auto none = store_->LastOperation("demo");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  Operation first = Begin("demo", "up", {});
  ASSERT_TRUE(store_->FinishOperation(first.id, OperationStatus::kDone).ok());
  Operation second = Begin("demo", "deploy", {});
  Begin("other", "up", {});

  auto last = store_->LastOperation("demo");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ((*last)->id, second.id);
  EXPECT_EQ((*last)->kind, "deploy");
  auto history = store_->ListOperations("demo", 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].id, second.id);  // newest first
  EXPECT_EQ((*history)[1].id, first.id);
  EXPECT_EQ(store_->ListOperations("demo", 1)->size(), 1u);
}

TEST_F(JournalTest, EventsAreListedByEnvironmentSinceAndLimit) {
  ASSERT_TRUE(store_->AppendEvent("demo", "up", "started").ok());
  clock_->Advance(100);
  ASSERT_TRUE(store_->AppendEvent("other", "up", "started").ok());
  clock_->Advance(100);
  auto appended = store_->AppendEvent("demo", "task-exited", "gunicorn-1 exited 1");
  ASSERT_TRUE(appended.ok());
  EXPECT_EQ(appended->time, 1'700'000'000'200);
  clock_->Advance(100);
  ASSERT_TRUE(store_->AppendEvent("demo", "restart", "gunicorn-2 started").ok());

  auto all = store_->ListEvents({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);

  auto demo = store_->ListEvents({.env = "demo"});
  ASSERT_TRUE(demo.ok());
  ASSERT_EQ(demo->size(), 3u);
  EXPECT_EQ((*demo)[0].message, "started");
  EXPECT_EQ((*demo)[2].kind, "restart");
  EXPECT_LT((*demo)[0].id, (*demo)[1].id);

  auto since = store_->ListEvents({.env = "demo", .since = 1'700'000'000'150});
  ASSERT_TRUE(since.ok());
  ASSERT_EQ(since->size(), 2u);
  EXPECT_EQ((*since)[0].message, "gunicorn-1 exited 1");

  auto tail = store_->ListEvents({.env = "demo", .limit = 2});  // the most recent two, in order
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].message, "gunicorn-1 exited 1");
  EXPECT_EQ((*tail)[1].message, "gunicorn-2 started");
}

}  // namespace
}  // namespace adhoc::state
