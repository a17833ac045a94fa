// sdk/zoo_impl.h: what a nasoa::Zoo holds, for the SDK's own use.
#pragma once

#include <string>

#include "nasoa/zoo.h"
#include "zoo/bundle/manifest.h"

namespace nasoa {

struct Zoo::Impl {
  std::string dir;
  zoo::Manifest manifest;
};

}  // namespace nasoa
