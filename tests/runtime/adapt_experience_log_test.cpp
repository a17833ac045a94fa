// The experience store: records round-trip, a log cut at any byte yields
// exactly its complete records, damage in the middle costs one record, and
// appends after a torn tail stay readable.
#include "runtime/adapt/experience_log.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "nasoa/error.h"
#include "nasoa/zoo.h"
#include "tests/runtime/adapt_support.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"

namespace nasoa::runtime {
namespace {

using testing::make_record;

// A log line holding `json` under a valid checksum, whatever its content:
// only the reader's own checks can refuse it.
std::string sealed(const std::string& json) { return zoo::sha256_hex(json) + " " + json + "\n"; }

std::vector<std::size_t> line_ends(const std::string& bytes) {
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < bytes.size(); ++i)
    if (bytes[i] == '\n') ends.push_back(i + 1);
  return ends;
}

TEST(ExperienceLogTest, RecordsRoundTripThroughJson) {
  for (int i = 0; i < 8; ++i) {
    ExperienceRecord r = make_record(i);
    if (i % 2) {
      // Every field of the regime away from its default, so that a reader
      // that dropped one (and kept the default) is caught.
      r.regime.momentum = 0.8125;
      r.regime.weight_decay = 5e-4;
      r.regime.schedule = ScheduleKind::kStep;
      r.regime.warmup_epochs = 0.25;
      r.regime.label_smoothing = 0.0625;
      r.regime.random_resized_crop = false;
      r.regime.horizontal_flip = true;
      r.regime.validation_fraction = 0.3125;
      r.task.pixel_std = {0.125, 0.25, 0.375};
    }
    const std::string json = to_json(r);
    EXPECT_EQ(json.find('\n'), std::string::npos) << "a record must stay on one line";
    const ExperienceRecord back = parse_experience_record(json, "test");
    EXPECT_EQ(to_json(back), json);
    EXPECT_EQ(back.run_id, r.run_id);
    EXPECT_EQ(back.source, r.source);
    EXPECT_EQ(back.task_name, r.task_name);
    EXPECT_EQ(back.task.classes, r.task.classes);
    EXPECT_EQ(back.task.pixel_std, r.task.pixel_std);
    EXPECT_EQ(back.model.upstream_accuracy, r.model.upstream_accuracy);
    EXPECT_EQ(back.model.step_seconds, r.model.step_seconds);
    EXPECT_EQ(back.regime.seed, r.regime.seed);
    EXPECT_EQ(back.regime.optimizer, r.regime.optimizer);
    EXPECT_EQ(back.regime.learning_rate, r.regime.learning_rate);
    EXPECT_EQ(back.regime.epochs, r.regime.epochs);
    EXPECT_EQ(back.regime.batch_size, r.regime.batch_size);
    EXPECT_EQ(back.regime.frozen_stages, r.regime.frozen_stages);
    EXPECT_EQ(back.regime.momentum, r.regime.momentum);
    EXPECT_EQ(back.regime.weight_decay, r.regime.weight_decay);
    EXPECT_EQ(back.regime.schedule, r.regime.schedule);
    EXPECT_EQ(back.regime.warmup_epochs, r.regime.warmup_epochs);
    EXPECT_EQ(back.regime.label_smoothing, r.regime.label_smoothing);
    EXPECT_EQ(back.regime.random_resized_crop, r.regime.random_resized_crop);
    EXPECT_EQ(back.regime.horizontal_flip, r.regime.horizontal_flip);
    EXPECT_EQ(back.regime.validation_fraction, r.regime.validation_fraction);
    EXPECT_EQ(back.budget_seconds, r.budget_seconds);
    EXPECT_EQ(back.budget_joules, r.budget_joules);
    ASSERT_EQ(back.history.size(), r.history.size());
    for (std::size_t e = 0; e < r.history.size(); ++e)
      EXPECT_EQ(back.history[e].validation_accuracy, r.history[e].validation_accuracy);
    EXPECT_EQ(back.best_accuracy, r.best_accuracy);
    EXPECT_EQ(back.joules, r.joules);
    EXPECT_EQ(back.probe_score, r.probe_score);
  }
}

TEST(ExperienceLogTest, AppendNewLeavesOutARunTheFileHoldsButNotATornOne) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  append_experience(path, {make_record(0), make_record(1)});
  EXPECT_EQ(append_new_experience(path, make_record(1)).already_present, 1u);
  EXPECT_EQ(read_experience_log(path).records.size(), 2u);

