#include "offline_tools/corpus/corpus.h"

#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "nasoa/error.h"
#include "nasoa/version.h"
#include "offline_tools/corpus/clipart.h"
#include "offline_tools/corpus/glyphs.h"
#include "offline_tools/corpus/parallel.h"
#include "offline_tools/corpus/rng.h"
#include "runtime/data/image_store.h"
#include "runtime/data/task_source.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"
#include "zoo/text/printable.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace nasoa::corpus {
namespace {

constexpr const char* kSets[] = {"upstream", "source", "eval"};
const std::vector<std::string> kFashionNames = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal",  "shirt",   "sneaker",  "bag",   "ankle-boot"};

struct Counts {
  int fashion_upstream, fashion_eval, clipart, glyph_upstream, glyph_source, glyph_eval;
};

Counts resolve_counts(const CorpusOptions& o) {
  Counts c = o.scale == Scale::kFull ? Counts{1200, 200, 200, 150, 80, 80} : Counts{4, 3, 4, 4, 3, 3};
  const std::pair<int, int*> overrides[] = {{o.fashion_upstream, &c.fashion_upstream}, {o.fashion_eval, &c.fashion_eval},
                                            {o.clipart, &c.clipart},                   {o.glyph_upstream, &c.glyph_upstream},
                                            {o.glyph_source, &c.glyph_source},         {o.glyph_eval, &c.glyph_eval}};
  for (const auto& [given, field] : overrides) {
    if (given == 0 || given < -1 || given > 100000)
      throw Error(ErrorCode::kInvalidArgument, "images per class " + std::to_string(given) + " is outside 1-100000");
    if (given > 0) *field = given;
  }
  return c;
}

enum class Kind { kFashion, kClipart, kGlyph };

struct ClassPlan {
  std::string name;
  Kind kind = Kind::kGlyph;
  int wanted = 0;
  // Fashion-MNIST
  bool train = false;
  int label = -1;
  std::vector<std::int64_t> idx;  // chosen IDX indices, ascending
  // clip-art
  const ClipartCategory* category = nullptr;
  std::vector<std::string> encoded;  // PNG bytes, before the look-alike check
  std::vector<std::vector<std::uint8_t>> thumbs;  // per encoded image, see looks_alike()
  std::vector<std::int64_t> inks;
  std::vector<std::size_t> keep;         // indices into encoded that pass the look-alike check
  std::vector<SkippedFile> skips;        // files that could not be used
  // glyphs
  GlyphClass glyph{};
  std::vector<int> faces;
  // what each written image came from, in file order
  std::vector<std::string> items;
};

struct TaskPlan {
  std::string set;
  std::string name;  // empty for upstream
  std::vector<ClassPlan> classes;
  fs::path dir(const fs::path& out) const { return name.empty() ? out / set : out / set / name; }
};

// Drawings are compared as 16x16 colour thumbnails on white. Two count as
// one drawing when their thumbnails differ by less than 2 % of the ink
// (distance from white) the two hold. A drawing saved again at another size
// or by another program stays below that; two drawings that share a
// template and differ in a small emblem (warning signs, ensign flags) mostly
// stay above it, and so, unavoidably, do two artists' drawings of one flag.
// Relative to the ink, so that faint line drawings are not all alike.
constexpr int kThumbSide = 16;

std::vector<std::uint8_t> thumbnail(const cv::Mat& premultiplied, std::int64_t* ink) {
  cv::Mat small;
  cv::resize(composite_onto(premultiplied, {255, 255, 255}), small, {kThumbSide, kThumbSide}, 0, 0, cv::INTER_AREA);
  std::vector<std::uint8_t> out(small.data, small.data + small.total() * small.elemSize());
  *ink = 0;
  for (const std::uint8_t v : out) *ink += 255 - v;
  return out;
}

bool looks_alike(const std::vector<std::uint8_t>& a, std::int64_t ink_a, const std::vector<std::uint8_t>& b,
                 std::int64_t ink_b) {
  std::int64_t diff = 0;
  for (std::size_t k = 0; k < a.size(); ++k) diff += std::abs(int(a[k]) - int(b[k]));
  return 50 * diff < ink_a + ink_b;
}

std::string file_name(std::size_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05zu", index);
  return std::string(buf) + ".png";
}

std::string encode_png(const cv::Mat& bgr, const std::string& what) {
  std::vector<unsigned char> buf;
  if (!cv::imencode(".png", bgr, buf, {cv::IMWRITE_PNG_COMPRESSION, 3}))
    throw Error(ErrorCode::kInternal, what + ": cannot encode the PNG");
  return std::string(buf.begin(), buf.end());
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.close();
  if (!f) throw Error(ErrorCode::kIo, path.string() + ": cannot write");
}

std::string utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string normal_path(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// Text from the file system (a path, a font's file name, a reason naming a
// file) as it goes into corpus.json, which must be UTF-8: a Latin-1 name
// would make the final dump throw and lose the whole build. Bytes that are
// not UTF-8 are written as \xHH, so the name is still told. Class and task
// names, the only names recorded_files() reads back, are ASCII already
// (class_name_of), so this never makes a recorded file look unrecorded.
// Every backslash is doubled first, so that a folder literally named
// "fonts-\xe9" does not read as the Latin-1 "fonts-é" (one-to-one).
std::string safe(const std::string& text) { return zoo::utf8_escaped(text); }

// A source folder as options and sources record it: the same on every run
// with the same folder, so that a rebuild with the same options is known.
std::string recorded_path(const std::string& p) { return safe(normal_path(p)); }

json options_json(const CorpusOptions& o, const Counts& c) {
  return {{"recipe", kRecipe},
          {"seed", o.seed},
          {"side", o.side},
          {"scale", to_string(o.scale)},
          {"max_pixels", o.max_pixels},
          {"per_class",
           {{"fashion_upstream", c.fashion_upstream},
            {"fashion_eval", c.fashion_eval},
            {"clipart", c.clipart},
            {"glyph_upstream", c.glyph_upstream},
            {"glyph_source", c.glyph_source},
            {"glyph_eval", c.glyph_eval}}},
          {"fashion", recorded_path(o.fashion_dir)},
          {"clipart", recorded_path(o.clipart_dir)},
          {"fonts", recorded_path(o.fonts_dir)}};
}

// Whether `j` nests no deeper than `levels` containers below itself.
bool shallow(const json& j, int levels) {
  if (!j.is_structured()) return true;
  if (levels == 0) return false;
  for (const json& v : j)
    if (!shallow(v, levels - 1)) return false;
  return true;
}

// "seed 1 (it was built with 2), side 64 (it was built with 32)".
std::string differences(const json& now, const json& then) {
  std::string out;
  // flatten() recurses: a hand-made record of deeply nested arrays would
  // overflow the stack, and options are at most two levels deep.
  const json flat_now = now.flatten(), flat_then = then.is_object() && shallow(then, 2) ? then.flatten() : json::object();
  std::set<std::string> keys;
  for (auto it = flat_now.begin(); it != flat_now.end(); ++it) keys.insert(it.key());
  for (auto it = flat_then.begin(); it != flat_then.end(); ++it) keys.insert(it.key());
  for (const std::string& k : keys) {
    const json a = flat_now.contains(k) ? flat_now[k] : json(), b = flat_then.contains(k) ? flat_then[k] : json();
    if (a == b) continue;
    if (!out.empty()) out += ", ";
    out += k.substr(1) + " " + a.dump() + " (it was built with " + b.dump() + ")";
  }
  return out;
}

// Present from the moment a build starts changing OUT until corpus.json is
// written: a folder without corpus.json is an unfinished corpus of ours only
// when it holds this, and anybody's folder otherwise.
constexpr char kBuildingMarker[] = ".nasoa-corpus-building";

bool ours(const std::string& name) {
  return name == "upstream" || name == "source" || name == "eval" || name == "corpus.json" ||
         name == kBuildingMarker || name.rfind("corpus.json.tmp.", 0) == 0 ||
         name.rfind(std::string(kBuildingMarker) + ".tmp.", 0) == 0;
}

// A folder that holds anything this tool does not write is someone else's:
// it is never emptied, whatever the options say.
void refuse_foreign(const fs::path& out) {
  for (const fs::directory_entry& e : fs::directory_iterator(out))
    if (!ours(e.path().filename().string()))
      throw Error(ErrorCode::kInvalidArgument,
                  out.string() + " holds " + e.path().filename().string() +
                      ", which nasoa-corpus does not write; refusing to build a corpus there (use a new or empty folder)");
}

// Empties `out` of an earlier corpus. The building marker comes first and
// corpus.json goes next: should the removal be cut short, what is left is
// never taken for a complete corpus, and is known for an unfinished one.
void clear_out(const fs::path& out) {
  std::error_code ec;
  refuse_foreign(out);
  zoo::write_file_atomic((out / kBuildingMarker).string(), "nasoa-corpus is building a corpus here\n");
  fs::remove(out / "corpus.json", ec);
  if (ec) throw Error(ErrorCode::kIo, (out / "corpus.json").string() + ": cannot remove: " + ec.message());
  zoo::sync_directory(out.string());
  for (const fs::directory_entry& e : fs::directory_iterator(out)) {
    if (e.path().filename() == kBuildingMarker) continue;
    fs::remove_all(e.path(), ec);
    if (ec) throw Error(ErrorCode::kIo, e.path().string() + ": cannot remove: " + ec.message());
  }
}

// The files a corpus record says the corpus holds, relative to OUT and
// sorted: <folder>/<class>/<index>.png for each class of each set. Empty when
// the record does not have the shape nasoa-corpus writes (a damaged or
// hand-edited corpus.json), so that nothing it names is read or trusted.
std::optional<std::vector<std::string>> recorded_files(const json& record) {
  constexpr std::size_t kMostFiles = 50'000'000;
  auto safe = [](const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos;
  };
  std::vector<std::string> files;
  auto add_classes = [&](const std::string& folder, const json& classes) {
    for (const json& c : classes) {
      const std::string name = c.at("name").get<std::string>();
      const std::size_t images = c.at("images").get<std::size_t>();
      if (!safe(name) || images > kMostFiles - files.size()) return false;
      for (std::size_t i = 0; i < images; ++i) files.push_back(folder + "/" + name + "/" + file_name(i));
    }
    return true;
  };
  try {
    const json& sets = record.at("sets");
    if (!add_classes("upstream", sets.at("upstream").at("classes"))) return std::nullopt;
    for (const std::string set : {"source", "eval"})
      for (const json& t : sets.at(set).at("tasks")) {
        const std::string name = t.at("name").get<std::string>();
        if (!safe(name) || !add_classes(set + "/" + name, t.at("classes"))) return std::nullopt;
      }
  } catch (const json::exception&) {
    return std::nullopt;
  }
  std::sort(files.begin(), files.end());
  return files;
}

// One SHA-256 over the recorded files' paths and contents, in path order; a
// missing or unreadable file gives "" and its path in `*problem`.
std::string files_digest(const fs::path& out, const std::vector<std::string>& files, int threads,
                         std::string* problem) {
  std::vector<std::string> lines(files.size());
  std::vector<char> missing(files.size(), 0);
  parallel_for(files.size(), threads, [&](std::size_t i, int) {
    std::error_code ec;
    if (!fs::is_regular_file(fs::symlink_status(out / files[i], ec))) {
      missing[i] = 1;
      return;
    }
    try {
      lines[i] = files[i] + '\0' + zoo::sha256_file_hex((out / files[i]).string()) + '\n';
    } catch (const Error&) {
      missing[i] = 1;
    }
  });
  for (std::size_t i = 0; i < files.size(); ++i)
    if (missing[i]) {
      *problem = files[i] + " is missing or unreadable";
      return {};
    }
  std::string all;
  for (const std::string& line : lines) all += line;
  return zoo::sha256_hex(all);
}

// The first entry under the three sets that the record does not list (a
// file, or a folder no recorded file is in), or empty. Such an entry is not
// the tool's to delete.
std::string first_unrecorded(const fs::path& out, const std::vector<std::string>& files) {
  const std::set<std::string> known(files.begin(), files.end());
  std::set<std::string> folders;
  for (const std::string& f : files)
    for (fs::path p = fs::path(f).parent_path(); !p.empty(); p = p.parent_path()) folders.insert(p.generic_string());
  std::error_code ec;
  for (const char* set : kSets) {
    if (!fs::exists(fs::symlink_status(out / set, ec))) continue;
    for (fs::recursive_directory_iterator it(out / set, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string rel = it->path().lexically_relative(out).generic_string();
      const bool is_folder = it->is_directory(ec) && !it->is_symlink(ec);
      if (is_folder ? !folders.count(rel) : !known.count(rel)) return rel;
    }
    if (ec) throw Error(ErrorCode::kIo, (out / set).string() + ": cannot list: " + ec.message());
  }
  return {};
}

// Everything written so far reaches the disk before corpus.json says it is there.
void sync_filesystem(const fs::path& out) {
  const int fd = ::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::kIo, out.string() + ": cannot open to sync");
  const int rc = ::syncfs(fd);
  ::close(fd);
  if (rc != 0) throw Error(ErrorCode::kIo, out.string() + ": syncfs failed");
}

// OpenCV's own worker threads would compete with the corpus's for the cores.
struct OpenCvThreads {
  int saved = cv::getNumThreads();
  OpenCvThreads() { cv::setNumThreads(1); }
  ~OpenCvThreads() { cv::setNumThreads(saved); }
};

std::string idx_file(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p)) return p.string();
  }
  throw Error(ErrorCode::kNotFound, (fs::path(dir) / (stem + ".gz")).string() +
                                        " does not exist (Debian's dataset-fashion-mnist package provides it)");
}

