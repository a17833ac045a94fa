// runtime_bench: the runtime's speed targets, measured on a real image folder.
//
//   runtime_bench --data DIR [--encoding E] [--input 64] [--batch 32]
//                 [--epochs 2] [--reps 5] [--threads N] [--workers N] [--device cpu|cuda]
//
// 1. Training throughput through the BatchLoader against the same batches
//    prepared in memory beforehand (same network, same seeds, so the very
//    same tensors): the loader should cost at most 5 % (ratio >= 0.95).
//    The contenders alternate, --reps times each; medians are reported.
//    On the CPU a third contender trains on the pre-made batches in the
//    channels-last layout, to show what the runtime's choice of layout
//    (runtime/train/memory_layout.h) is worth for this network.
// 2. Inference in eval mode (zoo::Network, no-grad, as nasoa::Classifier
//    runs it): latency at batch 1 and throughput at batch 64, with the
//    compute threads of training and with every core.
//
// With --device cuda both run on the GPU as runtime::fine_tune does (batches
// copied over per step, cuDNN autotuning, bf16 autocast where the GPU has
// it); the pre-made batches then wait on the GPU already, the best case.
//
// DIR is a folder of class subfolders of images; bench/adapt_vs_python.py
// --data-only makes one from Fashion-MNIST. Prints a table; not a test.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "zoo/system/usable_cores.h"
#include "bench/bench_support.h"
#include "nasoa/encoding.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/image_store.h"
#include "runtime/data/task_source.h"
#include "runtime/train/autocast.h"
#include "runtime/train/memory_layout.h"
#include "runtime/train/optimizer.h"
#include "zoo/builder/network.h"

namespace {

using Clock = std::chrono::steady_clock;
using nasoa::runtime::Batch;
using nasoa::runtime::BatchLoader;
using nasoa::runtime::MemoryLayout;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

using nasoa::bench::cpu_model;
using nasoa::bench::median;

double load_average() {
  double l = -1;
  std::ifstream("/proc/loadavg") >> l;
  return l;
}

struct Trainer {
  nasoa::zoo::Network net;
  torch::Device device;
  bool bf16;
  nasoa::runtime::Optimizer optimizer;
  torch::nn::functional::CrossEntropyFuncOptions loss_options;
  MemoryLayout layout;
  Trainer(nasoa::zoo::Network n, const nasoa::Regime& regime, torch::Device d,
          MemoryLayout l = MemoryLayout::kChannelsFirst)
      : net(std::move(n)), device(d), bf16(nasoa::runtime::cuda_bf16_usable(d)),
        optimizer((net->to(d), *net), regime),
        loss_options(torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(regime.label_smoothing)),
        layout(l) {
    nasoa::runtime::set_memory_layout(*net, layout);
    optimizer.set_memory_layout(layout);
    net->train();
  }
  // One step as runtime::fine_tune takes it (the copy to the device and the
  // loss and accuracy read back included).
  void step(const Batch& b) {
    optimizer.zero_grad();
    const torch::Tensor images = nasoa::runtime::in_memory_layout(b.images.to(device), layout);
    const torch::Tensor labels = b.labels.to(device);
    torch::Tensor logits, loss;
    {
      nasoa::runtime::CudaAutocast autocast(bf16);
      logits = net->forward(images);
      loss = torch::nn::functional::cross_entropy(logits, labels, loss_options);
    }
    loss.backward();
    optimizer.step(0.01);
    volatile double sink = loss.item<double>() + double(logits.argmax(1).eq(labels).sum().item<std::int64_t>());
    (void)sink;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"runtime_bench: BatchLoader vs pre-made tensors, and inference latency/throughput"};
  std::string data, encoding = "020-_16_11-21-21", device_name = "cpu";
  int input = 64, batch = 32, epochs = 2, reps = 5, threads = 0, workers = 0;
  app.add_option("--data", data, "Folder of class subfolders of images")->required();
  app.add_option("--encoding", encoding, "Network")->capture_default_str();
  app.add_option("--input", input, "Image side")->capture_default_str();
  app.add_option("--batch", batch, "Training batch size")->capture_default_str();
  app.add_option("--epochs", epochs, "Epochs per measurement")->capture_default_str();
  app.add_option("--reps", reps, "Repetitions of each contender")->capture_default_str();
  app.add_option("--threads", threads, "Compute threads (default as nasoa::Adapter: cores - workers; all cores with a GPU)");
  app.add_option("--workers", workers, "Loader threads (default as nasoa::Adapter: a quarter of the cores, at least one; cores - 1 with a GPU)");
  app.add_option("--device", device_name, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const int cores = nasoa::zoo::usable_cores();
  // nasoa::Adapter's defaults: on the CPU the loader and compute share the
  // cores; with a GPU, compute threads only feed it and the loader gets the rest.
  const bool gpu = device_name == "cuda";
  if (workers <= 0) workers = gpu ? std::max(1, cores - 1) : std::max(1, cores / 4);
  if (threads <= 0) threads = gpu ? cores : std::max(1, cores - workers);
  const double load = load_average();

  nasoa::runtime::IngestOptions ingest;
  ingest.side = input;
  const Clock::time_point t_ingest = Clock::now();
  const nasoa::runtime::ImageStore store(nasoa::runtime::list_folder(data), ingest);
  const double ingest_seconds = seconds_since(t_ingest);
  std::vector<std::size_t> indices(store.size());
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  const int classes = int(store.class_names().size());

  nasoa::Regime regime;
  regime.model = "bench";
  regime.batch_size = batch;
  nasoa::runtime::LoaderOptions options;
  options.batch_size = batch;
  options.random_resized_crop = true;
  options.horizontal_flip = true;
  options.workers = workers;

  if (device_name == "cuda" && !torch::cuda::is_available()) {
    std::fprintf(stderr, "runtime_bench: --device cuda, but LibTorch sees no CUDA device\n");
    return 1;
  }
  const torch::Device device = device_name == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  // As fine_tune() runs with kCudnnAutotuneSeconds or more left.
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  const auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };

