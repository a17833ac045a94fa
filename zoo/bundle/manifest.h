// zoo/bundle/manifest.h: the bundle's MANIFEST file, to and from bytes.
//
// The body is the protobuf-lite message nasoa.proto.Manifest
// (sdk/proto/zoo_manifest.proto). It is framed so that any damage is caught
// before the body is trusted:
//
//   "NASOAMF1"   8-byte magic
//   u64          body length, little-endian
//   body
//   32 bytes     SHA-256 of the body
//
// decode_manifest also checks what the schema cannot: the format version,
// unique and file-name-safe model names, valid encodings, parameter and MAC
// counts that match the encodings, safe relative file paths.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nasoa/zoo.h"

namespace nasoa::zoo {

inline constexpr char kManifestFileName[] = "MANIFEST";

struct FileEntry {
  std::string path;  // relative to the bundle directory
  std::string sha256;
  std::uint64_t size = 0;
};

struct Manifest {
  std::uint32_t format_version = kZooFormatVersion;
  std::string name;
  Provenance provenance;
  std::vector<ModelInfo> models;
  std::optional<FileEntry> predictor;
  std::optional<FileEntry> experience;

  // Every file the manifest lists: weights, then predictor and experience.
  std::vector<FileEntry> files() const;
};

std::string encode_manifest(const Manifest& manifest);

// `source` names the file in errors. Throws Error{kCorrupt} for damage or an
// inconsistent field (naming the field), Error{kUnsupportedVersion}.
Manifest decode_manifest(std::string_view bytes, const std::string& source);

// The MANIFEST file at `path`, read and decoded. Throws what decode_manifest
// throws, Error{kNotFound} / {kIo} for the file, and Error{kCorrupt} for a
// MANIFEST that is not a regular file or is larger than any manifest is
// (kMaxManifestBytes), before reading it.
inline constexpr std::uint64_t kMaxManifestBytes = std::uint64_t(64) << 20;
Manifest read_manifest(const std::string& path);

// Whether the MANIFEST file at `path` holds fields this build does not know:
// a newer nasoa added them (fields are only ever added). Readers ignore
// them; a rewrite would drop them, so the writers refuse such a bundle
// (bundle.h). For a manifest read_manifest() has accepted; throws what
// read_file() and decode_manifest() throw.
bool holds_unknown_fields(const std::string& path);

// True for names usable as a bundle, model and file name: [A-Za-z0-9._-]+,
// not starting with '.', at most 200 characters.
bool is_safe_name(std::string_view name);
// What is_safe_name() requires, for messages.
inline constexpr char kSafeNameRule[] = "must match [A-Za-z0-9._-]+, not start with '.' and be at most 200 characters";
// Throws Error{kInvalidArgument} "<what> '<name>' must match ..." unless
// is_safe_name(name); `what` says whose name it is ("bundle name", "--name").
void check_safe_name(std::string_view what, std::string_view name);
// Model names are file names in the bundle: on a file system that ignores
// case (vfat, exFAT, macOS's default) two names that differ only in case
// would be one file. The key two names must not share.
std::string name_key(std::string_view name);

}  // namespace nasoa::zoo
