// The text rules shared by messages, labels, manifests and reports.
#include "zoo/text/printable.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

namespace {

using namespace nasoa::zoo;

TEST(PrintableTest, EscapesControlBytesAndBytesThatAreNotUtf8) {
  EXPECT_EQ(printable("a\tb\nc\rd"), "a\\tb\\nc\\rd");
  EXPECT_EQ(printable(std::string("nul\0end", 7)), "nul\\x00end");
  EXPECT_EQ(printable("caf\xe9"), "caf\\xe9");          // Latin-1
  EXPECT_EQ(printable("ñandú-青"), "ñandú-青");          // UTF-8 stays as it is
  EXPECT_EQ(printable("\xe9\x9d"), "\\xe9\\x9d");        // a sequence cut short
  EXPECT_TRUE(is_valid_utf8(printable("\xff\xfe\xc0\xaf\xed\xa0\x80")));
}

TEST(PrintableTest, TellsWellFormedUtf8) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ASCII"));
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));  // U+1F600
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));         // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));     // a UTF-16 surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("b\xe9g"));
}

TEST(PrintableTest, Utf8SafeChangesOnlyTheBytesThatAreNotUtf8) {
  EXPECT_EQ(utf8_safe("nasoa-pretrain --data-card caf\xe9\tx"), "nasoa-pretrain --data-card caf\\xe9\tx");
  EXPECT_EQ(utf8_safe("ñandú"), "ñandú");
}

TEST(PrintableTest, Utf8EscapedKeepsALiteralEscapeApartFromTheByte) {
  EXPECT_EQ(utf8_escaped("caf\xe9"), "caf\\xe9");           // the byte E9
  EXPECT_EQ(utf8_escaped("caf\\xe9"), "caf\\\\xe9");        // a backslash, then "xe9"
  EXPECT_NE(utf8_escaped("caf\xe9"), utf8_escaped("caf\\xe9"));
  EXPECT_EQ(utf8_escaped("a\\b\xe9"), "a\\\\b\\xe9");
  EXPECT_EQ(utf8_escaped("ñandú"), "ñandú");
}

TEST(PrintableTest, LabelsAreNonEmptyUtf8WithoutControlsAndUnique) {
  EXPECT_TRUE(is_valid_label("ankle boot"));
  EXPECT_TRUE(is_valid_label("青"));
  EXPECT_FALSE(is_valid_label(""));
  EXPECT_FALSE(is_valid_label("a\tb"));
  EXPECT_FALSE(is_valid_label("b\xe9g"));
  std::size_t at = 99;
  EXPECT_EQ(label_problem({"cat", "dog"}, &at), "");
  EXPECT_NE(label_problem({"cat", "b\xe9g"}, &at).find("'b\\xe9g' cannot be a label"), std::string::npos);
  EXPECT_EQ(at, 1u);
  EXPECT_NE(label_problem({"cat", "dog", "cat"}, &at).find("given to two classes (0 and 2)"), std::string::npos);
  EXPECT_EQ(at, 2u);
}

TEST(PrintableTest, ShowsNumbersShortly) {
  EXPECT_EQ(shown_number(32), "32");
  EXPECT_EQ(shown_number(0.01), "0.01");
  EXPECT_EQ(shown_number(1e300), "1e+300");
}

TEST(PrintableTest, RoundTripNumbersAreShortAndReadBackExactly) {
  EXPECT_EQ(round_trip_number(0.1), "0.1");
  EXPECT_EQ(round_trip_number(32), "32");
  EXPECT_EQ(round_trip_number(1e-4), "0.0001");
  // Two values that differ never read alike, where 15 digits would merge them.
  const double a = 0.1, b = std::nextafter(0.1, 1.0);
  EXPECT_NE(round_trip_number(a), round_trip_number(b));
  EXPECT_EQ(std::strtod(round_trip_number(b).c_str(), nullptr), b);
  EXPECT_EQ(shown_number(a), shown_number(b));
}

}  // namespace
