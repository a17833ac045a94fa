// nasoa/zoo.h: a verified zoo bundle, the models an app can adapt.
//
// A bundle is a directory with a MANIFEST (format version, provenance, one
// entry per model) and the files it lists: one weights file per model and,
// optionally, a predictor and an experience log. Zoo::open() checks every
// listed file's size and SHA-256 before anything else reads it, and refuses a
// bundle that fails with nasoa::Error naming the file and the fault.
//
// Ownership: a Zoo is a handle to its parsed manifest; copies share it, so
// copying is cheap (an Adapter keeps a copy: the Zoo it was made from may
// go). It does not keep files open and never modifies the bundle's files;
// open() finishes a replacement of the bundle that a crash interrupted where
// folders cannot be swapped (it renames the old copy, left aside as
// ".NAME.old", back to NAME; on a read-only file system it reads the copy
// where it is).
// A moved-from Zoo (and a copy of one) may be assigned to or destroyed;
// any other call throws Error{kInvalidArgument}.
// Thread-safety: const members may be called from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nasoa/export.h"

namespace nasoa {

// The newest bundle format this build reads (and the one it writes).
inline constexpr std::uint32_t kZooFormatVersion = 1;

// How a bundle was made.
struct Provenance {
  std::string tool;          // program and version that wrote the bundle
  std::string command_line;  // its full command line
  std::uint64_t seed = 0;
  std::string date;          // ISO 8601, UTC
  std::string data_card;     // the data card of the last data that went into the bundle
                             // (the upstream corpus; the source tasks once experience is shipped)
};

// One model of a bundle.
struct ModelInfo {
  std::string name;      // unique within the bundle
  std::string encoding;  // ET-NAS encoding, see nasoa/encoding.h
  int input_size = 0;    // square input side in pixels
  std::array<float, 3> mean{};  // RGB normalisation applied to [0,1] pixels
  std::array<float, 3> std{};
  int upstream_classes = 0;
  std::vector<std::string> labels;  // class names: upstream_classes of them, or none
  std::optional<double> upstream_accuracy;  // top-1 in [0,1]; empty when untrained
  std::int64_t parameters = 0;
  std::int64_t macs = 0;            // per image at input_size
  std::string weights_file;         // path relative to the bundle directory
  std::string weights_sha256;       // lower-case hex
  std::uint64_t weights_bytes = 0;
};

class NASOA_API Zoo {
 public:
  // Opens and verifies the bundle in `dir`. Throws Error with
  //   kNotFound            the directory, its MANIFEST or a listed file is missing;
  //   kCorrupt             a file's size or SHA-256 differs from the manifest,
  //                        or the manifest does not parse or is inconsistent;
  //   kUnsupportedVersion  the manifest's format version is not one this build reads;
  //   kInvalidArgument     `dir` is empty, or a file rather than a folder;
  //   kIo                  a file cannot be read.
  static Zoo open(const std::string& dir);

  Zoo(const Zoo&);
  Zoo& operator=(const Zoo&);
  Zoo(Zoo&&) noexcept;
  Zoo& operator=(Zoo&&) noexcept;
  ~Zoo();

  const std::string& dir() const;
  const std::string& name() const;
  std::uint32_t format_version() const;
  const Provenance& provenance() const;
  const std::vector<ModelInfo>& models() const;

  // The model called `name`. Throws Error{kNotFound} listing the names there are.
  const ModelInfo& model(std::string_view name) const;

  // Absolute paths of the optional predictor and experience files, if listed.
  std::optional<std::string> predictor_path() const;
  std::optional<std::string> experience_path() const;

  // Checks every listed file again (as open() does); throws as open() does.
  void verify() const;

  struct Impl;
  const Impl& impl() const;  // for the SDK's own use

 private:
  explicit Zoo(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace nasoa