// The `count` images of class `label` that the seed picks, in IDX order.
std::vector<std::int64_t> pick_fashion(const runtime::TaskSource& split, const std::string& file, int label, int count,
                                       std::uint64_t seed, const std::string& key) {
  // Classes are the labels that occur, named by their values: the class
  // index is the label only while none is missing.
  std::vector<std::int64_t> all;
  const std::string name = std::to_string(label);
  for (const runtime::SampleRef& s : split.samples)
    if (split.class_names[std::size_t(s.label)] == name) all.push_back(s.idx);
  if (std::int64_t(all.size()) < count)
    throw Error(ErrorCode::kInvalidArgument, file + ": class " + std::to_string(label) + " (" +
                                                 kFashionNames[std::size_t(label)] + ") has " +
                                                 std::to_string(all.size()) + " images, fewer than the " +
                                                 std::to_string(count) + " asked for");
  Rng rng(seed, key);
  rng.shuffle(all);
  all.resize(std::size_t(count));
  std::sort(all.begin(), all.end());
  return all;
}

json class_json(const ClassPlan& c, const std::string& clipart_root) {
  json j = {{"name", c.name}, {"images", c.items.size()}};
  switch (c.kind) {
    case Kind::kFashion:
      j["source"] = {{"package", "dataset-fashion-mnist"},
                     {"split", c.train ? "train" : "test"},
                     {"file", c.train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz"},
                     {"label", c.label}};
      j["items_are"] = "index in the IDX file";
      break;
    case Kind::kClipart:
      j["source"] = {{"package", "openclipart-png"},
                     {"folder", safe(c.category->folder)},
                     {"drawings", c.category->files.size()},
                     {"png_files", c.category->png_files}};
      j["items_are"] = "file under " + safe(clipart_root);
      break;
    case Kind::kGlyph:
      j["source"] = {{"package", "fonts"},
                     {"character", utf8(c.glyph.code_point)},
                     {"code_point", code_point_label(c.glyph.code_point)},
                     {"faces", c.faces.size()}};
      j["items_are"] = "font face";
      break;
  }
  // Clip-art items are file names, glyph items font file names.
  json items = json::array();
  for (const std::string& item : c.items) items.push_back(safe(item));
  j["items"] = std::move(items);
  return j;
}

}  // namespace

