#include "offline_tools/corpus/glyphs.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "nasoa/error.h"

namespace fs = std::filesystem;

namespace nasoa::corpus {
namespace {

std::vector<GlyphClass> with_prefix(const std::string& prefix,
                                    std::initializer_list<std::pair<char32_t, const char*>> list) {
  std::vector<GlyphClass> out;
  for (const auto& [cp, name] : list) out.push_back({cp, prefix + name});
  return out;
}

// The Hershey faces OpenCV has, each upright and italic.
struct HersheyFace {
  int face;
  const char* name;
};
constexpr HersheyFace kHershey[] = {
    {cv::FONT_HERSHEY_SIMPLEX, "simplex"},
    {cv::FONT_HERSHEY_PLAIN, "plain"},
    {cv::FONT_HERSHEY_DUPLEX, "duplex"},
    {cv::FONT_HERSHEY_COMPLEX, "complex"},
    {cv::FONT_HERSHEY_TRIPLEX, "triplex"},
    {cv::FONT_HERSHEY_COMPLEX_SMALL, "complex-small"},
    {cv::FONT_HERSHEY_SCRIPT_SIMPLEX, "script-simplex"},
    {cv::FONT_HERSHEY_SCRIPT_COMPLEX, "script-complex"},
};

bool is_ascii_alnum(char32_t cp) {
  return (cp >= U'A' && cp <= U'Z') || (cp >= U'a' && cp <= U'z') || (cp >= U'0' && cp <= U'9');
}

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string ft_message(FT_Error e) {
  const char* s = FT_Error_String(e);  // null unless FreeType was built with messages
  return s ? std::string(s) : "FreeType error " + std::to_string(e);
}

bool has_ink(const FT_Bitmap& b) {
  if (b.pixel_mode != FT_PIXEL_MODE_GRAY) return false;
  for (unsigned y = 0; y < b.rows; ++y) {
    const unsigned char* row = b.buffer + std::ptrdiff_t(y) * b.pitch;
    for (unsigned x = 0; x < b.width; ++x)
      if (row[x]) return true;
  }
  return false;
}

// Symbol fonts (URW's Standard Symbols and Dingbats among them) carry a
// symbol or custom encoding beside their Unicode map, and that Unicode map
// sends 'A' to Alpha, 'g' to gamma, '@' to a congruence sign or letters to
// dingbats: a class drawn with them would hold the wrong shapes.
bool symbol_encoded(FT_Face face) {
  for (int i = 0; i < face->num_charmaps; ++i)
    if (face->charmaps[i]->encoding == FT_ENCODING_MS_SYMBOL || face->charmaps[i]->encoding == FT_ENCODING_ADOBE_CUSTOM)
      return true;
  return false;
}

// Where a font names its glyphs, a Latin letter or digit must map to the
// glyph of that name ("A", "zero"): a second guard against fonts that draw
// something else at those code points.
bool named_as_expected(FT_Face face, FT_UInt index, char32_t cp) {
  if (!is_ascii_alnum(cp) || !FT_HAS_GLYPH_NAMES(face)) return true;
  static const char* const kDigits[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  char name[64] = "";
  if (FT_Get_Glyph_Name(face, index, name, sizeof name) != 0) return true;
  return cp <= U'9' ? std::string(name) == kDigits[cp - U'0'] : std::string(name) == std::string(1, char(cp));
}

// The glyph's coverage as an 8-bit mask, with a border so that a thicker
// stroke and the rotation stay inside it.
cv::Mat freetype_mask(FT_Face face, const std::string& id, char32_t cp, int em) {
  if (FT_Error e = FT_Set_Pixel_Sizes(face, 0, FT_UInt(em)))
    throw Error(ErrorCode::kIo, id + ": cannot set size " + std::to_string(em) + ": " + ft_message(e));
  const FT_UInt index = FT_Get_Char_Index(face, cp);
  if (FT_Error e = FT_Load_Glyph(face, index, FT_LOAD_RENDER | FT_LOAD_NO_BITMAP))
    throw Error(ErrorCode::kIo, id + ": cannot render " + code_point_label(cp) + ": " + ft_message(e));
  const FT_Bitmap& b = face->glyph->bitmap;
  if (!has_ink(b))
    throw Error(ErrorCode::kInternal, id + ": " + code_point_label(cp) + " rendered empty at " + std::to_string(em) +
                                          " px although the scan found ink");
  cv::Mat mask(int(b.rows), int(b.width), CV_8U);
  for (int y = 0; y < mask.rows; ++y)
    std::copy_n(b.buffer + std::ptrdiff_t(y) * b.pitch, mask.cols, mask.ptr<unsigned char>(y));
  const int pad = em / 16 + 2;
  cv::copyMakeBorder(mask, mask, pad, pad, pad, pad, cv::BORDER_CONSTANT, 0);
  return mask;
}

cv::Mat hershey_mask(int face, char32_t cp, int em, Rng& rng) {
  const std::string text(1, char(cp));
  const double scale = em / 30.0;
  const int thickness = rng.between(std::max(1, em / 20), std::max(1, em / 9));
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, face, scale, thickness, &baseline);
  const int pad = thickness + em / 16 + 2;
  cv::Mat mask = cv::Mat::zeros(size.height + baseline + 2 * pad, size.width + 2 * pad, CV_8U);
  cv::putText(mask, text, {pad, pad + size.height}, face, scale, cv::Scalar(255), thickness, cv::LINE_AA);
  return mask;
}

// Rotates by `degrees` after shearing x by `shear` * y, into a canvas just
// large enough to hold the result.
cv::Mat rotate_and_shear(const cv::Mat& mask, double degrees, double shear) {
  const double a = degrees * CV_PI / 180.0, c = std::cos(a), s = std::sin(a);
  const cv::Matx22d L = cv::Matx22d(c, -s, s, c) * cv::Matx22d(1.0, shear, 0.0, 1.0);
  double min_x = 0, min_y = 0, max_x = 0, max_y = 0;
  for (const cv::Vec2d& corner : {cv::Vec2d(0, 0), cv::Vec2d(mask.cols, 0), cv::Vec2d(0, mask.rows),
                                 cv::Vec2d(mask.cols, mask.rows)}) {
    const cv::Vec2d p = L * corner;
    min_x = std::min(min_x, p[0]);
    max_x = std::max(max_x, p[0]);
    min_y = std::min(min_y, p[1]);
    max_y = std::max(max_y, p[1]);
  }
  const cv::Matx23d M(L(0, 0), L(0, 1), -min_x, L(1, 0), L(1, 1), -min_y);
  cv::Mat out;
  cv::warpAffine(mask, out, M, cv::Size(int(std::ceil(max_x - min_x)) + 1, int(std::ceil(max_y - min_y)) + 1),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
  return out;
}

double luma(const cv::Vec3b& bgr) { return 0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2]; }

cv::Vec3b random_colour(Rng& rng) {
  return {std::uint8_t(rng.below(256)), std::uint8_t(rng.below(256)), std::uint8_t(rng.below(256))};
}

// Glyph and background must stay apart in brightness, or some images would
// show nothing a reader could recognise; 96 of 255 keeps every pair legible.
constexpr double kMinContrast = 96.0;

cv::Vec3b contrasting(const cv::Vec3b& other, Rng& rng) {
  for (int i = 0; i < 64; ++i) {
    const cv::Vec3b c = random_colour(rng);
    if (std::abs(luma(c) - luma(other)) >= kMinContrast) return c;
  }
  return luma(other) >= 128 ? cv::Vec3b(0, 0, 0) : cv::Vec3b(255, 255, 255);
}

cv::Mat background(int side, const cv::Vec3b& bg, const cv::Vec3b& fg, Rng& rng) {
  cv::Mat out(side, side, CV_8UC3, cv::Scalar(bg[0], bg[1], bg[2]));
  const double style = rng.uniform();
  if (style < 0.6) return out;
  if (style < 0.8) {
    cv::Vec3b bg2 = bg;
    for (int i = 0; i < 64; ++i) {
      const cv::Vec3b c = random_colour(rng);
      if (std::abs(luma(c) - luma(fg)) >= kMinContrast) {
        bg2 = c;
        break;
      }
    }
    const double angle = rng.uniform(0.0, 2.0 * CV_PI), dx = std::cos(angle), dy = std::sin(angle);
    const double half = 0.5 * side * (std::abs(dx) + std::abs(dy));
    for (int y = 0; y < side; ++y) {
      cv::Vec3b* row = out.ptr<cv::Vec3b>(y);
      for (int x = 0; x < side; ++x) {
        const double t = std::clamp(((x - 0.5 * side) * dx + (y - 0.5 * side) * dy) / (2 * half) + 0.5, 0.0, 1.0);
        for (int k = 0; k < 3; ++k) row[x][k] = std::uint8_t(std::lround(bg[k] + t * (bg2[k] - bg[k])));
      }
    }
    return out;
  }
  const int amplitude = rng.between(8, 28);
  for (int y = 0; y < side; ++y) {
    cv::Vec3b* row = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < side; ++x)
      for (int k = 0; k < 3; ++k) row[x][k] = cv::saturate_cast<std::uint8_t>(bg[k] + rng.between(-amplitude, amplitude));
  }
  return out;
}

}  // namespace