  // A record whose line a crash cut short is not held: it is written again.
  const std::string torn = encode_experience_line(make_record(2));
  std::ofstream(path, std::ios::binary | std::ios::app) << torn.substr(0, torn.size() / 2);
  const AppendReport report = append_new_experience(path, make_record(2));
  EXPECT_EQ(report.already_present, 0u);
  EXPECT_EQ(report.torn_bytes_cut, torn.size() / 2);
  const ExperienceLogContents c = read_experience_log(path);
  ASSERT_EQ(c.records.size(), 3u);
  EXPECT_EQ(c.records[2].run_id, make_record(2).run_id);
  EXPECT_FALSE(c.torn_tail.has_value());
}

TEST(ExperienceLogTest, ReadingACopyCutAtEveryByteKeepsExactlyTheCompleteRecords) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  std::vector<ExperienceRecord> records;
  for (int i = 0; i < 4; ++i) records.push_back(make_record(i));
  append_experience(path, std::vector<ExperienceRecord>(records.begin(), records.begin() + 2));
  append_experience(path, records[2]);
  append_experience(path, records[3]);
  const std::string bytes = zoo::read_file(path);
  const std::vector<std::size_t> ends = line_ends(bytes);
  ASSERT_EQ(ends.size(), records.size());
  ASSERT_EQ(ends.back(), bytes.size());

  // A copy cut shorter one byte at a time, as a crash could leave it.
  const std::string cut_path = dir.write("cut.log", bytes);
  for (std::size_t cut = bytes.size() + 1; cut-- > 0;) {
    std::filesystem::resize_file(cut_path, cut);
    const ExperienceLogContents c = read_experience_log(cut_path);
    const auto complete = std::size_t(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
    ASSERT_EQ(c.records.size(), complete) << "cut at byte " << cut;
    for (std::size_t i = 0; i < complete; ++i) ASSERT_EQ(c.records[i].run_id, records[i].run_id) << cut;
    ASSERT_TRUE(c.skipped.empty()) << "cut at byte " << cut << ": " << c.skipped[0].reason;
    const std::size_t last_end = complete ? ends[complete - 1] : 0;
    ASSERT_EQ(c.good_end, last_end) << cut;
    ASSERT_EQ(c.torn_tail.has_value(), cut != last_end) << cut;
    if (c.torn_tail) {
      ASSERT_EQ(c.torn_tail->offset, last_end);
      ASSERT_EQ(c.torn_tail->bytes, cut - last_end);
      ASSERT_EQ(c.torn_tail->line, std::int64_t(complete) + 1);
    }
  }
}

TEST(ExperienceLogTest, ACorruptRecordInTheMiddleIsSkippedAndReported) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  append_experience(path, {make_record(0), make_record(1), make_record(2)});
  const std::string bytes = zoo::read_file(path);
  const std::vector<std::size_t> ends = line_ends(bytes);
  // A byte of the second record's JSON, then one of its checksum.
  for (std::size_t at : {ends[0] + 100, ends[0] + 5}) {
    std::string damaged = bytes;
    damaged[at] = char(damaged[at] ^ 0x01);
    zoo::write_file_atomic(path, damaged);
    const ExperienceLogContents c = read_experience_log(path);
    ASSERT_EQ(c.records.size(), 2u);
    EXPECT_EQ(c.records[0].run_id, "run-0");
    EXPECT_EQ(c.records[1].run_id, "run-2");
    ASSERT_EQ(c.skipped.size(), 1u);
    EXPECT_EQ(c.skipped[0].offset, ends[0]);
    EXPECT_EQ(c.skipped[0].line, 2);
    EXPECT_EQ(c.skipped[0].bytes, ends[1] - ends[0]);
    EXPECT_FALSE(c.torn_tail);
    const std::vector<std::string> report = c.damage_report(path);
    ASSERT_EQ(report.size(), 1u);
    EXPECT_NE(report[0].find("line 2"), std::string::npos) << report[0];
    EXPECT_NE(report[0].find("byte " + std::to_string(ends[0])), std::string::npos) << report[0];
    EXPECT_EQ(completed_run_ids(c), (std::set<std::string>{"run-0", "run-2"}));
  }
}