  torch::manual_seed(0);
  const nasoa::Encoding enc = nasoa::Encoding::parse(encoding);
  Trainer trainer(nasoa::zoo::Network(enc, classes), regime, device);
  // The same network and batches in the other memory layout (CPU only: the
  // runtime trains channels-first on GPUs).
  torch::manual_seed(0);
  Trainer trainer_last(nasoa::zoo::Network(enc, classes), regime, device, MemoryLayout::kChannelsLast);
  const bool time_layouts = !device.is_cuda();
  torch::set_num_threads(threads);
  BatchLoader loader(store, indices, options);
  const std::int64_t images_per_measurement = std::int64_t(store.size()) * epochs;

  // The batches of epochs [0, epochs), built beforehand by the same loader.
  std::vector<std::vector<Batch>> premade(static_cast<std::size_t>(epochs));
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch(e);
    while (auto b = loader.next()) {
      b->images = b->images.to(device);
      b->labels = b->labels.to(device);
      premade[std::size_t(e)].push_back(std::move(*b));
    }
  }
  auto run_premade = [&](Trainer& t) {
    const Clock::time_point t0 = Clock::now();
    for (const auto& epoch : premade)
      for (const Batch& b : epoch) t.step(b);
    sync();
    return seconds_since(t0);
  };
  auto run_loader = [&] {
    const Clock::time_point t0 = Clock::now();
    for (int e = 0; e < epochs; ++e) {
      loader.start_epoch(e);
      while (auto b = loader.next()) trainer.step(*b);
    }
    sync();
    return seconds_since(t0);
  };
  run_premade(trainer);  // warm-up: first-touch allocations, OpenMP start
  if (time_layouts) run_premade(trainer_last);
  std::vector<double> premade_s, loader_s, last_s;
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {
      premade_s.push_back(run_premade(trainer));
      loader_s.push_back(run_loader());
      if (time_layouts) last_s.push_back(run_premade(trainer_last));
    } else {
      if (time_layouts) last_s.push_back(run_premade(trainer_last));
      loader_s.push_back(run_loader());
      premade_s.push_back(run_premade(trainer));
    }
    std::fprintf(stderr, "rep %d/%d: pre-made %.2f s, loader %.2f s, pre-made channels-last %.2f s\n", r + 1, reps,
                 premade_s.back(), loader_s.back(), time_layouts ? last_s.back() : 0.0);
  }
  std::vector<double> premade_ips, loader_ips, last_ips;
  for (double s : premade_s) premade_ips.push_back(double(images_per_measurement) / s);
  for (double s : loader_s) loader_ips.push_back(double(images_per_measurement) / s);
  for (double s : last_s) last_ips.push_back(double(images_per_measurement) / s);

  // Loader alone: how fast the workers build batches with nothing else running.
  std::vector<double> build_s;
  for (int r = 0; r < reps; ++r) {
    const Clock::time_point t0 = Clock::now();
    loader.start_epoch(100 + r);
    while (auto b = loader.next()) {
    }
    build_s.push_back(seconds_since(t0));
  }

  std::printf("# runtime_bench: training through BatchLoader vs pre-made tensors; inference\n");
  std::printf("network      %s, %d classes, %dx%d input, batch %d, SGD, random resized crop + flip\n", encoding.c_str(),
              classes, input, input, batch);
  std::printf("data         %zu images from %s (decoded once in %.2f s)\n", store.size(), data.c_str(), ingest_seconds);
  std::printf("machine      %s, %d cores; %d compute thread(s) + %d loader thread(s); LibTorch %s; load average at start %.2f\n",
              cpu_model().c_str(), cores, threads, workers, TORCH_VERSION, load);
  std::printf("device       %s%s\n", device.is_cuda() ? "cuda:0" : "cpu", trainer.bf16 ? " (bf16 autocast)" : "");
  std::printf("repetitions  %d per contender, alternated, %d epochs (%lld images) each; medians\n\n", reps, epochs,
              (long long)images_per_measurement);
  std::printf("training\tseconds\timages_per_s\n");
  std::printf("pre-made tensors\t%.3f\t%.1f\n", median(premade_s), median(premade_ips));
  std::printf("BatchLoader\t%.3f\t%.1f\n", median(loader_s), median(loader_ips));
  if (time_layouts)
    std::printf("pre-made tensors, channels-last\t%.3f\t%.1f\n", median(last_s), median(last_ips));
  std::printf("loader alone (no training, %d worker(s))\t%.3f\t%.1f\n", workers, median(build_s),
              double(store.size()) / median(build_s));
  std::printf("\nratio loader/pre-made images/s: %.3f (target >= 0.95)\n", median(loader_ips) / median(premade_ips));
  if (time_layouts)
    std::printf("ratio channels-last/channels-first images/s (pre-made): %.3f\n", median(last_ips) / median(premade_ips));
  std::printf("\n");

  // Inference, eval mode, no autograd, on real (normalised, unaugmented) images.
  nasoa::zoo::Network& net = trainer.net;
  net->eval();
  torch::NoGradGuard no_grad;
  nasoa::runtime::LoaderOptions eval_options;
  eval_options.batch_size = 64;
  eval_options.shuffle = false;
  eval_options.workers = 1;
  BatchLoader eval_loader(store, indices, eval_options);
  eval_loader.start_epoch(0);
  const torch::Tensor images64 = eval_loader.next()->images.to(device);
  std::printf("inference (eval, no-grad)\tthreads\tbatch1_runs\tbatch1_median_ms\tbatch1_p90_ms\tbatch64_runs\tbatch64_median_ms\tbatch64_images_per_s\n");
  std::vector<int> thread_counts{threads};
  if (cores != threads && !device.is_cuda()) thread_counts.push_back(cores);
  for (int t : thread_counts) {
    torch::set_num_threads(t);
    std::vector<double> one, many;
    for (int i = 0; i < 20; ++i) net->forward(images64.slice(0, i % 64, i % 64 + 1));
    // At most 300 runs or 5 s, at least 20: a loaded machine must not stall the table.
    const Clock::time_point t_one = Clock::now();
    for (int i = 0; i < 300 && (i < 20 || seconds_since(t_one) < 5); ++i) {
      const torch::Tensor x = images64.slice(0, i % 64, i % 64 + 1);
      const Clock::time_point t0 = Clock::now();
      const torch::Tensor y = net->forward(x);
      sync();
      one.push_back(1e3 * seconds_since(t0));
    }
    for (int i = 0; i < 3; ++i) net->forward(images64);
    const Clock::time_point t_many = Clock::now();
    for (int i = 0; i < 30 && (i < 5 || seconds_since(t_many) < 5); ++i) {
      const Clock::time_point t0 = Clock::now();
      const torch::Tensor y = net->forward(images64);
      sync();
      many.push_back(1e3 * seconds_since(t0));
    }
    std::vector<double> sorted = one;
    std::sort(sorted.begin(), sorted.end());
    const double p90 = sorted[std::size_t(0.9 * double(sorted.size() - 1))];
    std::printf("zoo::Network\t%d\t%zu\t%.3f\t%.3f\t%zu\t%.2f\t%.1f\n", t, one.size(), median(one), p90, many.size(),
                median(many), 64e3 / median(many));
  }
  return 0;
}
