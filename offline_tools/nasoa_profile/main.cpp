// nasoa-profile: measure what fine-tuning and inference cost on this device,
// per model of a zoo bundle, and write the device profile the runtime plans with.
//
//   nasoa-profile --zoo DIR --out FILE [--batch 8,16,32,64] [--repeat N] [--warmup N]
//                 [--threads N] [--models a,b] [--cpu] [--no-power]
//
// Exit status: 0 success, 1 a failed operation (the reason on stderr), 2 bad
// arguments. Nothing is written unless every model was measured.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "nasoa/error.h"
#include "nasoa/version.h"
#include "runtime/profile/device_profile.h"
#include "samples/common/command_line.h"
#include "samples/common/output_path.h"
#include "zoo/bundle/bundle.h"
#include "zoo/system/usable_cores.h"

namespace {

using nasoa::runtime::ProfileProgress;

void print_progress(const ProfileProgress& p) {
  if (!p.done) return;  // one line per model, once it is measured
  const nasoa::runtime::ModelProfile& m = *p.done;
  std::string steps;
  for (const nasoa::runtime::StepTiming& s : m.steps)
    if (s.frozen_stages == 0) {
      char cell[64];
      std::snprintf(cell, sizeof cell, " b%d=%.4gs", s.batch_size, s.step_seconds);
      steps += cell;
    }
  std::fprintf(stderr,
               "nasoa-profile: [%zu/%zu] %s: %d stages, trains %s, step (nothing frozen)%s, inference %.3g ms/image, "
               "%.1f s\n",
               p.index + 1, p.count, p.model.c_str(), m.num_stages, nasoa::runtime::to_string(m.training_layout),
               steps.c_str(), m.inference_seconds_per_image_batch1 * 1e3, p.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nasoa-profile: time fine-tuning steps and inference of a zoo bundle's models on this "
               "device and write the device profile (nasoa " NASOA_VERSION_STRING ")"};
  std::string zoo, out;
  nasoa::runtime::ProfileOptions options;
  // The compute threads nasoa::Adapter uses on a CPU (a quarter of the cores
  // build batches), so that the profile predicts the steps fine-tuning takes.
  const int cores = nasoa::zoo::usable_cores();
  options.threads = std::max(1, cores - std::max(1, cores / 4));
  bool cpu_only = false, no_power = false;
  app.add_option("--zoo", zoo, "Zoo bundle directory")->required();
  app.add_option("--out", out, "Device profile to write (JSON, replaced atomically)")->required();
  app.add_option("--batch", options.batch_sizes, "Batch sizes to time, comma-separated")
      ->delimiter(',')->check(nasoa_samples::list_values())
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--repeat", options.repetitions, "Timed steps per configuration (the median is kept)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--warmup", options.warmup, "Untimed steps before each configuration")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "LibTorch intra-op threads (default: as fine-tuning uses them on a CPU)")
      ->check(CLI::Range(1, nasoa::zoo::usable_cores()))  // more only waits on itself
      ->capture_default_str();
  app.add_option("--models", options.models, "Only these models, comma-separated (default: all)")
      ->delimiter(',')->check(nasoa_samples::list_values());
  app.add_flag("--cpu", cpu_only, "Measure on the CPU even where CUDA is available");
  app.add_flag("--no-power", no_power, "Do not read an energy meter");
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;

  options.use_cuda = !cpu_only;
  options.measure_power = !no_power;
  return nasoa_samples::run_reporting_errors("nasoa-profile", [&] {
    if (out.empty() || zoo.empty())
      throw nasoa_samples::BadArguments(std::string(out.empty() ? "--out" : "--zoo") + " is an empty path");
    nasoa_samples::checking_arguments([&] { nasoa::runtime::check_profile_options(options); });
    // Before the minutes of measuring: where the profile goes must take it.
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path target = fs::absolute(out);
    if (std::filesystem::exists(target, ec) && !std::filesystem::is_regular_file(target, ec))
      throw nasoa_samples::BadArguments(out + ": exists and is not a regular file");
    if (!std::filesystem::is_directory(target.parent_path(), ec))
      throw nasoa_samples::BadArguments(out + ": its folder " + target.parent_path().string() + " does not exist");
    // Inside the bundle it would replace one of its files, or mix one
    // device's measurements into what ships to every device.
    if (!zoo.empty() && nasoa_samples::is_within(target.parent_path().string(), zoo))
      throw nasoa_samples::BadArguments(out + ": is inside the zoo bundle " + zoo +
                                        "; write the profile somewhere else");
    // --models names models of the bundle: one it lacks is a bad argument,
    // said before anything is measured.
    if (!options.models.empty()) {
      // The manifest alone: profile_bundle() verifies the files.
      const nasoa::zoo::Manifest manifest =
          nasoa::zoo::read_manifest((std::filesystem::path(zoo) / "MANIFEST").string());
      std::string names;
      for (const nasoa::ModelInfo& m : manifest.models) names += (names.empty() ? "" : ", ") + m.name;
      for (const std::string& name : options.models)
        if (std::none_of(manifest.models.begin(), manifest.models.end(),
                         [&](const nasoa::ModelInfo& m) { return m.name == name; }))
          throw nasoa_samples::BadArguments("--models: '" + name + "' is not a model of the bundle at " + zoo +
                                            " (it has: " + names + ")");
    }
    const nasoa::runtime::DeviceProfile profile = [&] {
      try {
        return nasoa::runtime::profile_bundle(zoo, options, print_progress);
      } catch (const c10::Error& e) {  // LibTorch's, e.g. a batch too large for the memory
        throw std::runtime_error(std::string(e.what_without_backtrace()) + " (with --batch " +
                                 CLI::detail::join(options.batch_sizes) + ")");
      }
    }();
    nasoa::runtime::save_device_profile(profile, out);
    std::fprintf(stderr, "nasoa-profile: wrote %s (%zu model(s), %s, %d thread(s), power meter: %s)\n",
                 out.c_str(), profile.models.size(), profile.device.device.c_str(), profile.device.threads,
                 profile.meter.c_str());
    return 0;
  });
}