TEST(ExperienceLogTest, ARecordWithAValidChecksumButBadContentIsSkippedWithItsField) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  std::string newer = to_json(make_record(1));
  newer.replace(newer.find("\"v\":1"), 5, "\"v\":2");
  std::string bad_field = to_json(make_record(2));
  bad_field.replace(bad_field.find("\"classes\":"), 10, "\"classes\":\"x\",\"was\":");
  zoo::write_file_atomic(path, encode_experience_line(make_record(0)) + sealed(newer) + sealed(bad_field) + "\n" +
                                   encode_experience_line(make_record(3)));
  const ExperienceLogContents c = read_experience_log(path);
  ASSERT_EQ(c.records.size(), 2u);
  EXPECT_EQ(c.records[1].run_id, "run-3");
  ASSERT_EQ(c.skipped.size(), 3u);
  EXPECT_NE(c.skipped[0].reason.find("version 2"), std::string::npos) << c.skipped[0].reason;
  EXPECT_NE(c.skipped[1].reason.find("task.meta.classes"), std::string::npos) << c.skipped[1].reason;
  EXPECT_EQ(c.skipped[2].line, 4);  // the empty line
}

TEST(ExperienceLogTest, ARecordTheWriterWouldRefuseOrANumberPastADoubleIsSkipped) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  ExperienceRecord other_model = make_record(1);
  other_model.regime.model = "elsewhere";
  ExperienceRecord no_classes = make_record(2);
  no_classes.task.classes = 0;
  std::string huge = to_json(make_record(3));
  huge.replace(huge.find("\"train_images\":"), 15, "\"train_images\":1e400,\"was\":");
  zoo::write_file_atomic(path, sealed(to_json(other_model)) + sealed(to_json(no_classes)) + sealed(huge) +
                                   encode_experience_line(make_record(4)));
  const ExperienceLogContents c = read_experience_log(path);
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0].run_id, "run-4");
  ASSERT_EQ(c.skipped.size(), 3u);
  EXPECT_NE(c.skipped[0].reason.find("regime.model"), std::string::npos) << c.skipped[0].reason;
  EXPECT_NE(c.skipped[1].reason.find("task.meta.classes"), std::string::npos) << c.skipped[1].reason;
  EXPECT_NE(c.skipped[2].reason.find("not valid JSON"), std::string::npos) << c.skipped[2].reason;
}

TEST(ExperienceLogTest, ARecordWithImpossibleImageStatisticsIsSkippedNotFittedOn) {
  // Sealed with a valid checksum, so only the values can tell: a spread of
  // 1e308 would overflow the predictor's features and stop every fit.
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  ExperienceRecord spread = make_record(1);
  spread.task.pixel_std = {1e308, 1e308, 1e308};
  ExperienceRecord wide = make_record(2);
  wide.task.mean_width = 1e300;
  zoo::write_file_atomic(path, encode_experience_line(make_record(0)) + sealed(to_json(spread)) +
                                   sealed(to_json(wide)));
  const ExperienceLogContents c = read_experience_log(path);
  ASSERT_EQ(c.records.size(), 1u);
  ASSERT_EQ(c.skipped.size(), 2u);
  EXPECT_NE(c.skipped[0].reason.find("pixel_std[0]"), std::string::npos) << c.skipped[0].reason;
  EXPECT_NE(c.skipped[1].reason.find("mean_width"), std::string::npos) << c.skipped[1].reason;
}

TEST(ExperienceLogTest, AppendingAfterATornTailCutsItFirst) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  append_experience(path, {make_record(0), make_record(1)});
  const std::string bytes = zoo::read_file(path);
  const std::vector<std::size_t> ends = line_ends(bytes);
  for (std::size_t torn : {std::size_t(1), std::size_t(40), ends[1] - ends[0] - 1}) {
    zoo::write_file_atomic(path, bytes.substr(0, ends[0] + torn));
    const AppendReport report = append_experience(path, make_record(2));
    EXPECT_EQ(report.torn_bytes_cut, torn);
    const ExperienceLogContents c = read_experience_log(path);
    ASSERT_EQ(c.records.size(), 2u) << torn;
    EXPECT_EQ(c.records[0].run_id, "run-0");
    EXPECT_EQ(c.records[1].run_id, "run-2");
    EXPECT_TRUE(c.skipped.empty());
    EXPECT_FALSE(c.torn_tail);
  }
  // A file holding nothing but a torn line is cut to nothing.
  zoo::write_file_atomic(path, bytes.substr(0, 30));
  EXPECT_EQ(append_experience(path, make_record(5)).torn_bytes_cut, 30u);
  EXPECT_EQ(completed_run_ids(path), (std::set<std::string>{"run-5"}));
}

