// nasoa::Task, the public face of runtime/data.
#include <chrono>
#include <filesystem>
#include <map>

#include "nasoa/error.h"
#include "sdk/boundary.h"
#include "sdk/task_impl.h"

namespace nasoa {
namespace {

using Clock = std::chrono::steady_clock;

// Appends the validation folder's images, mapping its classes onto the task's.
std::size_t append_validation(runtime::TaskSource& task, const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::equivalent(dir, task.origin, ec))
    throw Error(ErrorCode::kInvalidArgument,
                dir + ": the validation folder is the task folder; validation would measure the training images");
  runtime::TaskSource validation = runtime::list_folder(dir);
  std::map<std::string, int> labels;
  for (std::size_t c = 0; c < task.class_names.size(); ++c) labels[task.class_names[c]] = int(c);
  const std::size_t from = task.samples.size();
  for (runtime::SampleRef s : validation.samples) {
    const std::string& name = validation.class_names[std::size_t(s.label)];
    const auto it = labels.find(name);
    if (it == labels.end())
      throw Error(ErrorCode::kInvalidArgument,
                  dir + ": validation class '" + name + "' is not a class of the task " + task.origin);
    s.label = it->second;
    task.samples.push_back(s);
  }
  task.skipped.insert(task.skipped.end(), validation.skipped.begin(), validation.skipped.end());
  return from;
}

// What the three constructors share: the validation folder, decoding, timing.
std::unique_ptr<Task::Impl> ingest(runtime::TaskSource source, const TaskOptions& options,
                                   Clock::time_point started) {
  auto impl = std::make_unique<Task::Impl>();
  if (!options.validation_dir.empty()) impl->validation_from = append_validation(source, options.validation_dir);
  runtime::IngestOptions ingest;
  ingest.side = options.image_side;
  ingest.max_pixels = options.max_pixels;
  ingest.memory_cap_bytes = options.memory_cap_bytes;
  ingest.threads = options.threads;
  impl->store = std::make_unique<runtime::ImageStore>(std::move(source), ingest);
  impl->ingest_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return impl;
}

}  // namespace

Task::Task(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Task::Task(Task&&) noexcept = default;
Task& Task::operator=(Task&&) noexcept = default;
Task::~Task() = default;

Task Task::from_folder(const std::string& dir, const TaskOptions& options) {
  return sdk::at_boundary("Task::from_folder", [&] {
    const auto started = Clock::now();
    return Task(ingest(runtime::list_folder(dir), options, started));
  });
}

Task Task::from_csv(const std::string& csv_path, const TaskOptions& options) {
  return sdk::at_boundary("Task::from_csv", [&] {
    const auto started = Clock::now();
    return Task(ingest(runtime::list_csv(csv_path), options, started));
  });
}

Task Task::from_idx(const std::string& images_path, const std::string& labels_path,
                    const std::vector<std::string>& class_names, const TaskOptions& options) {
  return sdk::at_boundary("Task::from_idx", [&] {
    const auto started = Clock::now();
    return Task(ingest(runtime::list_idx(images_path, labels_path, class_names), options, started));
  });
}

const std::string& Task::origin() const { return impl_->store->origin(); }
const std::vector<std::string>& Task::class_names() const { return impl_->store->class_names(); }
std::size_t Task::size() const { return impl_->store->size(); }
const TaskMeta& Task::meta() const { return impl_->store->meta(); }
const std::vector<SkippedFile>& Task::skipped() const { return impl_->store->skipped(); }
int Task::image_side() const { return impl_->store->side(); }
bool Task::streaming() const { return impl_->store->streaming(); }
double Task::ingest_seconds() const { return impl_->ingest_seconds; }

}  // namespace nasoa
