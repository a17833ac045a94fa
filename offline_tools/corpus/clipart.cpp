#include "offline_tools/corpus/clipart.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "nasoa/error.h"
#include "offline_tools/corpus/parallel.h"
#include "runtime/data/image_header.h"
#include "runtime/data/image_store.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"

namespace fs = std::filesystem;

namespace nasoa::corpus {
namespace {

bool is_png_name(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png";
}

std::string class_name_of(const std::string& folder) {
  std::string name = folder;
  for (char& c : name) {
    if (c == '/') c = '-';
    else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      c = '_';
  }
  if (!name.empty() && name[0] == '.') name[0] = '_';
  return name;
}

// Why the header forbids decoding the file, or "" when it may be decoded.
std::string header_refusal(const std::string& bytes, std::int64_t max_pixels) {
  if (bytes.empty()) return "zero-byte file";
  const auto header = runtime::parse_image_header(bytes);
  if (!header) return "not a recognised image (PNG, JPEG, BMP, WebP or TIFF header expected)";
  const std::int64_t pixels = header->width * header->height;
  if (pixels > max_pixels)
    return std::string(runtime::format_name(header->format)) + " header announces " + std::to_string(header->width) +
           "x" + std::to_string(header->height) + " = " + std::to_string(pixels) + " pixels, above the cap of " +
           std::to_string(max_pixels) + "; not decoded";
  return {};
}

// 8-bit BGRA from whatever imdecode gave (grey, grey+alpha, BGR, BGRA; the
// depths runtime::to_8bit() scales); empty for what it refuses.
cv::Mat to_bgra8(const cv::Mat& decoded) {
  const cv::Mat m = runtime::to_8bit(decoded);
  if (m.empty()) return {};
  cv::Mat out;
  switch (m.channels()) {
    case 1: cv::cvtColor(m, out, cv::COLOR_GRAY2BGRA); return out;
    case 2: {
      std::vector<cv::Mat> ga;
      cv::split(m, ga);
      cv::merge(std::vector<cv::Mat>{ga[0], ga[0], ga[0], ga[1]}, out);
      return out;
    }
    case 3: cv::cvtColor(m, out, cv::COLOR_BGR2BGRA); return out;
    case 4: return m;
    default: return {};
  }
}

bool near(const cv::Vec4b& a, const cv::Vec4b& b) {
  return std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2]) <= 24;
}

struct Candidate {
  std::string folder;
  std::vector<std::string> files;  // relative paths, sorted
};

// A file's name with its folder's own name taken out: "bordered_c_10" in
// cards/bordered and "white_c_10" in cards/white are both "_c_10".
std::string subject_of(const std::string& rel, const std::string& folder) {
  std::string stem = fs::path(rel).stem().string();
  const std::string own = fs::path(folder).filename().string();
  for (std::size_t at; !own.empty() && (at = stem.find(own)) != std::string::npos;) stem.erase(at, own.size());
  return stem;
}

// Sibling folders that hold the same subjects in another style (the cards
// in four designs) are one class, not four: as four, a subject drawn alike
// in each would sit in several sets. They become one category named after
// their parent; or, when the parent is a category itself, the first keeps
// its place and the others are dropped.
std::vector<Candidate> merge_restyled(std::vector<Candidate> in, ClipartInventory* inv) {
  std::vector<std::set<std::string>> subjects;
  for (const Candidate& c : in) {
    std::set<std::string> s;
    for (const std::string& rel : c.files) s.insert(subject_of(rel, c.folder));
    subjects.push_back(std::move(s));
  }
  auto parent = [](const std::string& folder) { return fs::path(folder).parent_path().generic_string(); };
  std::vector<std::size_t> group(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) group[i] = i;
  for (std::size_t i = 0; i < in.size(); ++i)
    for (std::size_t j = i + 1; j < in.size(); ++j) {
      if (parent(in[i].folder).empty() || parent(in[i].folder) != parent(in[j].folder)) continue;
      std::size_t shared = 0;
      for (const std::string& s : subjects[i]) shared += subjects[j].count(s);
      // 90 %: unrelated siblings share a few generic names ("arrow", "star").
      if (group[j] == j && shared * 10 >= std::min(subjects[i].size(), subjects[j].size()) * 9) group[j] = group[i];
    }
  std::set<std::string> folders;
  for (const Candidate& c : in) folders.insert(c.folder);
  std::vector<Candidate> out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    std::vector<std::size_t> members;
    for (std::size_t j = i; j < in.size(); ++j)
      if (group[j] == i) members.push_back(j);
    if (group[i] != i) continue;  // folded into an earlier one
    if (members.size() == 1) {
      out.push_back(std::move(in[i]));
      continue;
    }
    const std::string into = parent(in[i].folder);
    if (folders.count(into)) {
      for (std::size_t k = 1; k < members.size(); ++k)
        inv->dropped.push_back({in[members[k]].folder, "the drawings of " + in[i].folder + " in another style"});
      out.push_back(std::move(in[i]));
      continue;
    }
    Candidate merged{into, {}};
    std::vector<std::string> from;
    for (const std::size_t m : members) {
      merged.files.insert(merged.files.end(), in[m].files.begin(), in[m].files.end());
      from.push_back(in[m].folder);
    }
    std::sort(merged.files.begin(), merged.files.end());
    inv->merged.push_back({into, from});
    out.push_back(std::move(merged));
  }
  std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.folder < b.folder; });
  return out;
}

}  // namespace