TEST(ExperienceLogTest, AnInvalidRecordIsRefusedBeforeAnythingIsWritten) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  append_experience(path, make_record(0));
  const std::string before = zoo::read_file(path);
  ExperienceRecord no_id = make_record(1);
  no_id.run_id.clear();
  ExperienceRecord mismatched = make_record(2);
  mismatched.regime.model = "other";
  ExperienceRecord bad_lr = make_record(3);
  bad_lr.regime.learning_rate = -1;
  // A diverged loss would be written as null and read back as damage.
  ExperienceRecord diverged = make_record(5);
  diverged.history.push_back({1, 1.0, std::nan(""), 0.1});
  ExperienceRecord negative_budget = make_record(6);
  negative_budget.budget_seconds = -1;
  for (const auto& bad : {std::pair{no_id, "run_id"}, std::pair{mismatched, "regime.model"},
                          std::pair{bad_lr, "learning_rate"}, std::pair{diverged, "train_loss"},
                          std::pair{negative_budget, "budget.seconds"}}) {
    const ExperienceRecord& record = bad.first;
    const std::string field = bad.second;
    EXPECT_TRUE(nasoa::testing::throws_error([&] { append_experience(path, {make_record(4), record}); },
                                             ErrorCode::kInvalidArgument, field))
        << "a record with a bad " << field;
  }
  EXPECT_EQ(zoo::read_file(path), before);
}

TEST(ExperienceLogTest, MissingFilesAndRunIds) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "sub/experience.log";
  EXPECT_TRUE(completed_run_ids(path).empty());
  EXPECT_TRUE(nasoa::testing::throws_error([&] { read_experience_log(path); }, ErrorCode::kNotFound, path))
      << "read a missing file";
  std::filesystem::create_directories(dir / "sub");
  append_experience(path, {make_record(0), make_record(1)});
  EXPECT_EQ(completed_run_ids(path), (std::set<std::string>{"run-0", "run-1"}));
  const ExperienceLogContents c = read_experience_log(path);
  ASSERT_EQ(c.record_sha256.size(), 2u);
  EXPECT_EQ(c.record_sha256[1], zoo::sha256_hex(to_json(make_record(1))));
}

// A log that is a link to a missing file can be neither opened nor created
// (O_EXCL refuses links): an error naming it, where appending used to spin.
TEST(ExperienceLogTest, AppendingThroughALinkToAMissingFileIsAnErrorNamingIt) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "experience.log";
  std::filesystem::create_symlink(dir / "gone/experience.log", path);
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { append_experience(path, make_record(0)); }, ErrorCode::kIo,
                                                {path, "link to a missing file"}));
}

TEST(ExperienceLogTest, DescribesModelsFromTheirEncoding) {
  // ET-NAS-A, as pinned in the design notes.
  const ModelFeatures a = describe_model("a", "2-_32_2-11-112-1121112", 224, 1000, 0.7);
  EXPECT_EQ(a.parameters, 2615320);
  EXPECT_EQ(a.macs, 229113856);
  EXPECT_EQ(a.num_stages, 5);
  EXPECT_EQ(a.upstream_accuracy, 0.7);
  ModelInfo info;
  info.name = "d";
  info.encoding = "031-_64_1-1-221-11121";
  info.input_size = 224;
  // The bundle's counts are taken as they are, not recomputed from the
  // encoding (15235528 parameters, 1551151104 MACs): sentinels show which
  // were used.
  info.parameters = 12345;
  info.macs = 67890;
  const ModelFeatures d = describe_model(info);
  EXPECT_EQ(d.parameters, 12345);
  EXPECT_EQ(d.macs, 67890);
  EXPECT_EQ(d.num_stages, 5);
  EXPECT_FALSE(d.upstream_accuracy);
  EXPECT_THROW(describe_model("x", "not-an-encoding", 224, 10), Error);
}

}  // namespace
}  // namespace nasoa::runtime
