// zoo/bundle/bundle.h: writing, verifying and loading zoo bundle directories.
//
//   DIR/MANIFEST                 see manifest.h
//   DIR/models/<name>.weights    see weights_file.h
//   DIR/predictor.bin            optional
//   DIR/experience.log           optional
//
// A bundle is written into a staging directory beside DIR and renamed into
// place only when complete, each file written atomically, so that a crash
// never leaves a DIR that looks like a bundle but is not one.
//
// Replacing an existing bundle (replace_bundle, add_to_bundle) never leaves a
// moment without a loadable one: the new bundle is written complete as
// ".NAME.new" beside DIR and swapped with DIR in one step (renameat2
// RENAME_EXCHANGE), then the old copy is removed. Where the kernel or file
// system cannot swap (vfat, NFS), DIR is renamed to ".NAME.old", ".NAME.new"
// to DIR, and ".NAME.old" is removed; a crash between those two renames
// leaves DIR missing and ".NAME.old" complete, and recover_bundle() renames
// it back (the writers here call it first, and so do nasoa::Zoo::open and
// opening a model directory; open_bundle() itself only reads, and names the
// copy aside in its error).
// Writers of one DIR take turns through an exclusive lock (flock) on the
// folder that holds it, held across add_to_bundle's read-modify-write, so
// two tools adding models at once both land; a reader that finds DIR missing
// while a writer holds the lock reads ".NAME.old" where it is. Where the file
// system cannot lock a folder (NFS), writers go on without the lock. A DIR
// that is a link to a bundle replaces its target.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/zoo.h"
#include "zoo/builder/network.h"
#include "zoo/bundle/manifest.h"

namespace nasoa::zoo {

struct BundleModelInput {
  std::string name;  // see is_safe_name()
  Network network{nullptr};  // its encoding and class count are recorded
  int input_size = 224;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  std::optional<double> upstream_accuracy;
  std::vector<std::string> labels;  // class names, one per network class, or none
};

struct BundleInput {
  std::string name;
  Provenance provenance;
  std::vector<BundleModelInput> models;
  std::optional<std::string> predictor;   // file contents, if any
  std::optional<std::string> experience;  // file contents, if any
};

// Writes a new bundle at `dir`, which must not exist yet. Returns its
// manifest. Throws Error{kInvalidArgument} for bad names, an existing `dir`
// or a model that decode_manifest() would refuse (a std outside [1e-6, 1000],
// a NaN mean, a label with a tab or given twice, an upstream accuracy
// outside [0, 1]: its message, naming the field), Error{kIo} when writing
// fails. Nothing is left at `dir` when it throws.
Manifest write_bundle(const std::string& dir, const BundleInput& input);

// Writes `input` as the bundle `dir`, replacing the bundle there if any (see
// above). Returns the new manifest. Throws Error{kInvalidArgument} when `dir`
// exists and is not a bundle, even an empty directory (it is never touched
// then), Error{kIo} when writing fails (the previous bundle stays in place).
Manifest replace_bundle(const std::string& dir, const BundleInput& input);

// Finishes a replacement that a crash interrupted: when `dir` is missing and
// ".NAME.old" is a complete bundle, renames it back. Removes nothing (a
// leftover ".NAME.old" beside a complete DIR is the next writer's to remove,
// and only if it is a bundle). Returns the directory to read: `dir`, or the
// aside copy when it could not be renamed back (a read-only file system,
// say). Never throws for a missing `dir`.
std::string recover_bundle(const std::string& dir);

// Adds `model` to the bundle `dir`, replacing a model of the same name, or
// creates the bundle (named `name`) when `dir` does not exist. The other
// models keep their weights bit-exactly, their order and their manifest
// fields. The predictor and experience files are kept, except when `model`
// replaces a model of its name with other weights (or another upstream
// accuracy or input size): they were fitted on, and gathered with, the old
// model, so they are left out of the new bundle (gathering and shipping
// again restores them), and `*dropped_experience`, when given, is set to
// whether there were any to leave out. The provenance becomes `provenance`,
// except that the command lines accumulate, joined by " && ", so that the
// bundle's provenance lists every step that built it. The existing bundle is
// verified first and replaced crash-safely. Throws as open_bundle() and
// replace_bundle() do.
Manifest add_to_bundle(const std::string& dir, const BundleModelInput& model,
                       const std::string& name, const Provenance& provenance,
                       bool* dropped_experience = nullptr);

// Sets (or replaces) the predictor and experience files of the bundle `dir`;
// the models are kept bit-exactly. Provenance as add_to_bundle(). Throws as
// open_bundle() and replace_bundle() do.
Manifest set_bundle_experience(const std::string& dir, const std::string& predictor, const std::string& experience,
                               const Provenance& provenance);

// Reads and decodes DIR/MANIFEST and checks every listed file's size and
// SHA-256. Throws as Zoo::open() documents. A writer swapping in a new
// bundle between the reading of the manifest and of the files would pair
// the old manifest with the new files: when a file does not match and the
// manifest has changed since, the bundle is read again (three tries).
Manifest open_bundle(const std::string& dir);
// open_bundle(), then `then` on the manifest within the same consistent
// read: a replacement between the two (which `then` sees as a listed file
// that changed, e.g. load_network's SHA-256 mismatch) reads the bundle again.
Manifest open_bundle(const std::string& dir, const std::function<void(const Manifest&)>& then);

// open_bundle(), then every model's weights loaded into its network (the
// tensors must fit the encoding, not only their hashes), read again in the
// same way when the bundle was replaced meanwhile.
Manifest verify_bundle(const std::string& dir);

// The current time as provenance records it: ISO 8601, UTC, seconds.
std::string utc_timestamp();

// A program's command line as provenance records it: the program by its name
// alone, then its arguments. Where a tool was built is no part of how a
// bundle was made, and a shipped manifest must not carry a machine's paths.
std::string provenance_command_line(int argc, char** argv);

// Checks one listed file; `dir` is the bundle directory.
void verify_file(const std::string& dir, const FileEntry& file);

// Builds `model`'s network and loads its weights, hashing the bytes it reads
// again so that a file changed since open_bundle() is refused too.
Network load_network(const std::string& dir, const ModelInfo& model);

// What every fine-tune starts from: load_network(), then a new head for the
// task's `num_classes`, initialised from `seed` (the global LibTorch
// generator is seeded with it). The head is new even when the task has as
// many classes as the upstream corpus, whose classes are not the task's, and
// its initialisation is part of what a run's seed reproduces.
Network load_network_for_task(const std::string& dir, const ModelInfo& model, int num_classes,
                              std::uint64_t seed);

}  // namespace nasoa::zoo