std::vector<GlyphClass> latin_glyphs() {
  std::vector<GlyphClass> out;
  // "upper"/"lower" in the name: on a case-insensitive file system
  // "latin-A" and "latin-a" would be one folder.
  for (char32_t c = U'A'; c <= U'Z'; ++c) out.push_back({c, "latin-upper-" + std::string(1, char(c))});
  for (char32_t c = U'a'; c <= U'z'; ++c) out.push_back({c, "latin-lower-" + std::string(1, char(c))});
  for (char32_t c = U'0'; c <= U'9'; ++c) out.push_back({c, "digit-" + std::string(1, char(c))});
  return out;
}

std::vector<GlyphClass> greek_upper_glyphs() {
  return with_prefix("greek-upper-", {{U'\u0393', "Gamma"}, {U'\u0394', "Delta"}, {U'\u0398', "Theta"},
                                      {U'\u039B', "Lambda"}, {U'\u039E', "Xi"}, {U'\u03A0', "Pi"},
                                      {U'\u03A3', "Sigma"}, {U'\u03A6', "Phi"}, {U'\u03A8', "Psi"},
                                      {U'\u03A9', "Omega"}});
}

std::vector<GlyphClass> greek_lower_glyphs() {
  return with_prefix("greek-lower-", {{U'\u03B1', "alpha"}, {U'\u03B2', "beta"}, {U'\u03B3', "gamma"},
                                      {U'\u03B4', "delta"}, {U'\u03B5', "epsilon"}, {U'\u03B6', "zeta"},
                                      {U'\u03B7', "eta"}, {U'\u03B8', "theta"}, {U'\u03BB', "lambda"},
                                      {U'\u03BE', "xi"}, {U'\u03C0', "pi"}, {U'\u03C3', "sigma"},
                                      {U'\u03C6', "phi"}, {U'\u03C8', "psi"}, {U'\u03C9', "omega"}});
}