ClipartInventory scan_clipart(const std::string& root, std::int64_t max_pixels, int threads) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw Error(ErrorCode::kNotFound, "clip-art folder " + root +
                                          " does not exist (Debian's openclipart-png package puts it at "
                                          "/usr/share/openclipart/png)");
  std::map<std::string, std::vector<std::string>> by_folder;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!is_png_name(it->path()) || !it->is_regular_file(ec)) continue;
    const fs::path rel = it->path().lexically_relative(root);
    if (!rel.has_parent_path()) continue;  // the root itself is no category
    by_folder[rel.parent_path().generic_string()].push_back(rel.generic_string());
  }
  if (ec) throw Error(ErrorCode::kIo, root + ": cannot list the clip-art tree: " + ec.message());

  ClipartInventory inv;
  std::vector<Candidate> candidates;
  for (auto& [folder, files] : by_folder) {
    if (files.size() < kMinClipartFiles) continue;
    if (folder == kClipartExcluded) {
      inv.dropped.push_back({folder, "holds the package's uncategorised drawings, not one category"});
      continue;
    }
    std::sort(files.begin(), files.end());
    candidates.push_back({folder, std::move(files)});
  }
  candidates = merge_restyled(std::move(candidates), &inv);

  struct Seen {
    std::string refusal;  // non-empty: not usable
    std::string digest;
  };
  std::vector<std::pair<std::size_t, std::size_t>> jobs;  // (candidate, file)
  for (std::size_t c = 0; c < candidates.size(); ++c)
    for (std::size_t f = 0; f < candidates[c].files.size(); ++f) jobs.emplace_back(c, f);
  std::vector<Seen> seen(jobs.size());
  parallel_for(jobs.size(), threads, [&](std::size_t j, int) {
    const std::string& rel = candidates[jobs[j].first].files[jobs[j].second];
    std::string bytes;
    try {
      bytes = zoo::read_file((fs::path(root) / rel).string());
    } catch (const Error& e) {
      seen[j].refusal = std::string("cannot read: ") + e.what();
      return;
    }
    seen[j].refusal = header_refusal(bytes, max_pixels);
    if (seen[j].refusal.empty()) seen[j].digest = zoo::sha256_bytes(bytes);
  });

  // Ownership: deepest folder, then fewest files, then folder order; then
  // the copy whose path sorts first.
  auto rank = [&](std::size_t c) {
    const std::string& folder = candidates[c].folder;
    return std::make_tuple(-std::count(folder.begin(), folder.end(), '/'), candidates[c].files.size(), folder);
  };
  std::map<std::string, std::size_t> owner;  // digest -> job index of the copy used
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    if (!seen[j].refusal.empty()) continue;
    auto [it, inserted] = owner.emplace(seen[j].digest, j);
    if (inserted) continue;
    const std::size_t o = it->second;
    const auto a = rank(jobs[j].first), b = rank(jobs[o].first);
    if (a < b || (a == b && candidates[jobs[j].first].files[jobs[j].second] < candidates[jobs[o].first].files[jobs[o].second]))
      it->second = j;
  }

  std::vector<ClipartCategory> kept(candidates.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const auto [c, f] = jobs[j];
    const std::string& rel = candidates[c].files[f];
    if (!seen[j].refusal.empty()) {
      inv.skipped.push_back({rel, seen[j].refusal});
      continue;
    }
    const std::size_t o = owner.at(seen[j].digest);
    if (o == j) kept[c].files.push_back(rel);
    else inv.duplicates.push_back({rel, candidates[jobs[o].first].files[jobs[o].second]});
  }
  std::map<std::string, std::string> names;  // class name -> folder, to catch two folders sanitised alike
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    ClipartCategory& k = kept[c];
    k.folder = candidates[c].folder;
    k.name = class_name_of(k.folder);
    k.png_files = candidates[c].files.size();
    if (k.files.size() < kMinClipartDistinct) {
      inv.dropped.push_back({k.folder, std::to_string(k.files.size()) + " usable distinct drawings of " +
                                           std::to_string(k.png_files) + " files, fewer than " +
                                           std::to_string(kMinClipartDistinct)});
      continue;
    }
    if (const auto [it, inserted] = names.emplace(k.name, k.folder); !inserted)
      throw Error(ErrorCode::kInvalidArgument, "clip-art folders '" + it->second + "' and '" + k.folder +
                                                   "' would both be class '" + k.name + "'");
    inv.categories.push_back(std::move(k));
  }
  return inv;
}

