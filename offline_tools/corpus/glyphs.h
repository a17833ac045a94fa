// offline_tools/corpus/glyphs.h: synthetic glyph images, one class per character.
//
// Glyphs are drawn with FreeType from the TrueType/OpenType fonts installed on
// the host and, for Latin letters and digits, with OpenCV's Hershey stroke
// fonts. A font is used for a character only if its Unicode map has the
// character and the glyph it maps to has ink: fonts that lack a script are
// left out for that script rather than drawing boxes or blanks.
#pragma once

#include <opencv2/core.hpp>

#include <memory>
#include <string>
#include <vector>

#include "nasoa/task.h"
#include "offline_tools/corpus/rng.h"

namespace nasoa::corpus {

struct GlyphClass {
  char32_t code_point;
  std::string name;  // the class folder: ASCII, and unique ignoring case
};

// The character lists of the corpus, in class order (docs/corpora.md says
// why each character is in its set).
std::vector<GlyphClass> latin_glyphs();        // A-Z, a-z, 0-9: upstream
std::vector<GlyphClass> greek_upper_glyphs();  // source task greek-upper
std::vector<GlyphClass> greek_lower_glyphs();  // source task greek-lower
std::vector<GlyphClass> symbol_glyphs();       // source task symbols
std::vector<GlyphClass> cyrillic_glyphs();     // eval task cyrillic

// "U+0416".
std::string code_point_label(char32_t cp);

struct FontFace {
  std::string id;    // path relative to the fonts folder, or "hershey-<name>"
  std::string path;  // the font file; empty for a Hershey face
  int hershey = -1;  // OpenCV font face (with cv::FONT_ITALIC), or -1
};

class FontSet {
 public:
  // Every .ttf and .otf file under `dir` (recursively, in sorted order),
  // checked for each of `characters`, then the 16 Hershey faces. Fonts that
  // FreeType cannot open, or that have no Unicode map, go to `skipped`.
  // Throws Error{kNotFound} when `dir` is not a folder.
  static FontSet scan(const std::string& dir, const std::vector<char32_t>& characters,
                      std::vector<SkippedFile>* skipped);

  const std::vector<FontFace>& faces() const { return faces_; }
  // Indices into faces() that can draw `cp`; Hershey faces only for ASCII
  // letters and digits, and only when `hershey` is true.
  std::vector<int> faces_for(char32_t cp, bool hershey) const;

 private:
  std::vector<FontFace> faces_;
  std::vector<std::vector<char32_t>> covers_;  // per face, sorted
};

// Draws glyph images. Holds its own FreeType library and faces, so each
// thread needs its own renderer (FreeType objects are not thread-safe).
class GlyphRenderer {
 public:
  explicit GlyphRenderer(const FontSet& fonts);
  ~GlyphRenderer();
  GlyphRenderer(const GlyphRenderer&) = delete;
  GlyphRenderer& operator=(const GlyphRenderer&) = delete;

  // A side x side 8-bit BGR image of `cp` drawn with face `face`: size,
  // rotation, shear, stroke weight, position, colours, background and blur
  // all drawn from `rng`. Throws Error{kIo} if the font cannot be read.
  cv::Mat render(char32_t cp, int face, int side, Rng& rng);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nasoa::corpus