std::vector<GlyphClass> symbol_glyphs() {
  return with_prefix("sym-", {{U'+', "plus"}, {U'\u00B1', "plus-minus"}, {U'\u00F7', "divide"},
                              {U'=', "equals"}, {U'\u2260', "not-equal"}, {U'\u2264', "less-equal"},
                              {U'\u2265', "greater-equal"}, {U'\u221E', "infinity"}, {U'\u221A', "square-root"},
                              {U'\u222B', "integral"}, {U'\u00A7', "section"}, {U'\u00B6', "pilcrow"},
                              {U'@', "at"}, {U'#', "number"}, {U'&', "ampersand"}, {U'%', "percent"}});
}

std::vector<GlyphClass> cyrillic_glyphs() {
  return with_prefix("cyr-", {{U'\u0411', "Be"}, {U'\u0416', "Zhe"}, {U'\u0418', "I"}, {U'\u0419', "Short-I"},
                              {U'\u0426', "Tse"}, {U'\u0427', "Che"}, {U'\u0428', "Sha"}, {U'\u0429', "Shcha"},
                              {U'\u042A', "Hard-Sign"}, {U'\u042B', "Yeru"}, {U'\u042D', "E"}, {U'\u042E', "Yu"},
                              {U'\u042F', "Ya"}});
}