const char* to_string(Scale scale) { return scale == Scale::kFull ? "full" : "tiny"; }

std::optional<Scale> parse_scale(const std::string& text) {
  if (text == "full") return Scale::kFull;
  if (text == "tiny") return Scale::kTiny;
  return std::nullopt;
}

CorpusSummary build_corpus(const CorpusOptions& o, std::ostream& log) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    char buf[32];
    std::snprintf(buf, sizeof buf, "[%6.1f s] ", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return std::string(buf);
  };
  const Counts counts = resolve_counts(o);
  if (o.out.empty()) throw Error(ErrorCode::kInvalidArgument, "no output folder given");
  if (o.side < 16 || o.side > 1024)
    throw Error(ErrorCode::kInvalidArgument, "side " + std::to_string(o.side) + " is outside 16-1024");
  if (o.threads < 0) throw Error(ErrorCode::kInvalidArgument, "threads " + std::to_string(o.threads) + " is negative");
  if (o.max_pixels < 1) throw Error(ErrorCode::kInvalidArgument, "the pixel cap must be positive");
  const int threads = resolve_threads(o.threads);
  const json options = options_json(o, counts);
  const fs::path out = fs::absolute(o.out).lexically_normal();
  const fs::path record = out / "corpus.json";
  CorpusSummary summary;

  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw Error(ErrorCode::kInvalidArgument, out.string() + " exists and is not a folder");
  if (fs::exists(record, ec)) {
    json old;
    try {
      old = json::parse(zoo::read_file(record.string()));
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kCorrupt, record.string() + ": not a corpus record (" + e.what() +
                                           "); refusing to overwrite the folder");
    }
    if (!old.is_object() || !old.contains("tool") || old["tool"] != "nasoa-corpus")
      throw Error(ErrorCode::kInvalidArgument, record.string() + " was not written by nasoa-corpus; refusing to overwrite the folder");
    // A reference, not a copy: copying a json recurses, and a hand-made
    // record may nest deeper than the stack allows.
    static const json kNull;
    const json& old_options = old.contains("options") ? old["options"] : kNull;
    const bool same_options = old_options == options;
    if (!same_options && !o.force)
      throw Error(ErrorCode::kInvalidArgument, out.string() + " holds a corpus built with other options: " +
                                                   differences(options, old_options) +
                                                   "; pass --force to rebuild it, or choose another folder");
    refuse_foreign(out);
    // A file or folder under the sets that the record does not list was put
    // there by someone else: a rebuild would delete it, --force or not.
    const std::optional<std::vector<std::string>> files = recorded_files(old);
    if (files)
      if (const std::string extra = first_unrecorded(out, *files); !extra.empty())
        throw Error(ErrorCode::kInvalidArgument,
                    (out / extra).string() + " is not part of the corpus corpus.json records; refusing to rebuild a "
                                             "folder that holds it (move it elsewhere first)");
    const json& digest = old.contains("content_sha256") ? old["content_sha256"] : kNull;
    std::string problem;
    const bool intact = same_options && !o.force && files && digest.is_string() &&
                        files_digest(out, *files, threads, &problem) == digest.get<std::string>() && problem.empty();
    if (intact) {
      log << out.string() << " already holds this corpus (corpus.json, same options, files unchanged); nothing to do\n";
      try {
        const json& t = old.at("totals");
        for (const auto& [set, count] : {std::pair<const char*, SetCount*>{"upstream", &summary.upstream},
                                         {"source", &summary.source}, {"eval", &summary.eval}}) {
          count->tasks = t.at(set).value("tasks", std::size_t(0));
          count->classes = t.at(set).value("classes", std::size_t(0));
          count->images = t.at(set).value("images", std::int64_t(0));
        }
        summary.skipped = old.value("skipped", json::array()).size();
        summary.duplicates = old.value("duplicates", json::array()).size();
      } catch (const json::exception& e) {
        throw Error(ErrorCode::kCorrupt, record.string() + ": its totals are damaged (" + e.what() +
                                             "); pass --force to rebuild the corpus");
      }
      return summary;
    }
    if (o.force)
      log << "rebuilding " << out.string() << " (--force)\n";
    else if (!files)
      log << record.string() << " does not list the corpus's classes as nasoa-corpus writes them; rebuilding it\n";
    else if (!digest.is_string())
      log << record.string() << " holds no digest of the files (an earlier nasoa-corpus wrote it), so they cannot "
                                "be checked; rebuilding it\n";
    else if (!problem.empty())
      log << out.string() << ": " << problem << "; rebuilding it\n";
    else
      log << out.string() << ": a file's content differs from what corpus.json records; rebuilding it\n";
  } else if (fs::is_directory(out, ec) && !fs::is_empty(out, ec)) {
    refuse_foreign(out);
    // Without corpus.json nothing says which files are ours: only a folder a
    // build of ours left (its marker) may be emptied.
    if (!fs::exists(out / kBuildingMarker, ec))
      throw Error(ErrorCode::kInvalidArgument,
                  out.string() + " holds upstream/, source/ or eval/ but no corpus.json, and no " + kBuildingMarker +
                      " (which nasoa-corpus leaves while it builds): refusing to delete files it may not have "
                      "written; move them, or use a new or empty folder");
    log << out.string() << " holds an unfinished corpus (no corpus.json); rebuilding it\n";
  }

  // Every source is checked before anything in OUT is touched.
  if (!fs::is_directory(o.fashion_dir, ec))
    throw Error(ErrorCode::kNotFound, "Fashion-MNIST folder " + o.fashion_dir +
                                          " does not exist (Debian's dataset-fashion-mnist package puts it at " +
                                          kDefaultFashionDir + ")");
  const std::string train_images = idx_file(o.fashion_dir, "train-images-idx3-ubyte");
  const std::string train_labels = idx_file(o.fashion_dir, "train-labels-idx1-ubyte");
  const std::string test_images = idx_file(o.fashion_dir, "t10k-images-idx3-ubyte");
  const std::string test_labels = idx_file(o.fashion_dir, "t10k-labels-idx1-ubyte");
  std::vector<char32_t> characters;
  for (const auto& list : {latin_glyphs(), greek_upper_glyphs(), greek_lower_glyphs(), symbol_glyphs(), cyrillic_glyphs()})
    for (const GlyphClass& g : list) characters.push_back(g.code_point);
  std::vector<SkippedFile> unused_fonts;
  const FontSet fonts = FontSet::scan(o.fonts_dir, characters, &unused_fonts);
  log << elapsed() << "fonts: " << fonts.faces().size() << " faces draw some of the characters (Hershey included)\n";
  const OpenCvThreads opencv_threads;
  const ClipartInventory clipart = scan_clipart(o.clipart_dir, o.max_pixels, threads);
  log << elapsed() << "clip-art: " << clipart.categories.size() << " categories, " << clipart.skipped.size() << " files skipped, "
      << clipart.duplicates.size() << " copies of other files used once (listed in corpus.json)\n";
  for (const SkippedFile& s : clipart.skipped)
    log << "skipped " << (fs::path(o.clipart_dir) / s.path).string() << ": " << s.reason << '\n';
  if (clipart.categories.size() < 16)
    throw Error(ErrorCode::kInvalidArgument,
                o.clipart_dir + " gives " + std::to_string(clipart.categories.size()) +
                    " clip-art categories; the corpus needs at least 16 (each a folder of " +
                    std::to_string(kMinClipartFiles) + "+ PNG files, " + std::to_string(kMinClipartDistinct) +
                    "+ distinct)");
  const runtime::TaskSource train = runtime::list_idx(train_images, train_labels);
  const runtime::TaskSource test = runtime::list_idx(test_images, test_labels);

  // The plan: every class of every task, and how many images it gets.
  const bool tiny = o.scale == Scale::kTiny;
  std::vector<TaskPlan> tasks;
  auto fashion_class = [&](int label, bool is_train, int wanted) {
    ClassPlan c;
    c.name = kFashionNames[std::size_t(label)];
    c.kind = Kind::kFashion;
    c.train = is_train;
    c.label = label;
    c.wanted = wanted;
    c.idx = pick_fashion(is_train ? train : test, is_train ? train_labels : test_labels, label, wanted, o.seed,
                         std::string("select/fashion/") + (is_train ? "train/" : "test/") + std::to_string(label));
    return c;
  };
  auto clipart_class = [&](const ClipartCategory& cat) {
    ClassPlan c;
    c.name = cat.name;
    c.kind = Kind::kClipart;
    c.category = &cat;
    c.wanted = counts.clipart;
    return c;
  };
  auto glyph_class = [&](const GlyphClass& g, bool latin, int wanted) {
    ClassPlan c;
    c.name = g.name;
    c.kind = Kind::kGlyph;
    c.glyph = g;
    c.wanted = wanted;
    c.faces = fonts.faces_for(g.code_point, latin);
    if (c.faces.empty())
      throw Error(ErrorCode::kNotFound, "no font under " + o.fonts_dir + " draws " + code_point_label(g.code_point) +
                                            " (class " + g.name + ")");
    return c;
  };
  auto first = [](auto list, std::size_t n) {
    list.resize(std::min(list.size(), n));
    return list;
  };

  // Clip-art categories, in folder order, dealt out by position: 0 and 1
  // (mod 4) upstream, 2 source, 3 eval.
  std::vector<const ClipartCategory*> clip_up, clip_src, clip_eval;
  for (std::size_t i = 0; i < clipart.categories.size(); ++i)
    (i % 4 < 2 ? clip_up : i % 4 == 2 ? clip_src : clip_eval).push_back(&clipart.categories[i]);

  TaskPlan upstream{"upstream", "", {}};
  for (int label = 0; label < (tiny ? 2 : 5); ++label) upstream.classes.push_back(fashion_class(label, true, counts.fashion_upstream));
  for (const ClipartCategory* cat : first(clip_up, tiny ? 4 : clip_up.size())) upstream.classes.push_back(clipart_class(*cat));
  std::vector<GlyphClass> latin = latin_glyphs();
  if (tiny) latin = {latin[0], latin[26], latin[52], latin[53]};  // A, a, 0, 1
  for (const GlyphClass& g : latin) upstream.classes.push_back(glyph_class(g, true, counts.glyph_upstream));
  tasks.push_back(std::move(upstream));

  auto glyph_task = [&](const std::string& set, const std::string& name, const std::vector<GlyphClass>& list, int wanted) {
    TaskPlan t{set, name, {}};
    for (const GlyphClass& g : list) t.classes.push_back(glyph_class(g, false, wanted));
    return t;
  };
  tasks.push_back(glyph_task("source", "greek-upper", first(greek_upper_glyphs(), tiny ? 5 : 99), counts.glyph_source));
  if (!tiny) {
    tasks.push_back(glyph_task("source", "greek-lower", greek_lower_glyphs(), counts.glyph_source));
    tasks.push_back(glyph_task("source", "symbols", symbol_glyphs(), counts.glyph_source));
  }
  // Source clip-art: as many tasks as keep 5 or more classes in each, dealt
  // round robin so each task mixes parts of the tree.
  const std::size_t source_clip_tasks = std::max<std::size_t>(1, clip_src.size() / 5);
  for (std::size_t t = 0; t < (tiny ? 1 : source_clip_tasks); ++t) {
    TaskPlan task{"source", "clipart-s" + std::to_string(t + 1), {}};
    for (std::size_t i = t; i < clip_src.size(); i += source_clip_tasks) task.classes.push_back(clipart_class(*clip_src[i]));
    tasks.push_back(std::move(task));
  }

  TaskPlan fashion{"eval", "fashion", {}};
  for (int label = 5; label < 10; ++label) fashion.classes.push_back(fashion_class(label, false, counts.fashion_eval));
  tasks.push_back(std::move(fashion));
  tasks.push_back(glyph_task("eval", "cyrillic", cyrillic_glyphs(), counts.glyph_eval));
  for (std::size_t t = 0; t < 2; ++t) {
    TaskPlan task{"eval", t == 0 ? "clipart-a" : "clipart-b", {}};
    for (std::size_t i = t; i < clip_eval.size(); i += 2) task.classes.push_back(clipart_class(*clip_eval[i]));
    tasks.push_back(std::move(task));
  }

  {
    std::map<std::string, std::string> seen;  // lower-cased class name -> where
    for (const TaskPlan& t : tasks)
      for (const ClassPlan& c : t.classes) {
        std::string key = c.name;
        for (char& ch : key) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        const std::string where = t.set + "/" + t.name;
        if (const auto [it, inserted] = seen.emplace(key, where); !inserted)
          throw Error(ErrorCode::kInternal, "class name " + c.name + " is in both " + it->second + " and " + where);
      }
  }

  // From here on OUT changes.
  fs::create_directories(out, ec);
  if (ec) throw Error(ErrorCode::kIo, out.string() + ": cannot create: " + ec.message());
  clear_out(out);
  for (const TaskPlan& t : tasks)
    for (const ClassPlan& c : t.classes) {
      fs::create_directories(t.dir(out) / c.name, ec);
      if (ec) throw Error(ErrorCode::kIo, (t.dir(out) / c.name).string() + ": cannot create: " + ec.message());
    }

  // Jobs: one per clip-art class (it must try files in its seeded order
  // until enough decode), then one per fashion or glyph image. The heavy
  // clip-art classes go first so the pool ends evenly.
  struct Job {
    TaskPlan* task;
    ClassPlan* cls;
    std::size_t index;  // image index; unused for clip-art
  };
  std::vector<Job> jobs;
  for (TaskPlan& t : tasks)
    for (ClassPlan& c : t.classes)
      if (c.kind == Kind::kClipart) jobs.push_back({&t, &c, 0});
  for (TaskPlan& t : tasks)
    for (ClassPlan& c : t.classes) {
      if (c.kind == Kind::kClipart) continue;
      c.items.resize(std::size_t(c.wanted));
      for (std::size_t i = 0; i < std::size_t(c.wanted); ++i) jobs.push_back({&t, &c, i});
    }
  std::vector<std::unique_ptr<GlyphRenderer>> renderers(std::size_t(threads) + 1);
  const fs::path clipart_root(o.clipart_dir);
  log << elapsed() << "drawing with " << threads << " thread" << (threads == 1 ? "" : "s") << "\n";

  parallel_for(jobs.size(), threads, [&](std::size_t j, int worker) {
    const Job& job = jobs[j];
    ClassPlan& c = *job.cls;
    const fs::path folder = job.task->dir(out) / c.name;
    if (c.kind == Kind::kFashion) {
      const runtime::IdxImages& images = *(c.train ? train : test).idx_images;
      const std::int64_t idx = c.idx[job.index];
      const cv::Mat gray(int(images.rows), int(images.cols), CV_8U,
                         const_cast<std::uint8_t*>(images.pixels.data() + idx * images.rows * images.cols));
      cv::Mat bgr;
      cv::cvtColor(runtime::fit_square(runtime::to_rgb8(gray, {255, 255, 255}), o.side), bgr, cv::COLOR_RGB2BGR);
      write_bytes(folder / file_name(job.index), encode_png(bgr, c.name));
      c.items[job.index] = std::to_string(idx);
    } else if (c.kind == Kind::kGlyph) {
      auto& renderer = renderers[std::size_t(worker)];
      if (!renderer) renderer = std::make_unique<GlyphRenderer>(fonts);
      Rng rng(o.seed, "glyph/" + job.task->set + "/" + job.task->name + "/" + c.name + "/" + std::to_string(job.index));
      const int face = c.faces[rng.below(c.faces.size())];
      const cv::Mat image = renderer->render(c.glyph.code_point, face, o.side, rng);
      write_bytes(folder / file_name(job.index), encode_png(image, c.name));
      c.items[job.index] = fonts.faces()[std::size_t(face)].id;
    } else {
      std::vector<std::string> order = c.category->files;
      Rng(o.seed, "select/clipart/" + c.category->folder).shuffle(order);
      for (const std::string& rel : order) {
        if (int(c.encoded.size()) == c.wanted) break;
        std::string reason;
        const cv::Mat square = clipart_square((clipart_root / rel).string(), o.side, o.max_pixels, &reason);
        if (square.empty()) {
          c.skips.push_back({(clipart_root / rel).string(), reason});
          continue;
        }
        // Half on white, half on a light tint: the drawing, not the paper, must tell the class.
        Rng rng(o.seed, "clipart-background/" + rel);
        cv::Vec3b bg(255, 255, 255);
        if (rng.chance(0.5)) bg = cv::Vec3b(std::uint8_t(rng.between(200, 255)), std::uint8_t(rng.between(200, 255)),
                                            std::uint8_t(rng.between(200, 255)));
        std::int64_t ink = 0;
        c.thumbs.push_back(thumbnail(square, &ink));
        c.inks.push_back(ink);
        c.encoded.push_back(encode_png(composite_onto(square, bg), rel));
        c.items.push_back(rel);
      }
    }
  });

  std::vector<SkippedFile> skipped;
  for (const SkippedFile& s : clipart.skipped) skipped.push_back({(clipart_root / s.path).string(), s.reason});
  for (const TaskPlan& t : tasks)
    for (const ClassPlan& c : t.classes)
      for (const SkippedFile& s : c.skips) {
        log << "skipped " << s.path << ": " << s.reason << '\n';
        skipped.push_back(s);
      }

  // Different files may still hold one drawing (saved again at another
  // size, or by another program). Such a drawing goes to one class only, by
  // the rule byte copies follow: the most specific folder keeps it.
  std::vector<ClassPlan*> clip_classes;
  for (TaskPlan& t : tasks)
    for (ClassPlan& c : t.classes)
      if (c.kind == Kind::kClipart) clip_classes.push_back(&c);
  std::sort(clip_classes.begin(), clip_classes.end(), [](const ClassPlan* a, const ClassPlan* b) {
    const std::string &fa = a->category->folder, &fb = b->category->folder;
    return std::make_tuple(-std::count(fa.begin(), fa.end(), '/'), a->category->png_files, fa) <
           std::make_tuple(-std::count(fb.begin(), fb.end(), '/'), b->category->png_files, fb);
  });
  struct Kept {
    const ClassPlan* cls;
    const std::vector<std::uint8_t>* thumb;
    std::int64_t ink;
    const std::string* item;
  };
  std::vector<DuplicateFile> look_alikes;
  std::multimap<std::int64_t, Kept> kept;  // by ink: alike thumbnails have inks within 2 % of their sum
  for (ClassPlan* c : clip_classes) {
    std::vector<std::size_t> keep;
    for (std::size_t i = 0; i < c->encoded.size(); ++i) {
      const std::int64_t ink = c->inks[i];
      const Kept* match = nullptr;
      for (auto it = kept.lower_bound(ink * 49 / 51), end = kept.upper_bound(ink * 51 / 49 + 1); it != end && !match; ++it)
        if (it->second.cls != c && looks_alike(c->thumbs[i], ink, *it->second.thumb, it->second.ink)) match = &it->second;
      if (match) look_alikes.push_back({c->items[i], *match->item});
      else keep.push_back(i);
    }
    for (const std::size_t i : keep) kept.emplace(c->inks[i], Kept{c, &c->thumbs[i], c->inks[i], &c->items[i]});
    c->keep = std::move(keep);
  }
  std::vector<DroppedCategory> emptied;
  for (TaskPlan& t : tasks) {
    std::vector<ClassPlan> classes;
    for (ClassPlan& c : t.classes) {
      if (c.kind == Kind::kClipart) {
        std::vector<std::string> encoded, items;
        for (const std::size_t i : c.keep) {
          encoded.push_back(std::move(c.encoded[i]));
          items.push_back(c.items[i]);
        }
        const bool none_decoded = c.encoded.empty();
        c.encoded = std::move(encoded);
        c.items = std::move(items);
        if (c.items.empty()) {
          emptied.push_back({c.category->folder, none_decoded ? "none of its files could be used"
                                                              : "every drawing chosen for it looks like one of another class"});
          std::error_code ignored;
          fs::remove(t.dir(out) / c.name, ignored);
          continue;
        }
      }
      classes.push_back(std::move(c));
    }
    if (classes.size() < 2)
      throw Error(ErrorCode::kInvalidArgument, "task " + t.set + "/" + t.name + " is left with fewer than two classes");
    t.classes = std::move(classes);
  }
  std::vector<std::pair<ClassPlan*, fs::path>> clip_writes;
  for (TaskPlan& t : tasks)
    for (ClassPlan& c : t.classes)
      if (c.kind == Kind::kClipart) clip_writes.emplace_back(&c, t.dir(out) / c.name);
  parallel_for(clip_writes.size(), threads, [&](std::size_t k, int) {
    ClassPlan& c = *clip_writes[k].first;
    for (std::size_t i = 0; i < c.encoded.size(); ++i) write_bytes(clip_writes[k].second / file_name(i), c.encoded[i]);
    c.encoded.clear();
  });

  log << elapsed() << "images written\n";

  // The record.
  json sets = json::object();
  json totals = json::object();
  std::int64_t all_images = 0;
  std::size_t all_classes = 0;
  for (const char* set : kSets) {
    SetCount& count = std::string(set) == "upstream" ? summary.upstream : std::string(set) == "source" ? summary.source : summary.eval;
    json task_list = json::array();
    for (const TaskPlan& t : tasks) {
      if (t.set != set) continue;
      json classes = json::array();
      std::int64_t images = 0;
      for (const ClassPlan& c : t.classes) {
        classes.push_back(class_json(c, clipart_root.string()));
        images += std::int64_t(c.items.size());
      }
      ++count.tasks;
      count.classes += t.classes.size();
      count.images += images;
      if (t.name.empty()) {
        sets[set] = {{"folder", set}, {"classes", std::move(classes)}, {"images", images}};
      } else {
        task_list.push_back({{"name", t.name},
                             {"folder", std::string(set) + "/" + t.name},
                             {"classes", std::move(classes)},
                             {"images", images}});
      }
    }
    if (std::string(set) != "upstream") {
      std::int64_t images = 0;
      for (const json& t : task_list) images += t["images"].get<std::int64_t>();
      sets[set] = {{"tasks", std::move(task_list)}, {"images", images}};
    }
    totals[set] = {{"tasks", count.tasks}, {"classes", count.classes}, {"images", count.images}};
    all_images += count.images;
    all_classes += count.classes;
  }
  totals["classes"] = all_classes;
  totals["images"] = all_images;

  json font_list = json::array();
  for (const FontFace& f : fonts.faces()) font_list.push_back(safe(f.id));
  json unused = json::array();
  for (const SkippedFile& s : unused_fonts) unused.push_back({{"path", safe(s.path)}, {"reason", safe(s.reason)}});
  json dropped = json::array();
  for (const DroppedCategory& d : clipart.dropped) dropped.push_back({{"folder", safe(d.folder)}, {"reason", safe(d.reason)}});
  for (const DroppedCategory& d : emptied) dropped.push_back({{"folder", safe(d.folder)}, {"reason", safe(d.reason)}});
  json merged = json::array();
  for (const MergedCategory& m : clipart.merged) {
    json from = json::array();
    for (const std::string& f : m.from) from.push_back(safe(f));
    merged.push_back({{"folder", safe(m.folder)}, {"from", std::move(from)}});
  }
  json skipped_json = json::array();
  for (const SkippedFile& s : skipped) skipped_json.push_back({{"path", safe(s.path)}, {"reason", safe(s.reason)}});
  json duplicates = json::array();
  for (const DuplicateFile& d : clipart.duplicates)
    duplicates.push_back({{"path", safe(d.path)}, {"same_bytes_as", safe(d.same_as)}});
  for (const DuplicateFile& d : look_alikes) duplicates.push_back({{"path", safe(d.path)}, {"looks_like", safe(d.same_as)}});

  json record_json = {
      {"tool", "nasoa-corpus"},
      {"version", NASOA_VERSION_STRING},
      {"options", options},
      {"layout", "upstream/<class>/<index>.png, source/<task>/<class>/<index>.png, eval/<task>/<class>/<index>.png; "
                 "8-bit RGB PNG, side x side"},
      {"sources",
       {{"fashion", {{"package", "dataset-fashion-mnist"}, {"folder", recorded_path(o.fashion_dir)}}},
        {"clipart",
         {{"package", "openclipart-png"},
          {"folder", recorded_path(o.clipart_dir)},
          {"categories", clipart.categories.size()},
          {"allocation", "categories in folder order; position mod 4: 0 and 1 upstream, 2 source, 3 eval"},
          {"merged", merged},
          {"dropped", dropped}}},
        {"fonts", {{"folder", recorded_path(o.fonts_dir)}, {"faces", font_list}, {"unused", unused}}}}},
      {"sets", sets},
      {"skipped", skipped_json},
      {"duplicates", duplicates},
      {"totals", totals},
  };
  sync_filesystem(out);
  {
    std::string problem;
    const std::optional<std::vector<std::string>> files = recorded_files(record_json);
    if (!files) throw Error(ErrorCode::kInternal, "the corpus record does not list its files as recorded_files() reads them");
    record_json["content_sha256"] = files_digest(out, *files, threads, &problem);
    if (!problem.empty()) throw Error(ErrorCode::kInternal, "a file just written: " + problem);
  }
  zoo::write_file_atomic(record.string(), record_json.dump(1) + "\n");
  fs::remove(out / kBuildingMarker, ec);
  zoo::sync_directory(out.string());

  summary.built = true;
  summary.skipped = skipped.size();
  summary.duplicates = duplicates.size();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace nasoa::corpus
