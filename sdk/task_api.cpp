// nasoa::Task, the public face of runtime/data.
#include <algorithm>
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
  runtime::TaskSource validation = runtime::list_folder(dir, runtime::FolderRole::kValidation);
  // Validation on training images measures nothing: the same file on both
  // sides (a CSV listing the validation folder's images, a link) is refused.
  std::map<std::string, std::string> training;  // file_identity -> the training image's path
  for (const runtime::SampleRef& s : task.samples)
    if (s.idx < 0)
      if (const auto id = runtime::file_identity(s.path)) training.emplace(*id, s.path);
  for (const runtime::SampleRef& s : validation.samples) {
    const auto id = runtime::file_identity(s.path);
    if (!id) continue;
    if (const auto it = training.find(*id); it != training.end())
      throw Error(ErrorCode::kInvalidArgument, s.path + ": this validation image is also a training image (" +
                                                   it->second + "); validation would measure the training images");
  }
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
  ingest.time_limit_seconds = options.time_limit_seconds;
  // Listing (and unpacking IDX files) is part of reading the task.
  ingest.time_spent_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  impl->store = std::make_unique<runtime::ImageStore>(std::move(source), ingest);
  if (const auto& from = impl->validation_from) {
    // The store counts a class as usable with validation images alone; the
    // model would then never see it in training.
    const runtime::ImageStore& store = *impl->store;
    std::vector<std::size_t> train(store.class_names().size()), validation(store.class_names().size());
    for (std::size_t i = 0; i < store.size(); ++i)
      ++(store.source_index(i) >= *from ? validation : train)[std::size_t(store.label(i))];
    for (std::size_t c = 0; c < train.size(); ++c)
      if (train[c] == 0)
        throw Error(ErrorCode::kInvalidArgument, store.origin() + ": class '" + store.class_names()[c] +
                                                     "' has no usable training image (the validation folder " +
                                                     options.validation_dir + " has " +
                                                     std::to_string(validation[c]) + ")");
    if (std::all_of(validation.begin(), validation.end(), [](std::size_t n) { return n == 0; })) {
      std::string skipped;
      std::size_t shown = 0;
      for (const SkippedFile& f : store.skipped())
        if (f.path.rfind(options.validation_dir, 0) == 0 && shown++ < 3) skipped += " " + f.path + " (" + f.reason + ");";
      if (!skipped.empty()) skipped.pop_back();
      throw Error(ErrorCode::kInvalidArgument, options.validation_dir + ": the validation folder has no usable image" +
                                                   (skipped.empty() ? std::string() : "; skipped:" + skipped));
    }
  }
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
    runtime::IdxLimits limits;
    limits.max_pixels = options.max_pixels;
    limits.max_bytes = options.memory_cap_bytes > 0 ? std::uint64_t(options.memory_cap_bytes) : 0;
    return Task(ingest(runtime::list_idx(images_path, labels_path, class_names, limits), options, started));
  });
}

ImageListing list_images(const std::string& folder) {
  return sdk::at_boundary("list_images", [&] {
    runtime::ImageFiles found = runtime::list_image_files(folder);
    return ImageListing{std::move(found.images), std::move(found.passed_over), std::move(found.skipped)};
  });
}

const Task::Impl& Task::impl() const {
  if (!impl_) throw Error(ErrorCode::kInvalidArgument, "nasoa::Task: used after it was moved from");
  return *impl_;
}

const std::string& Task::origin() const { return impl().store->origin(); }
const std::vector<std::string>& Task::class_names() const { return impl().store->class_names(); }
std::size_t Task::size() const { return impl().store->size(); }
const TaskMeta& Task::meta() const { return impl().store->meta(); }
const std::vector<SkippedFile>& Task::skipped() const { return impl().store->skipped(); }
int Task::image_side() const { return impl().store->side(); }
bool Task::streaming() const { return impl().store->streaming(); }
double Task::ingest_seconds() const { return impl().ingest_seconds; }

}  // namespace nasoa
