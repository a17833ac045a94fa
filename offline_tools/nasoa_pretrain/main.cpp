// nasoa-pretrain: train a network from scratch on an upstream corpus and add it to a bundle.
//
//   nasoa-pretrain --encoding E (--data DIR | --idx IMAGES LABELS) [--classes a,b,c]
//                  [--class-names x,y,z] --input S --epochs N --out BUNDLE --name NAME
//                  [--model-name M] [--lr X] [--batch B] [--budget SECONDS]
//                  [--validation-fraction F] [--seed S] [--threads N] [--data-card REF]
//                  [--flip|--no-flip] [--checkpoint-every SECONDS] [--quiet]
//
// The training loop is the runtime's own (runtime::fine_tune), so that the zoo
// is pretrained exactly as it will later be fine-tuned. A stratified part of
// each class is held out; its top-1 accuracy is recorded as the model's
// upstream accuracy, and the weights of the best epoch on it are kept. The
// normalisation recorded is the corpus's own per-channel mean and std.
//
// The models of a bundle share one input size (nasoa-gather fine-tunes them
// all on one decoding of each task): a --input other than the bundle's
// models' is refused before training. A model that replaces one of its name
// with other weights leaves out the bundle's predictor and experience, which
// were fitted on the old weights, and says so (gather and ship again).
// Files of the corpus that cannot be read are listed (the first 10).
//
// Training checkpoints to BUNDLE.pretrain-MODEL.checkpoint beside the bundle
// (every --checkpoint-every seconds, and at the first and last epoch ends).
// The same command run again after a crash or kill resumes from it, to the
// weights an uninterrupted run makes; a checkpoint of another command (other
// encoding, corpus, classes or options) is refused, naming it. It is removed
// once the model is in the bundle.
//
// Exit status: 0 success, 1 a failed operation (the reason on stderr),
// 2 bad arguments.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include <unistd.h>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "nasoa/version.h"
#include "runtime/data/image_store.h"
#include "runtime/data/split.h"
#include "runtime/data/task_source.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/fine_tuner.h"
#include "samples/common/command_line.h"
#include "samples/common/text_file.h"
#include "samples/common/output_path.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"
#include "zoo/bundle/manifest.h"
#include "zoo/bundle/sha256.h"
#include "zoo/bundle/weights_file.h"
#include "zoo/system/usable_cores.h"