std::string code_point_label(char32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", unsigned(cp));
  return buf;
}

FontSet FontSet::scan(const std::string& dir, const std::vector<char32_t>& characters,
                      std::vector<SkippedFile>* skipped) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorCode::kNotFound, "fonts folder " + dir +
                                          " does not exist (Debian's fonts-dejavu-core, fonts-dejavu-extra, "
                                          "fonts-liberation, fonts-freefont-ttf and fonts-urw-base35 put fonts in "
                                          "/usr/share/fonts)");
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string ext = lower_extension(it->path());
    if ((ext == ".ttf" || ext == ".otf") && it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) throw Error(ErrorCode::kIo, dir + ": cannot list the fonts: " + ec.message());
  std::sort(files.begin(), files.end());

  FontSet set;
  FT_Library lib = nullptr;
  if (FT_Error e = FT_Init_FreeType(&lib)) throw Error(ErrorCode::kInternal, "FreeType: " + ft_message(e));
  std::vector<char32_t> sorted = characters;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (const fs::path& file : files) {
    const std::string id = file.lexically_relative(dir).generic_string();
    FT_Face face = nullptr;
    if (FT_Error e = FT_New_Face(lib, file.c_str(), 0, &face)) {
      skipped->push_back({file.string(), "FreeType cannot open it: " + ft_message(e)});
      continue;
    }
    std::vector<char32_t> covers;
    if (!FT_IS_SCALABLE(face)) {
      skipped->push_back({file.string(), "not a scalable font"});
    } else if (symbol_encoded(face)) {
      skipped->push_back({file.string(), "a symbol font: its Unicode map puts other glyphs (dingbats, Greek letters) "
                                         "at the code points of Latin letters and digits"});
    } else if (FT_Select_Charmap(face, FT_ENCODING_UNICODE) != 0) {
      skipped->push_back({file.string(), "no Unicode character map"});
    } else if (FT_Set_Pixel_Sizes(face, 0, 48) != 0) {
      skipped->push_back({file.string(), "cannot be set to 48 pixels"});
    } else {
      for (const char32_t cp : sorted) {
        const FT_UInt index = FT_Get_Char_Index(face, cp);
        if (index != 0 && named_as_expected(face, index, cp) &&
            FT_Load_Glyph(face, index, FT_LOAD_RENDER | FT_LOAD_NO_BITMAP) == 0 && has_ink(face->glyph->bitmap))
          covers.push_back(cp);
      }
      if (covers.empty()) skipped->push_back({file.string(), "has none of the corpus's characters"});
    }
    FT_Done_Face(face);
    if (covers.empty()) continue;
    set.faces_.push_back({id, file.string(), -1});
    set.covers_.push_back(std::move(covers));
  }
  FT_Done_FreeType(lib);

  std::vector<char32_t> ascii;
  for (const char32_t cp : sorted)
    if (is_ascii_alnum(cp)) ascii.push_back(cp);
  for (const bool italic : {false, true})
    for (const HersheyFace& h : kHershey) {
      set.faces_.push_back({std::string("hershey-") + h.name + (italic ? "-italic" : ""), "",
                            h.face | (italic ? cv::FONT_ITALIC : 0)});
      set.covers_.push_back(ascii);
    }
  return set;
}

std::vector<int> FontSet::faces_for(char32_t cp, bool hershey) const {
  std::vector<int> out;
  for (std::size_t i = 0; i < faces_.size(); ++i) {
    if (faces_[i].hershey >= 0 && !hershey) continue;
    if (std::binary_search(covers_[i].begin(), covers_[i].end(), cp)) out.push_back(int(i));
  }
  return out;
}

