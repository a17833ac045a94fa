// sdk/task_impl.h: what a nasoa::Task holds, for the SDK's own use.
#pragma once

#include <memory>
#include <optional>

#include "nasoa/task.h"
#include "runtime/data/image_store.h"

namespace nasoa {

struct Task::Impl {
  std::unique_ptr<runtime::ImageStore> store;
  // With an explicit validation folder: source positions from here on are
  // validation images. Otherwise the regime's fraction splits the task.
  std::optional<std::size_t> validation_from;
  double ingest_seconds = 0;
};

}  // namespace nasoa