cv::Mat clipart_square(const std::string& path, int side, std::int64_t max_pixels, std::string* reason) {
  std::string bytes;
  try {
    bytes = zoo::read_file(path);
  } catch (const Error& e) {
    *reason = std::string("cannot read: ") + e.what();
    return {};
  }
  // The file was checked when listed, but checking again costs nothing and
  // keeps a file replaced since from being decoded blindly.
  if (!(*reason = header_refusal(bytes, max_pixels)).empty()) return {};
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(cv::Mat(1, int(bytes.size()), CV_8U, bytes.data()), cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    *reason = std::string("decoder error: ") + e.what();
    return {};
  }
  bytes = std::string();
  if (decoded.empty()) {
    *reason = "damaged or truncated image (decoder failed)";
    return {};
  }
  const bool had_alpha = decoded.channels() == 2 || decoded.channels() == 4;
  if (std::string why = runtime::unsupported_pixels(decoded); !why.empty()) {
    *reason = std::move(why);
    return {};
  }
  cv::Mat bgra = to_bgra8(decoded);
  decoded.release();

  // Content box, and what fills the margin: transparency, or the drawing's
  // own border colour when it is opaque on a uniform ground.
  cv::Rect box(0, 0, bgra.cols, bgra.rows);
  cv::Vec4b fill(0, 0, 0, 0);
  cv::Mat alpha;
  cv::extractChannel(bgra, alpha, 3);
  double min_alpha = 255;
  if (had_alpha) cv::minMaxLoc(alpha, &min_alpha);
  if (min_alpha < 255) {
    box = cv::boundingRect(alpha >= 16);  // faint haze is not content
    if (box.empty()) {
      *reason = "fully transparent (no pixel with alpha 16 or more)";
      return {};
    }
  } else {
    const cv::Vec4b c0 = bgra.at<cv::Vec4b>(0, 0);
    if (near(c0, bgra.at<cv::Vec4b>(0, bgra.cols - 1)) && near(c0, bgra.at<cv::Vec4b>(bgra.rows - 1, 0)) &&
        near(c0, bgra.at<cv::Vec4b>(bgra.rows - 1, bgra.cols - 1))) {
      cv::Mat differs;
      cv::Mat diff;
      cv::absdiff(bgra, cv::Scalar(c0[0], c0[1], c0[2], c0[3]), diff);
      cv::transform(diff, differs, cv::Matx14f(1, 1, 1, 0));
      box = cv::boundingRect(differs > 24);
      if (box.empty()) {
        *reason = "a single flat colour";
        return {};
      }
      fill = c0;
    }
  }
  // Premultiplied, so that the colour of invisible pixels does not bleed
  // into the edges when the drawing is scaled down.
  cv::Mat crop;
  cv::cvtColor(bgra(box), crop, cv::COLOR_RGBA2mRGBA);
  bgra.release();
  alpha.release();

  const int longer = std::max(box.width, box.height);
  const double margin = std::round(0.04 * longer);
  const double scale = side / (longer + 2 * margin);
  const int w = std::clamp(int(std::lround(box.width * scale)), 1, side);
  const int h = std::clamp(int(std::lround(box.height * scale)), 1, side);
  cv::Mat small;
  cv::resize(crop, small, {w, h}, 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  const cv::Vec4b fill_premultiplied(std::uint8_t((fill[0] * fill[3] + 127) / 255),
                                     std::uint8_t((fill[1] * fill[3] + 127) / 255),
                                     std::uint8_t((fill[2] * fill[3] + 127) / 255), fill[3]);
  cv::Mat square(side, side, CV_8UC4, cv::Scalar(fill_premultiplied[0], fill_premultiplied[1], fill_premultiplied[2],
                                                 fill_premultiplied[3]));
  small.copyTo(square(cv::Rect((side - w) / 2, (side - h) / 2, w, h)));
  return square;
}

cv::Mat composite_onto(const cv::Mat& premultiplied, const cv::Vec3b& background) {
  cv::Mat out(premultiplied.size(), CV_8UC3);
  for (int y = 0; y < out.rows; ++y) {
    const cv::Vec4b* src = premultiplied.ptr<cv::Vec4b>(y);
    cv::Vec3b* dst = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < out.cols; ++x) {
      const int a = src[x][3];
      for (int k = 0; k < 3; ++k)
        dst[x][k] = cv::saturate_cast<std::uint8_t>(src[x][k] + (background[k] * (255 - a) + 127) / 255);
    }
  }
  return out;
}

}  // namespace nasoa::corpus