struct GlyphRenderer::Impl {
  const FontSet& fonts;
  FT_Library lib = nullptr;
  std::vector<FT_Face> faces;  // opened on first use

  explicit Impl(const FontSet& f) : fonts(f), faces(f.faces().size(), nullptr) {
    if (FT_Error e = FT_Init_FreeType(&lib)) throw Error(ErrorCode::kInternal, "FreeType: " + ft_message(e));
  }
  ~Impl() {
    for (FT_Face f : faces)
      if (f) FT_Done_Face(f);
    FT_Done_FreeType(lib);
  }

  FT_Face face(int i) {
    if (!faces[std::size_t(i)]) {
      const FontFace& f = fonts.faces()[std::size_t(i)];
      FT_Face opened = nullptr;
      if (FT_Error e = FT_New_Face(lib, f.path.c_str(), 0, &opened))
        throw Error(ErrorCode::kIo, f.path + ": FreeType cannot open it: " + ft_message(e));
      if (FT_Error e = FT_Select_Charmap(opened, FT_ENCODING_UNICODE)) {
        FT_Done_Face(opened);
        throw Error(ErrorCode::kIo, f.path + ": no Unicode character map: " + ft_message(e));
      }
      faces[std::size_t(i)] = opened;
    }
    return faces[std::size_t(i)];
  }
};

GlyphRenderer::GlyphRenderer(const FontSet& fonts) : impl_(std::make_unique<Impl>(fonts)) {}
GlyphRenderer::~GlyphRenderer() = default;

cv::Mat GlyphRenderer::render(char32_t cp, int face, int side, Rng& rng) {
  // Drawn four times larger than needed and then reduced, so that rotation
  // and shear do not leave jagged edges.
  const int em = std::clamp(side * 4, 128, 1024);
  const FontFace& f = impl_->fonts.faces()[std::size_t(face)];
  cv::Mat mask = f.hershey >= 0 ? hershey_mask(f.hershey, cp, em, rng) : freetype_mask(impl_->face(face), f.id, cp, em);

  const double stroke = rng.uniform();
  const int radius = rng.between(1, std::max(1, em / 64));
  if (stroke < 0.35) {
    const cv::Mat kernel = cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * radius + 1, 2 * radius + 1});
    cv::Mat changed;
    if (stroke < 0.2) cv::dilate(mask, changed, kernel);
    else cv::erode(mask, changed, kernel);
    if (cv::countNonZero(changed) > 0) mask = changed;  // a hairline font may erode away
  }
  mask = rotate_and_shear(mask, rng.uniform(-15.0, 15.0), rng.uniform(-0.2, 0.2));
  const cv::Rect box = cv::boundingRect(mask);
  if (box.empty())
    throw Error(ErrorCode::kInternal, f.id + ": " + code_point_label(cp) + " lost all ink when transformed");

  const double scale = rng.uniform(0.45, 0.85) * side / std::max(box.width, box.height);
  const int w = std::clamp(int(std::lround(box.width * scale)), 1, side);
  const int h = std::clamp(int(std::lround(box.height * scale)), 1, side);
  cv::Mat glyph;
  cv::resize(mask(box), glyph, {w, h}, 0, 0, cv::INTER_AREA);
  const int x0 = rng.between(0, side - w), y0 = rng.between(0, side - h);

  const cv::Vec3b bg = random_colour(rng);
  const cv::Vec3b fg = contrasting(bg, rng);
  cv::Mat image = background(side, bg, fg, rng);
  for (int y = 0; y < h; ++y) {
    const unsigned char* a = glyph.ptr<unsigned char>(y);
    cv::Vec3b* row = image.ptr<cv::Vec3b>(y0 + y) + x0;
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < 3; ++k) row[x][k] = std::uint8_t((row[x][k] * (255 - a[x]) + fg[k] * a[x] + 127) / 255);
  }
  if (rng.chance(0.2)) cv::GaussianBlur(image, image, {0, 0}, rng.uniform(0.5, 1.0));
  return image;
}

}  // namespace nasoa::corpus
