// runtime/inference/model_dir.h: a fine-tuned model saved for inference.
//
// A model directory is a zoo bundle (docs/bundle-format.md) holding exactly
// one model, named "model", with its class labels. The manifest's fields carry
// what inference needs: encoding, input size, mean/std, labels, and, in
// `upstream_accuracy`, the validation accuracy measured after fine-tuning.
// So a model directory is verified like any bundle before a weight is read.
//
// Replacing one is crash-safe, by the swap all bundles use
// (zoo::replace_bundle): the new bundle is written complete beside DIR
// (".NAME.new"), then DIR is renamed aside (".NAME.old"), the new one renamed
// in, and the old one removed. A crash at any instant leaves DIR holding the
// old or the new model, except between the two renames, where DIR is missing
// and ".NAME.old" holds the old model: recover_model_dir() puts it back, and
// both save_model_dir() and open_model_dir() call it first.
//
// Not safe against two processes saving the same DIR at once.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/zoo.h"
#include "zoo/builder/network.h"

namespace nasoa::runtime {

inline constexpr char kModelName[] = "model";

struct ModelDirInfo {
  std::vector<std::string> labels;  // one per network class, non-empty, no tab or newline
  int input_size = 224;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};  // RGB, applied to [0,1] pixels
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  std::optional<double> validation_accuracy;  // top-1 in [0,1]
  Provenance provenance;
};

// Saves `network` (its parameters and buffers, as they are) as the model
// directory `dir`, replacing the model directory there if any. Throws
// Error{kInvalidArgument} when the labels do not match the network's classes
// or check_model_dir_target(dir) refuses `dir` (it is never touched then), Error{kIo}
// when writing fails (the previous model directory is left in place).
void save_model_dir(const std::string& dir, zoo::Network& network, const ModelDirInfo& info);

// `dir` as the folder it names, absolute: "dir", "dir/" and "dir/." all name
// dir. Files kept beside a model directory (the checkpoint while it trains)
// are named after this path, so every spelling finds the same ones.
std::filesystem::path model_dir_path(const std::string& dir);

// Checks, before any work, that save_model_dir(dir, ...) may write there:
// `dir` does not exist and its parent folder does, or it is a model
// directory (a bundle whose manifest lists one model with labels, written by
// the SDK; its weights may be damaged). A save a crash interrupted is
// finished first (recover_model_dir), so the copy it set aside is checked
// as `dir`. A zoo bundle (of several models, or written by an offline tool,
// or shipping experience), a link to nothing, any other existing file or
// folder, and `protect` (the zoo being adapted) are refused with
// Error{kInvalidArgument} naming the path; Error{kIo} when the recovery
// cannot take the folder's lock.
void check_model_dir_target(const std::string& dir, const std::string& protect = {});

// Finishes a replacement that a crash interrupted (see above). Returns the
// directory to read: `dir`, or the aside copy when it could not be renamed
// back (a read-only file system, say). Never throws for a missing `dir`.
std::string recover_model_dir(const std::string& dir);

struct LoadedModel {
  std::string dir;      // the directory actually read (see recover_model_dir)
  ModelInfo info;       // labels are never empty
  Provenance provenance;
  zoo::Network network{nullptr};  // in eval mode, on the CPU
};

// Recovers, verifies and loads a model directory. Throws as Zoo::open() does,
// and Error{kInvalidArgument} for a bundle that is not a model directory (not
// exactly one model, or no labels).
LoadedModel open_model_dir(const std::string& dir);

}  // namespace nasoa::runtime
