// nasoa-zoo: inspect encodings and create, inspect and verify zoo bundles.
//
//   nasoa-zoo info ENCODING... [--classes N] [--input S]
//   nasoa-zoo create --out DIR --name NAME --encoding E [--encoding E ...] [--model-name M ...]
//                    --classes N --input S [--seed K] [--replace]
//   nasoa-zoo inspect DIR
//   nasoa-zoo verify DIR
//
// Exit status: 0 success, 1 a failed operation (the reason on stderr),
// 2 an invalid encoding given to `info`, 2 bad arguments.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "nasoa/version.h"
#include "samples/common/command_line.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"
#include "zoo/bundle/manifest.h"
#include "zoo/system/usable_cores.h"
#include "zoo/text/printable.h"

namespace {

using nasoa::Encoding;
using nasoa::Error;

int run_info(const std::vector<std::string>& encodings, int classes, int input) {
  std::cout << "encoding\tparameters\tmacs\n";
  int status = 0;
  for (const std::string& text : encodings) {
    try {
      const nasoa::NetworkCost cost = nasoa::count_cost(Encoding::parse(text), classes, input);
      std::cout << text << '\t' << cost.parameters << '\t' << cost.macs << '\n';
    } catch (const Error& e) {
      // A valid encoding whose counts overflow (a huge --classes or --input)
      // is a failed operation, not an invalid encoding.
      std::cerr << "nasoa-zoo: " << e.what() << '\n';
      status = std::max(status, e.code() == nasoa::ErrorCode::kInvalidEncoding ? 2 : 1);
    }
  }
  return status;
}

struct CreateArgs {
  std::string out, name;
  std::vector<std::string> encodings, model_names;
  int classes = 0, input = 0;
  std::uint64_t seed = 0;
  bool replace = false;
};

// Whether --replace may replace `dir`: it is missing, an empty folder, or a
// bundle whose manifest reads (a folder that merely holds a file named
// MANIFEST is not), so that a mistyped --out never deletes unrelated data.
void check_replaceable(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return;
  if (fs::is_directory(dir, ec) && fs::is_empty(dir, ec)) return;
  const fs::path manifest = fs::path(dir) / nasoa::zoo::kManifestFileName;
  try {
    if (!fs::is_directory(dir, ec)) throw Error(nasoa::ErrorCode::kInvalidArgument, "not a folder");
    nasoa::zoo::read_manifest(manifest.string());
  } catch (const Error& e) {
    throw nasoa_samples::BadArguments(dir + " exists and is not a zoo bundle (" + e.what() +
                                      "); refusing to replace it");
  }
}

int run_create(const CreateArgs& a, const std::string& command_line) {
  if (!a.model_names.empty() && a.model_names.size() != a.encodings.size())
    throw nasoa_samples::BadArguments("--model-name given " + std::to_string(a.model_names.size()) + " times for " +
                                      std::to_string(a.encodings.size()) + " encodings");
  // Names and encodings are the command line's: refused before anything is built.
  std::vector<Encoding> encodings;
  nasoa_samples::checking_arguments([&] {
    for (const std::string& e : a.encodings) encodings.push_back(Encoding::parse(e));
    for (const std::string& name : a.model_names) nasoa::zoo::check_safe_name("--model-name", name);
    nasoa::zoo::check_safe_name("--name", a.name);
  });
  if (a.replace) {
    check_replaceable(a.out);
  } else if (std::error_code ec; std::filesystem::exists(std::filesystem::symlink_status(a.out, ec))) {
    throw nasoa_samples::BadArguments("--out " + a.out +
                                      " already exists; give --replace to replace the bundle there, or another --out");
  }
  torch::manual_seed(a.seed);
  nasoa::zoo::BundleInput input;
  input.name = a.name;
  input.provenance = {std::string("nasoa-zoo ") + NASOA_VERSION_STRING, command_line, a.seed,
                      nasoa::zoo::utc_timestamp(), "none: freshly initialised, not trained"};
  for (std::size_t i = 0; i < a.encodings.size(); ++i) {
    nasoa::zoo::BundleModelInput model;
    // Encodings use only [0-9a-c_-], so by default they name themselves.
    model.name = a.model_names.empty() ? a.encodings[i] : a.model_names[i];
    model.network = nasoa::zoo::Network(encodings[i], a.classes);
    model.input_size = a.input;
    input.models.push_back(std::move(model));
  }
  // The new bundle is made in full before the old one goes, and swapped in
  // crash-safely: bad input leaves the old bundle as it was.
  std::error_code ec;
  if (a.replace && std::filesystem::is_directory(a.out, ec) && std::filesystem::is_empty(a.out, ec))
    std::filesystem::remove(a.out, ec);
  const nasoa::zoo::Manifest m = a.replace ? nasoa::zoo::replace_bundle(a.out, input)
                                           : nasoa::zoo::write_bundle(a.out, input);
  std::cout << "wrote bundle '" << m.name << "' with " << m.models.size() << " model(s) to "
            << a.out << '\n';
  return 0;
}

int run_inspect(const std::string& dir) {
  const nasoa::zoo::Manifest m = nasoa::zoo::open_bundle(dir);
  const nasoa::Provenance& p = m.provenance;
  // Manifest text is shown, never interpreted: a line break or a terminal
  // escape in it is printed escaped.
  using nasoa::zoo::printable;
  std::cout << "bundle:     " << m.name << " (format " << m.format_version << ")\n"
            << "directory:  " << printable(dir) << "\n"
            << "made by:    " << printable(p.tool) << " on " << printable(p.date) << ", seed " << p.seed << "\n"
            << "command:    " << printable(p.command_line) << "\n"
            << "data card:  " << printable(p.data_card) << "\n"
            << "predictor:  " << (m.predictor ? m.predictor->path : "none") << "\n"
            << "experience: " << (m.experience ? m.experience->path : "none") << "\n\n";
  std::printf("%-28s %-34s %5s %7s %8s %12s %15s %10s  %s\n", "name", "encoding", "input",
              "classes", "top-1", "parameters", "MACs", "bytes", "sha256");
  for (const nasoa::ModelInfo& model : m.models) {
    char accuracy[16] = "-";
    if (model.upstream_accuracy)
      std::snprintf(accuracy, sizeof accuracy, "%.2f%%", *model.upstream_accuracy * 100);
    std::printf("%-28s %-34s %5d %7d %8s %12lld %15lld %10llu  %.12s\n", model.name.c_str(),
                model.encoding.c_str(), model.input_size, model.upstream_classes, accuracy,
                static_cast<long long>(model.parameters), static_cast<long long>(model.macs),
                static_cast<unsigned long long>(model.weights_bytes), model.weights_sha256.c_str());
  }
  return 0;
}

int run_verify(const std::string& dir) {
  // Checksums first (open_bundle), then every weights file must load into its
  // network: the tensors must fit the encoding, not just match their hashes.
  const nasoa::zoo::Manifest m = nasoa::zoo::verify_bundle(dir);
  std::cout << "OK " << dir << ": " << m.models.size() << " model(s), " << m.files().size() + 1
            << " file(s) verified\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(nasoa::zoo::usable_cores());
  CLI::App app{"nasoa-zoo: ET-NAS encodings and zoo bundles (nasoa " NASOA_VERSION_STRING ")"};
  app.require_subcommand(1);

  std::vector<std::string> encodings;
  int classes = 1000, input = 224;
  auto* info = app.add_subcommand("info", "Print parameters and MACs of encodings, analytically");
  info->add_option("encodings", encodings, "ET-NAS encodings, BLOCK_C0_MACRO")->required();
  info->add_option("--classes", classes, "Classifier classes")->check(CLI::Range(1, 1000000))->capture_default_str();
  info->add_option("--input", input, "Square input side in pixels")->check(CLI::Range(1, 65536))->capture_default_str();

  // An empty path would reach std::filesystem and come back as its error,
  // naming no option.
  const CLI::Validator non_empty([](std::string& text) { return text.empty() ? std::string("an empty path") : ""; },
                                 "PATH");
  CreateArgs create_args;
  auto* create = app.add_subcommand("create", "Write a bundle of freshly initialised models");
  create->add_option("--out", create_args.out, "Bundle directory to create (must not exist)")->required()->check(non_empty);
  create->add_option("--name", create_args.name, "Bundle name")->required();
  create->add_option("--encoding", create_args.encodings, "A model's encoding (repeat for more)")->required();
  create->add_option("--model-name", create_args.model_names, "Model names, one per --encoding (default: the encoding)");
  create->add_option("--classes", create_args.classes, "Classifier classes")->required()->check(CLI::Range(1, 1000000));
  create->add_option("--input", create_args.input, "Square input side in pixels")->required()->check(CLI::Range(8, 4096));
  create->add_option("--seed", create_args.seed, "Seed of the initialisation")
      ->check(nasoa_samples::non_negative_integer())  // "-1" would otherwise wrap to 2^64 - 1
      ->capture_default_str();
  create->add_flag("--replace", create_args.replace, "Replace an existing bundle at --out");

  std::string dir;
  auto* inspect = app.add_subcommand("inspect", "Verify a bundle and print its models as a table");
  inspect->add_option("dir", dir, "Bundle directory")->required()->check(non_empty);
  auto* verify = app.add_subcommand("verify", "Check every file and that every model loads; exit 0 if sound");
  verify->add_option("dir", dir, "Bundle directory")->required()->check(non_empty);

  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  return nasoa_samples::run_reporting_errors("nasoa-zoo", [&] {
    if (info->parsed()) return run_info(encodings, classes, input);
    if (create->parsed()) return run_create(create_args, nasoa::zoo::provenance_command_line(argc, argv));
    if (inspect->parsed()) return run_inspect(dir);
    if (verify->parsed()) return run_verify(dir);
    return 1;
  });
}