namespace {

using nasoa::Error;
using nasoa::ErrorCode;

struct Args {
  std::string encoding, data, out, name, model_name, data_card = "unspecified";
  std::vector<std::string> idx, classes, class_names;
  int input = 0, epochs = 0, batch = 64, threads = 0;
  double lr = 0.1, budget = 0, validation_fraction = 0.1, checkpoint_every = 60;
  std::uint64_t seed = 0;
  bool quiet = false;
  bool flip = false;
};

// A line every few seconds and at each epoch's end: pretraining runs for
// minutes, often into a log file, where lines read better than a redrawn bar.
// The loop reports before it evaluates, so validation accuracy is printed
// from the history once training is over.
void print_progress(const nasoa::runtime::TrainProgress& p) {
  static auto last = std::chrono::steady_clock::now();
  const auto now = std::chrono::steady_clock::now();
  if (p.step != p.steps_per_epoch && now - last < std::chrono::seconds(5)) return;
  last = now;
  char line[200];
  std::snprintf(line, sizeof line, "epoch %d/%d step %lld/%lld loss %.3f train %5.1f%% %7.1f s", p.epoch, p.epochs,
                static_cast<long long>(p.step), static_cast<long long>(p.steps_per_epoch), p.loss,
                100 * p.train_accuracy, p.elapsed_seconds);
  std::cerr << line << '\n';
}

// What identifies a pretraining run, so that its checkpoint resumes that
// run only: the network, the input size, the regime and the corpus (each
// file's path and label, and the class names).
std::string run_fingerprint(const std::string& encoding, int input, const nasoa::Regime& r,
                            const nasoa::runtime::ImageStore& store) {
  std::string text = encoding + '\n' + std::to_string(input) + '\n';
  char numbers[200];
  std::snprintf(numbers, sizeof numbers, "%.17g %d %d %.17g %.17g %llu %d\n", r.learning_rate, r.epochs, r.batch_size,
                r.weight_decay, r.validation_fraction, static_cast<unsigned long long>(r.seed),
                int(r.horizontal_flip));
  text += numbers;
  for (const std::string& name : store.class_names()) text += name + '\n';
  for (std::size_t i = 0; i < store.size(); ++i) text += store.path(i) + '\t' + std::to_string(store.label(i)) + '\n';
  return nasoa::zoo::sha256_hex(text);
}

int run(const Args& a, const std::string& command_line) {
  namespace rt = nasoa::runtime;
  // The command line's own faults, before reading data: bad arguments.
  const nasoa::Encoding encoding = nasoa_samples::checking_arguments([&] {
    if (!a.classes.empty()) rt::check_class_selection(a.classes, a.class_names);
    return nasoa::Encoding::parse(a.encoding);
  });
  if (a.data.empty() == a.idx.empty())
    throw nasoa_samples::BadArguments("give exactly one of --data DIR and --idx IMAGES LABELS");
  // Before the training, not after it: what would refuse the model at the end.
  if (a.out.empty()) throw nasoa_samples::BadArguments("--out is empty");
  // A bundle written inside the training folder would be read as a class by
  // the next model's pretraining.
  if (const std::string clash = nasoa_samples::output_clash("--out", a.out, {{"--data", a.data}}); !clash.empty())
    throw nasoa_samples::BadArguments(clash);
  const std::string model_name = a.model_name.empty() ? a.encoding : a.model_name;
  nasoa_samples::checking_arguments([&] {
    nasoa::zoo::check_safe_name("--name", a.name);
    nasoa::zoo::check_safe_name("--model-name", model_name);
  });
  {
    namespace fs = std::filesystem;
    std::error_code ec;
    const std::string live = nasoa::zoo::recover_bundle(a.out);
    // Not a bundle, a damaged one, or a model whose weights do not load:
    // refused now, naming it, as adding to it would be after the training.
    if (fs::exists(fs::symlink_status(live, ec))) {
      for (const nasoa::ModelInfo& m : nasoa::zoo::open_bundle(live).models) {
        nasoa::zoo::load_network(live, m);
        // nasoa-gather refuses a bundle whose models take different input
        // sizes; a model that replaces the only one of its name may change it.
        if (m.name != model_name && m.input_size != a.input)
          throw nasoa_samples::BadArguments("--input " + std::to_string(a.input) + ": model '" + m.name + "' of " +
                                            a.out + " takes " + std::to_string(m.input_size) +
                                            " pixels; a bundle's models share one input size (nasoa-gather "
                                            "refuses a bundle of mixed sizes): give --input " +
                                            std::to_string(m.input_size) + " or another --out");
        // add_to_bundle() replaces a model of the very same name only; one
        // whose name differs in case alone would be a second file of that
        // name on a file system that ignores case, which write_bundle()
        // refuses by the same key, after the training.
        if (m.name != model_name && nasoa::zoo::name_key(m.name) == nasoa::zoo::name_key(model_name))
          throw nasoa_samples::BadArguments(
              std::string(a.model_name.empty() ? "the model name (the encoding) '" : "--model-name '") + model_name +
              "' differs only in case from model '" + m.name + "' of " + a.out +
              " (model names are file names); give '" + m.name + "' to replace that model, or another name");
      }
    } else if (!fs::is_directory(nasoa::zoo::named_folder(a.out).parent_path(), ec)) {
      throw nasoa_samples::BadArguments(a.out + ": its folder does not exist");
    }
  }
  rt::TaskSource source = a.data.empty() ? rt::list_idx(a.idx[0], a.idx[1]) : rt::list_folder(a.data);
  if (!a.classes.empty()) {
    source = rt::select_classes(source, a.classes, a.class_names);
  } else if (!a.class_names.empty()) {
    source = rt::select_classes(source, source.class_names, a.class_names);
  }

  // Batches are built beside the compute threads; together they never exceed
  // the cores, because LibTorch's OpenMP threads spin and starve a loader.
  const int cores = nasoa::zoo::usable_cores();
  const int loader_workers = std::max(1, cores / 4);
  const int threads = a.threads > 0 ? a.threads : std::max(1, cores - loader_workers);
  torch::set_num_threads(threads);

  rt::IngestOptions ingest;
  ingest.side = a.input;
  ingest.threads = threads + loader_workers;
  const auto started = std::chrono::steady_clock::now();
  const rt::ImageStore store(std::move(source), ingest);
  const nasoa::TaskMeta& meta = store.meta();
  if (!a.quiet)
    std::cerr << "corpus: " << store.size() << " images in " << meta.classes << " classes ("
              << store.skipped().size() << " files skipped), " << threads << " compute thread(s)\n";
  // Even with --quiet: files left out of the training are no progress line.
  for (const std::string& line : nasoa_samples::skipped_lines(store.skipped())) std::cerr << "corpus: " << line << "\n";

  rt::FineTuneJob job;
  torch::manual_seed(a.seed);  // the initialisation is part of what the seed reproduces
  job.network = nasoa::zoo::Network(encoding, static_cast<int>(store.class_names().size()));
  job.store = &store;
  job.regime.model = model_name;
  job.regime.learning_rate = a.lr;
  job.regime.epochs = a.epochs;
  job.regime.batch_size = a.batch;
  job.regime.weight_decay = 5e-4;  // from scratch, unlike fine-tuning, the weights need reining in
  job.regime.validation_fraction = a.validation_fraction;
  job.regime.seed = a.seed;
  job.regime.horizontal_flip = a.flip;
  nasoa::validate(job.regime);
  job.split = rt::stratified_split(store.labels(), a.validation_fraction, a.seed);
  for (int c = 0; c < 3; ++c) {
    job.mean[std::size_t(c)] = static_cast<float>(meta.pixel_mean[std::size_t(c)]);
    // A constant channel would divide by zero; such a corpus trains nothing anyway.
    job.std[std::size_t(c)] = static_cast<float>(std::max(meta.pixel_std[std::size_t(c)], 1e-3));
  }
  job.fingerprint = run_fingerprint(encoding.to_string(), a.input, job.regime, store);
  // Beside the bundle, named for the model: two models pretrained into one
  // bundle one after the other keep one checkpoint each.
  job.checkpoint_path = nasoa::zoo::named_folder(a.out).string() + ".pretrain-" + model_name + ".checkpoint";
  job.checkpoint_interval_seconds = a.checkpoint_every;
  std::optional<rt::TrainingState> resume;
  {
    std::error_code ec;
    if (std::filesystem::exists(job.checkpoint_path, ec)) {
      resume = rt::load_checkpoint(job.checkpoint_path);
      if (resume->fingerprint != job.fingerprint)
        throw Error(ErrorCode::kInvalidArgument,
                    job.checkpoint_path + ": a checkpoint of another pretraining of model '" + model_name +
                        "' (another encoding, corpus, classes or options): run that command again to finish it, "
                        "or remove the checkpoint to start this one");
      std::cerr << "nasoa-pretrain: resuming from " << job.checkpoint_path << " (epoch " << resume->epoch << " of "
                << a.epochs << ", step " << resume->step << ")\n";
    }
  }
  // A fixed layout: a layout trial picks by timing, and committed weights
  // must be reproducible from their command and seed.
  job.layout = rt::MemoryLayout::kChannelsFirst;
  job.use_cuda = true;
  job.loader_workers = loader_workers;
  if (!a.quiet) job.on_progress = print_progress;

  const double seconds = a.budget > 0 ? a.budget : 1e9;  // no budget: the epochs decide
  const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // A resumed run's budget counts what the runs before it spent: by the
  // checkpoint, or by the heartbeat written beside it since, if later.
  const double spent_before =
      resume ? rt::spent_before_resume(job.checkpoint_path, *resume, {job.fingerprint}).spent_seconds : 0.0;
  const rt::Limits limits(seconds, a.budget > 0 ? spent + spent_before : 0.0);
  const rt::FineTuneOutcome outcome = rt::fine_tune(job, limits, resume);

  nasoa::zoo::BundleModelInput model;
  model.name = job.regime.model;
  model.network = job.network;
  model.input_size = a.input;
  model.mean = job.mean;
  model.std = job.std;
  if (outcome.validation_accuracy >= 0) model.upstream_accuracy = outcome.validation_accuracy;
  model.labels = store.class_names();
  const nasoa::Provenance provenance{std::string("nasoa-pretrain ") + NASOA_VERSION_STRING, command_line, a.seed,
                                     nasoa::zoo::utc_timestamp(), a.data_card};
  bool dropped_experience = false;
  const nasoa::zoo::Manifest m = [&] {
    try {
      return nasoa::zoo::add_to_bundle(a.out, model, a.name, provenance, &dropped_experience);
    } catch (const std::exception& e) {
      // A full disk, or the bundle changed during the training: the trained
      // network is not thrown away with the error.
      const ErrorCode code = dynamic_cast<const Error*>(&e) ? static_cast<const Error&>(e).code() : ErrorCode::kIo;
      const std::string weights_sha256 =
          nasoa::zoo::sha256_hex(nasoa::zoo::encode_weights(nasoa::zoo::module_state(*model.network)));
      try {
        // A failure after the swap (syncing the folder) left the model added.
        const std::string live = nasoa::zoo::recover_bundle(a.out);
        const nasoa::zoo::Manifest added = nasoa::zoo::open_bundle(live);
        for (const nasoa::ModelInfo& info : added.models)
          if (info.name == model.name && info.weights_sha256 == weights_sha256) {
            std::cerr << "nasoa-pretrain: warning: " << e.what() << "; the model is in the bundle all the same\n";
            return added;
          }
      } catch (const std::exception&) {
      }
      const std::string rescue = nasoa::zoo::named_folder(a.out).string() + ".rescued-" + model.name + "-" +
                                 std::to_string(::getpid());
      try {
        nasoa::zoo::BundleInput alone;
        alone.name = a.name;
        alone.provenance = provenance;
        alone.models.push_back(model);
        nasoa::zoo::write_bundle(rescue, alone);
      } catch (const std::exception& rescue_error) {
        throw Error(code, std::string(e.what()) + "; saving the trained model as a bundle of its own failed too (" +
                              rescue_error.what() + "): it is lost");
      }
      throw Error(code, std::string(e.what()) + "; the trained model is saved as a bundle of its own in " + rescue +
                            ": a zoo of one model, usable as it is (--zoo " + rescue +
                            " for nasoa-adapt and nasoa-gather, nasoa::Zoo::open)");
    }
  }();

  // The model is in the bundle: nothing is left to resume.
  rt::remove_checkpoint(job.checkpoint_path);
  if (!a.quiet)
    for (const rt::EpochRecord& e : outcome.history) {
      char line[160];
      std::snprintf(line, sizeof line, "epoch %d: loss %.3f train %5.1f%% validation %5.1f%% at %7.1f s\n", e.epoch,
                    e.train_loss, 100 * e.train_accuracy, 100 * e.validation_accuracy, e.elapsed_seconds);
      std::cerr << line;
    }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char accuracy[64] = "not evaluated";
  if (outcome.validation_accuracy >= 0)
    std::snprintf(accuracy, sizeof accuracy, "%.2f %%", 100 * outcome.validation_accuracy);
  std::cout << "model:      " << model.name << " (" << a.encoding << ", "
            << nasoa::count_cost(encoding, model.network->num_classes(), a.input).parameters << " parameters)\n"
            << "upstream:   " << accuracy << " top-1 on " << job.split.validation.size()
            << " held-out images (epoch " << outcome.best_epoch << " of " << outcome.history.size() << ", "
            << outcome.stop_reason << ")\n"
            << "time:       " << wall << " s on " << outcome.device << "\n"
            << "bundle:     " << a.out << " ('" << m.name << "', " << m.models.size() << " model(s))\n";
  if (dropped_experience)
    std::cerr << "nasoa-pretrain: note: model '" << model.name << "' of " << a.out
              << " was replaced by other weights: the bundle's predictor and experience, fitted on the old ones,"
                 " were left out of it; run nasoa-gather into a new --log and --ship it to restore them\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nasoa-pretrain: train a network from scratch on an upstream corpus and add it to a zoo bundle (nasoa " NASOA_VERSION_STRING ")"};
  Args a;
  app.add_option("--encoding", a.encoding, "ET-NAS encoding of the network, BLOCK_C0_MACRO")->required();
  auto* data = app.add_option("--data", a.data, "Corpus: a folder of class subfolders");
  app.add_option("--idx", a.idx, "Corpus: MNIST-format IDX images and labels files (plain or gzipped)")
      ->expected(2)->excludes(data);
  app.add_option("--classes", a.classes, "Train on these classes only, in this order: folder names, or label numbers for --idx")
      ->delimiter(',')->check(nasoa_samples::list_values());
  app.add_option("--class-names", a.class_names, "Names of the classes (of --classes when given), in order")
      ->delimiter(',')->check(nasoa_samples::list_values());
  app.add_option("--input", a.input, "Square input side in pixels")->required()->check(CLI::Range(8, 4096));
  app.add_option("--epochs", a.epochs, "Epochs")->required()->check(CLI::Range(1, 100000));
  app.add_option("--out", a.out, "Bundle directory: created, or rewritten with the model added")->required();
  app.add_option("--name", a.name, "Bundle name, when the bundle is created")->required();
  app.add_option("--model-name", a.model_name, "Model name (default: the encoding); replaces a model of that name");
  app.add_option("--lr", a.lr, "Peak learning rate (SGD, cosine schedule)")->check(nasoa_samples::finite_number(0, true))->capture_default_str();
  app.add_option("--batch", a.batch, "Batch size")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--budget", a.budget, "Wall-clock limit of the training, seconds (default: none)")->check(nasoa_samples::finite_number(0, true));
  app.add_option("--validation-fraction", a.validation_fraction, "Held out of each class for the upstream accuracy")
      ->check(nasoa_samples::finite_number(0.01, false, 0.9))->capture_default_str();
  app.add_option("--seed", a.seed, "Seed of initialisation, split and augmentation")
      ->check(nasoa_samples::non_negative_integer())  // "-1" would otherwise wrap to 2^64 - 1
      ->capture_default_str();
  app.add_option("--threads", a.threads, "Compute threads (default: the cores the batch loader leaves)")
      ->check(CLI::Range(0, nasoa::zoo::usable_cores()));  // more only waits on itself
  app.add_option("--data-card", a.data_card, "Where the corpus is described (a data card: file#section or URL), recorded in the provenance")->capture_default_str();
  app.add_flag("--flip,!--no-flip", a.flip,
               "Random horizontal flips (off by default: mirroring changes the class of glyphs and signs)");
  app.add_option("--checkpoint-every", a.checkpoint_every,
                 "Seconds between training checkpoints (beside the bundle; the same command resumes from one)")
      ->check(nasoa_samples::finite_number(0, true))
      ->capture_default_str();
  app.add_flag("--quiet", a.quiet, "No progress lines");
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  return nasoa_samples::run_reporting_errors(
      "nasoa-pretrain", [&] { return run(a, nasoa::zoo::provenance_command_line(argc, argv)); });
}
