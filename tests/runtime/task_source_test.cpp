// Listing tasks from folders, CSV lists and IDX files.
#include "runtime/data/task_source.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "nasoa/error.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "zoo/bundle/atomic_file.h"

namespace nasoa::runtime {
namespace {

using nasoa::testing::TempDir;

std::string idx_bytes(const std::vector<std::int32_t>& dims, const std::vector<std::uint8_t>& data) {
  std::string out = {0, 0, 0x08, char(dims.size())};
  for (std::int32_t d : dims)
    for (int shift : {24, 16, 8, 0}) out += char((d >> shift) & 0xFF);
  out.append(data.begin(), data.end());
  return out;
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  gzclose(f);
}

TEST(TaskSourceTest, ListsClassFoldersAndReportsWhatItSkips) {
  TempDir t;
  t.write("task/cat/a.jpg", "x");
  t.write("task/cat/B.PNG", "x");
  t.write("task/cat/nested/c.webp", "x");
  t.write("task/cat/notes.txt", "x");
  t.write("task/cat/.DS_Store", "x");
  t.write("task/dog/d.tiff", "x");
  t.write("task/README", "x");
  const TaskSource s = list_folder(t / "task");
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(s.samples.size(), 4u);
  EXPECT_EQ(s.samples[0].label, 0);
  EXPECT_EQ(s.samples[3].label, 1);
  ASSERT_EQ(s.skipped.size(), 3u);
  std::set<std::string> reasons;
  for (const SkippedFile& f : s.skipped)
    reasons.insert(std::filesystem::path(f.path).filename().string() + ": " + f.reason);
  EXPECT_TRUE(reasons.count("README: not inside a class folder"));
  EXPECT_TRUE(reasons.count(".DS_Store: hidden file"));
  EXPECT_TRUE(reasons.count("notes.txt: not an image file type (jpg, png, bmp, webp, tiff)"));
}

TEST(TaskSourceTest, SkipsPipesAndLinksThatCannotBeFollowed) {
  TempDir t;
  t.write("task/cat/a.png", "x");
  t.write("task/dog/b.png", "x");
  ASSERT_EQ(::mkfifo((t / "task/dog/pipe.png").c_str(), 0644), 0);  // reading it would block
  std::filesystem::create_symlink(t / "task/dangling-target.png", t / "task/cat/dangling.png");
  std::filesystem::create_symlink("loop-b", t / "task/loop-a");  // a symlink loop beside the class folders
  std::filesystem::create_symlink("loop-a", t / "task/loop-b");
  const TaskSource s = list_folder(t / "task");
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(s.samples.size(), 2u);
  std::set<std::string> reasons;
  for (const SkippedFile& f : s.skipped)
    reasons.insert(std::filesystem::path(f.path).filename().string() + ": " + f.reason);
  EXPECT_TRUE(reasons.count("pipe.png: not a regular file (a pipe or a device)"));
  EXPECT_TRUE(reasons.count("dangling.png: cannot be read: No such file or directory"));
  EXPECT_EQ(reasons.count("loop-a: cannot be read: Too many levels of symbolic links"), 1u);
  EXPECT_EQ(s.skipped.size(), 4u);
}

TEST(TaskSourceTest, FollowsLinkedSubfoldersOnceAndSkipsHiddenFoldersAndFilesReachedTwice) {
  TempDir t;
  t.write("task/cat/a.png", "a");
  t.write("task/cat/.thumbs/t.png", "t");        // an image viewer's cache, not data
  t.write("extra/e1.png", "1");
  t.write("extra/e2.png", "2");
  std::filesystem::create_symlink(t / "extra", t / "task/cat/linked");  // followed
  t.write("task/dog/b.png", "b");
  std::filesystem::create_symlink(t / "task/cat/a.png", t / "task/dog/same.png");  // one file, two labels
  std::filesystem::create_symlink(t / "task", t / "task/dog/up");  // a link back up must not loop
  const TaskSource s = list_folder(t / "task");
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  std::vector<std::string> cat, dog;
  for (const SampleRef& r : s.samples)
    (r.label == 0 ? cat : dog).push_back(std::filesystem::path(r.path).lexically_relative(t.path() / "task").string());
  EXPECT_EQ(cat, (std::vector<std::string>{"cat/a.png", "cat/linked/e1.png", "cat/linked/e2.png"}));
  EXPECT_EQ(dog, (std::vector<std::string>{"dog/b.png"}));
  std::map<std::string, std::string> reasons;
  for (const SkippedFile& f : s.skipped)
    reasons[std::filesystem::path(f.path).lexically_relative(t.path() / "task").string()] = f.reason;
  EXPECT_EQ(reasons["cat/.thumbs"], "hidden folder");
  EXPECT_NE(reasons["dog/same.png"].find("the same file as " + (t / "task/cat/a.png")), std::string::npos)
      << reasons["dog/same.png"];
  // A link up to the task folder (or above): the other classes, or the
  // whole disk, would become images of this class.
  EXPECT_NE(reasons["dog/up"].find("a link to the task folder or a folder above it"), std::string::npos)
      << reasons["dog/up"];
  EXPECT_EQ(reasons.size(), 3u);
  // A class folder linked in twice (a link beside the folder it names) is listed once.
  std::filesystem::create_symlink(t / "task/cat", t / "task/dog/cats");
  const TaskSource again = list_folder(t / "task");
  std::map<std::string, std::string> again_reasons;
  for (const SkippedFile& f : again.skipped)
    again_reasons[std::filesystem::path(f.path).lexically_relative(t.path() / "task").string()] = f.reason;
  EXPECT_NE(again_reasons["dog/cats"].find("listed elsewhere"), std::string::npos) << again_reasons["dog/cats"];
  EXPECT_EQ(again.samples.size(), s.samples.size());
  // A class folder that is itself a link up: not a class.
  std::filesystem::create_symlink(t / "task", t / "task/all");
  const TaskSource up = list_folder(t / "task");
  EXPECT_EQ(up.class_names, (std::vector<std::string>{"cat", "dog"}));
  bool said = false;
  for (const SkippedFile& f : up.skipped)
    said = said ||
           (std::filesystem::path(f.path).filename() == "all" && f.reason.find("not a class") != std::string::npos);
  EXPECT_TRUE(said) << "the link up was not reported";
}

TEST(TaskSourceTest, ListsTheImagesOfAFolderAsAClassFolderIsRead) {
  TempDir t;
  t.write("photos/b.jpg", "b");
  t.write("photos/A.PNG", "a");
  t.write("photos/sub/deeper/c.webp", "c");
  t.write("photos/notes.txt", "n");
  t.write("photos/._b.jpg", "x");
  t.write("photos/.thumbs/t.png", "t");
  t.write("elsewhere/e.tiff", "e");
  std::filesystem::create_symlink(t / "elsewhere", t / "photos/linked");          // followed
  std::filesystem::create_symlink(t / "photos/b.jpg", t / "photos/sub/again.jpg");  // one file, listed once
  std::filesystem::create_symlink(t / "photos", t / "photos/sub/up");              // not followed
  std::filesystem::create_symlink(t / "missing.png", t / "photos/dangling.png");   // cannot be read
  const ImageFiles found = list_image_files(t / "photos");
  EXPECT_EQ(found.images, (std::vector<std::string>{t / "photos/A.PNG", t / "photos/b.jpg", t / "photos/linked/e.tiff",
                                                    t / "photos/sub/deeper/c.webp"}));
  std::map<std::string, std::string> passed_over, skipped;
  for (const SkippedFile& f : found.passed_over)
    passed_over[std::filesystem::path(f.path).lexically_relative(t.path() / "photos").string()] = f.reason;
  for (const SkippedFile& f : found.skipped)
    skipped[std::filesystem::path(f.path).lexically_relative(t.path() / "photos").string()] = f.reason;
  EXPECT_EQ(passed_over["notes.txt"], "not an image file type (jpg, png, bmp, webp, tiff)");
  EXPECT_EQ(passed_over["._b.jpg"], "hidden file");
  EXPECT_EQ(passed_over[".thumbs"], "hidden folder");
  EXPECT_NE(passed_over["sub/again.jpg"].find("the same file as " + (t / "photos/b.jpg")), std::string::npos);
  EXPECT_EQ(passed_over.size(), 4u);
  EXPECT_NE(skipped["sub/up"].find("a link to the folder listed or a folder above it"), std::string::npos);
  EXPECT_NE(skipped["dangling.png"].find("cannot be read"), std::string::npos) << skipped["dangling.png"];
  EXPECT_EQ(skipped.size(), 2u);

  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_image_files(t / "nowhere"); }, ErrorCode::kNotFound, "nowhere"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_image_files(t / "photos/b.jpg"); }, ErrorCode::kInvalidArgument,
                                           "not a folder"));
}

TEST(TaskSourceTest, RefusesAClassNameThatIsNotUtf8) {
  // A Latin-1 folder name trained, then its model could not be opened: the
  // manifest holds labels as UTF-8 text.
  TempDir t;
  t.write("latin1/b\xe9g/a.png", "x");
  t.write("latin1/dog/a.png", "x");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_folder(t / "latin1"); }, ErrorCode::kInvalidArgument, "b\\xe9g"))
      << "a class name that is not UTF-8 was accepted";
}

TEST(TaskSourceTest, RefusesFoldersThatAreNotTasks) {
  TempDir t;
  EXPECT_THROW(list_folder(t / "missing"), Error);
  std::filesystem::create_directories(t / "empty");
  EXPECT_THROW(list_folder(t / "empty"), Error);
  t.write("one/only/a.png", "x");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_folder(t / "one"); }, ErrorCode::kInvalidArgument,
                                           "at least two classes"));
}

TEST(TaskSourceTest, RefusesAClassNameThatCannotBeALabelBeforeAnyTraining) {
  // A tab in a folder name was accepted, trained on, and refused only when
  // the trained model was saved: the whole budget spent for nothing.
  TempDir t;
  t.write("tab/cat\ttabby/a.png", "x");
  t.write("tab/dog/a.png", "x");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_folder(t / "tab"); }, ErrorCode::kInvalidArgument, "cat\\ttabby"))
      << "a class named with a tab was accepted";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_csv(t / "tab"); }, ErrorCode::kInvalidArgument,
                                           "is a folder, not a CSV list"))
      << "a folder was read as a CSV list";
  t.write("list.csv", "a.png,ok\nb.png,two\tcolumns\n");
  EXPECT_TRUE(
      nasoa::testing::throws_error([&] { list_csv(t / "list.csv"); }, ErrorCode::kInvalidArgument, "two\\tcolumns"))
      << "a CSV label with a tab was accepted";
}

TEST(TaskSourceTest, ReadsCsvListsWithOldMacLineEndsAndACapitalisedHeader) {
  TempDir t;
  const TaskSource s = list_csv(t.write("mac.csv", "Path,Label\ra.png,cat\rb.png,dog\r\nc.png,dog"));
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(s.samples.size(), 3u);
  EXPECT_EQ(s.samples[2].path, (t.path() / "c.png").string());
}

TEST(TaskSourceTest, AListThatIsAPipeOrADeviceIsRefusedUnopened) {
  TempDir t;
  for (const std::string name : {"list.csv", "images.idx"}) ASSERT_EQ(::mkfifo((t / name).c_str(), 0644), 0);
  // Opening a pipe with no writer would block for ever.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_csv(t / "list.csv"); }, ErrorCode::kInvalidArgument,
                                           "not a regular file (a pipe or a device)"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "images.idx", t / "images.idx"); },
                                           ErrorCode::kInvalidArgument, "not a regular file (a pipe or a device)"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_csv("/dev/zero"); }, ErrorCode::kInvalidArgument,
                                           "not a regular file"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_csv(t / "missing.csv"); }, ErrorCode::kNotFound, "missing.csv"));
}

TEST(TaskSourceTest, AHardLinkedFileIsOneImage) {
  TempDir t;
  t.write("task/cat/a.png", "a");
  t.write("task/dog/b.png", "b");
  std::filesystem::create_hard_link(t / "task/cat/a.png", t / "task/dog/also-a.png");
  const TaskSource s = list_folder(t / "task");
  ASSERT_EQ(s.samples.size(), 2u) << "one file under two labels";
  bool said = false;
  for (const SkippedFile& f : s.skipped)
    said = said || (std::filesystem::path(f.path).filename() == "also-a.png" &&
                    f.reason.find("the same file as " + (t / "task/cat/a.png")) != std::string::npos);
  EXPECT_TRUE(said);
  const TaskSource csv = list_csv(t.write("task/list.csv", "cat/a.png,cat\ndog/b.png,dog\ndog/also-a.png,dog\n"));
  EXPECT_EQ(csv.samples.size(), 2u);
  ASSERT_EQ(csv.skipped.size(), 1u);
  EXPECT_NE(csv.skipped[0].reason.find("listed again on line 3"), std::string::npos) << csv.skipped[0].reason;
  EXPECT_EQ(file_identity(t / "task/cat/a.png"), file_identity(t / "task/dog/also-a.png"));
  EXPECT_NE(file_identity(t / "task/cat/a.png"), file_identity(t / "task/dog/b.png"));
  EXPECT_EQ(file_identity(t / "task/nowhere.png"), std::nullopt);
}

TEST(TaskSourceTest, AFileIsNoTaskFolderAndAValidationFolderMayHoldOneClass) {
  TempDir t;
  t.write("val/cat/a.png", "a");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_folder(t / "val/cat/a.png"); }, ErrorCode::kInvalidArgument,
                                           "is a file, not a task folder"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_folder(t / "val"); }, ErrorCode::kInvalidArgument,
                                           "at least two classes"));
  const TaskSource validation = list_folder(t / "val", FolderRole::kValidation);
  EXPECT_EQ(validation.class_names, (std::vector<std::string>{"cat"}));
  EXPECT_EQ(validation.samples.size(), 1u);
}

TEST(TaskSourceTest, ReadsCsvListsWithHeadersCommentsAndCommasInPaths) {
  TempDir t;
  const std::string csv = t.write("list.csv",
                                  "path,label\n# a comment\nimgs/a,b.png, cat \r\n/abs/x.jpg,dog\n\nimgs/c.png,cat\n");
  const TaskSource s = list_csv(csv);
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(s.samples.size(), 3u);
  EXPECT_EQ(s.samples[0].path, (t.path() / "imgs/a,b.png").string());
  EXPECT_EQ(s.samples[1].path, "/abs/x.jpg");
  EXPECT_EQ(s.samples[2].label, 0);
  // A byte-order mark before the header, and fields in double quotes, as spreadsheets write them.
  const TaskSource quoted =
      list_csv(t.write("bom.csv", "\xEF\xBB\xBFpath,label\n\"x \"\"y\"\".png\",\"bag\"\nz.png,cap\n"));
  EXPECT_EQ(quoted.class_names, (std::vector<std::string>{"bag", "cap"}));
  ASSERT_EQ(quoted.samples.size(), 2u);
  EXPECT_EQ(quoted.samples[0].path, (t.path() / "x \"y\".png").string());
  const std::string bad = t.write("bad.csv", "a.png,cat\nno-comma-here\n");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_csv(bad); }, ErrorCode::kInvalidArgument, "bad.csv:2"));
  // "#" then a space, or without a comma, is a comment; "#1 front.jpg" is an image.
  const TaskSource hashes =
      list_csv(t.write("hashes.csv", "#path,label\n#\n# cats, then dogs\n#no comma\n#1 front.jpg,cat\nb.png,dog\n"));
  EXPECT_EQ(hashes.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(hashes.samples.size(), 2u);
  EXPECT_EQ(hashes.samples[0].path, (t.path() / "#1 front.jpg").string());
  // A header after comments is a header, not a class named "label".
  const TaskSource commented = list_csv(t.write("commented.csv", "# made by hand\npath,label\na.png,cat\nb.png,dog\n"));
  EXPECT_EQ(commented.class_names, (std::vector<std::string>{"cat", "dog"}));
  // A quoted label holding a comma was cut into a class named after its tail.
  const std::string comma = t.write("comma.csv", "a.png,cat\nb.png,\"leather, brown\"\n");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_csv(comma); }, ErrorCode::kInvalidArgument, "comma.csv:2: label"))
      << "a label cut at its comma was accepted";
  const std::string binary = t.write("binary.csv", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_csv(binary); }, ErrorCode::kInvalidArgument, "binary data"))
      << "binary data was read as a CSV list";
}

TEST(TaskSourceTest, AnImageListedTwiceInACsvIsKeptOnceAndTheRepeatReported) {
  TempDir t;
  // Line 3 repeats line 1 (another spelling of the same path), line 4 lists
  // it under another label; "owl" then has no image of its own and no class.
  const std::string csv = t.write("list.csv", "a.png,cat\nb.png,dog\n./a.png,cat\nsub/../a.png,owl\nc.png,cat\n");
  const TaskSource s = list_csv(csv);
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(s.samples.size(), 3u);
  ASSERT_EQ(s.skipped.size(), 2u);
  EXPECT_NE(s.skipped[0].reason.find("listed again on line 3"), std::string::npos) << s.skipped[0].reason;
  EXPECT_NE(s.skipped[0].reason.find("first on line 1"), std::string::npos) << s.skipped[0].reason;
  EXPECT_NE(s.skipped[1].reason.find("as 'cat', here as 'owl'"), std::string::npos) << s.skipped[1].reason;
  // The same file reached through a link is the same image.
  t.write("x.png", "x");
  std::filesystem::create_symlink(t / "x.png", t / "y.png");
  const TaskSource linked = list_csv(t.write("linked.csv", "x.png,cat\nb.png,dog\ny.png,dog\n"));
  ASSERT_EQ(linked.samples.size(), 2u);
  ASSERT_EQ(linked.skipped.size(), 1u);
  EXPECT_NE(linked.skipped[0].reason.find("as 'cat', here as 'dog'"), std::string::npos) << linked.skipped[0].reason;
}

TEST(TaskSourceTest, IdxClassesAreTheLabelsThatOccur) {
  // EMNIST Letters labels its 26 classes 1-26: no class 0 to fail on.
  TempDir t;
  t.write("images.idx", idx_bytes({4, 1, 1}, {10, 20, 30, 40}));
  t.write("labels.idx", idx_bytes({4}, {1, 3, 1, 3}));
  const TaskSource s = list_idx(t / "images.idx", t / "labels.idx");
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"1", "3"}));
  ASSERT_EQ(s.samples.size(), 4u);
  EXPECT_EQ(s.samples[0].label, 0);
  EXPECT_EQ(s.samples[1].label, 1);
  // Names go by label value: a name for a label no image has is refused by it.
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] { list_idx(t / "images.idx", t / "labels.idx", {"zero", "one", "two", "three"}); },
      ErrorCode::kInvalidArgument, "no image has label 0, named 'zero'"));
}

TEST(TaskSourceTest, IdxImagesBeyondTheLimitsAreRefusedBeforeTheirDataIsRead) {
  // Headers announcing 3 images of 40,000 x 40,000 pixels (4.8 GB) with 4
  // bytes of data: within limits it is a short file; beyond them it is
  // refused by the limit, so no such allocation is ever tried.
  TempDir t;
  t.write("huge.idx", idx_bytes({3, 40000, 40000}, {1, 2, 3, 4}));
  t.write("labels.idx", idx_bytes({3}, {0, 1, 0}));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "huge.idx", t / "labels.idx"); }, ErrorCode::kCorrupt,
                                           "the file has 4"));
  IdxLimits pixels;
  pixels.max_pixels = 100000000;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "huge.idx", t / "labels.idx", {}, pixels); },
                                           ErrorCode::kInvalidArgument,
                                           "images of 1600000000 pixels, above the limit of 100000000"));
  IdxLimits bytes;
  bytes.max_bytes = std::uint64_t(1) << 30;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "huge.idx", t / "labels.idx", {}, bytes); },
                                           ErrorCode::kInvalidArgument,
                                           "announces 4800000000 bytes of data, above the limit of 1073741824"));
  // Within both, a real file reads as before.
  t.write("images.idx", idx_bytes({4, 1, 1}, {10, 20, 30, 40}));
  t.write("four.idx", idx_bytes({4}, {1, 3, 1, 3}));
  IdxLimits both;
  both.max_pixels = 1, both.max_bytes = 4;
  EXPECT_EQ(list_idx(t / "images.idx", t / "four.idx", {}, both).samples.size(), 4u);
}

TEST(TaskSourceTest, ACutGzipIdxIsCalledTruncatedAndExtraDataIsRefused) {
  TempDir t;
  t.write("images.idx", idx_bytes({2, 1, 1}, {10, 20}));
  write_gzip(t / "labels.idx.gz", idx_bytes({2}, {0, 1}));
  // Large enough that reading the data does not drain the stream: zlib's
  // gzread took such a file cut in its trailer for a whole one.
  std::vector<std::uint8_t> many(100000);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = std::uint8_t(i * 7919 % 251);
  write_gzip(t / "many.idx.gz", idx_bytes({std::int32_t(many.size())}, many));
  for (const std::string file : {"labels.idx.gz", "many.idx.gz"}) {
    const std::string whole = zoo::read_file(t / file);
    // Cut anywhere after its 10-byte gzip header, in the deflate data or in
    // the trailer (its CRC and length), the stream is truncated, never a
    // file of "bad magic" or one accepted unchecked.
    for (std::size_t cut = 1; cut + 10 <= whole.size(); ++cut) {
      t.write("cut.idx.gz", whole.substr(0, whole.size() - cut));
      EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "images.idx", t / "cut.idx.gz"); },
                                               ErrorCode::kCorrupt, "truncated"))
          << file << " cut by " << cut << " of " << whole.size() << " bytes";
    }
    t.write("cut.idx.gz", whole.substr(0, 12));
    EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "images.idx", t / "cut.idx.gz"); },
                                             ErrorCode::kCorrupt, "truncated"));
    std::string damaged = whole;
    damaged[whole.size() - 6] = char(damaged[whole.size() - 6] ^ 0x40);  // in its CRC
    t.write("damaged.idx.gz", damaged);
    EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "images.idx", t / "damaged.idx.gz"); },
                                             ErrorCode::kCorrupt, "damaged gzip data"))
        << file;
  }
  t.write("long.idx", idx_bytes({2}, {0, 1}) + "x");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t / "images.idx", t / "long.idx"); }, ErrorCode::kCorrupt,
                                           "announces 2 bytes of data, the file has more"));
  // Two gzip members are one stream, as gzip reads them.
  const std::string first = zoo::read_file(t / "labels.idx.gz");
  write_gzip(t / "tail.gz", "");
  t.write("members.idx.gz", first + zoo::read_file(t / "tail.gz"));
  EXPECT_EQ(list_idx(t / "images.idx", t / "members.idx.gz").samples.size(), 2u);
  EXPECT_EQ(list_idx(t / "images.idx", t / "labels.idx.gz").samples.size(), 2u);
}

TEST(TaskSourceTest, ReadsPlainAndGzippedIdx) {
  TempDir t;
  std::vector<std::uint8_t> pixels(3 * 2 * 2);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::uint8_t(i * 10);
  t.write("images.idx", idx_bytes({3, 2, 2}, pixels));
  write_gzip(t / "labels.idx.gz", idx_bytes({3}, {0, 1, 1}));
  const TaskSource s = list_idx(t / "images.idx", t / "labels.idx.gz", {"shirt", "shoe"});
  EXPECT_EQ(s.class_names, (std::vector<std::string>{"shirt", "shoe"}));
  ASSERT_EQ(s.samples.size(), 3u);
  EXPECT_EQ(s.samples[2].idx, 2);
  EXPECT_EQ(s.idx_images->pixels[4], 40);
  // One name for two classes: a model trained on it could not be opened.
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] {
        list_idx(t / "images.idx", t / "labels.idx.gz", {"shirt", "shirt"});
      },
      ErrorCode::kInvalidArgument, "'shirt' is given to two classes"))
      << "two classes named alike were accepted";
  // Counts that disagree, a truncated body, and a wrong magic are refused.
  write_gzip(t / "two.idx.gz", idx_bytes({2}, {0, 1}));
  EXPECT_THROW(list_idx(t / "images.idx", t / "two.idx.gz"), Error);
  t.write("short.idx", idx_bytes({3, 2, 2}, pixels).substr(0, 20));
  EXPECT_THROW(list_idx(t / "short.idx", t / "labels.idx.gz"), Error);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { list_idx(t.path().string(), t / "labels.idx.gz"); },
                                           ErrorCode::kInvalidArgument, "is a folder, not an IDX file"))
      << "a folder was read as an IDX file";
  t.write("text.idx", "this is not an idx file");
  EXPECT_THROW(list_idx(t / "text.idx", t / "labels.idx.gz"), Error);
  // Images of no pixels, and dimensions whose product wraps around to 0 bytes.
  for (const auto& [file, dims, message] : std::vector<std::tuple<std::string, std::vector<std::int32_t>, std::string>>{
           {"empty-images.idx", {3, 0, 0}, "images of no pixels"},
           {"wrapping.idx",
            {4, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::min()},
            "multiply past 2^64"}}) {
    t.write(file, idx_bytes(dims, {}));
    EXPECT_TRUE(
        nasoa::testing::throws_error([&] { list_idx(t / file, t / "labels.idx.gz"); }, ErrorCode::kCorrupt, message))
        << file;
  }
}

TEST(TaskSourceTest, SelectsRelabelsAndRenamesClasses) {
  TaskSource all;
  all.origin = "idx";
  all.class_names = {"0", "1", "2", "3"};
  for (int i = 0; i < 8; ++i) all.samples.push_back({"idx#" + std::to_string(i), i % 4, i});
  all.skipped.push_back({"x", "why"});
  const TaskSource two = select_classes(all, {"3", "1"}, {"three", "one"});
  EXPECT_EQ(two.class_names, (std::vector<std::string>{"three", "one"}));
  ASSERT_EQ(two.samples.size(), 4u);
  EXPECT_EQ(two.samples[0].idx, 1);  // source order is kept
  EXPECT_EQ(two.samples[0].label, 1);
  EXPECT_EQ(two.samples[1].idx, 3);
  EXPECT_EQ(two.samples[1].label, 0);
  EXPECT_EQ(two.skipped.size(), 1u);
  EXPECT_EQ(select_classes(all, {"0", "2"}).class_names, (std::vector<std::string>{"0", "2"}));
  for (const auto& bad : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"1", "9"}, "no class '9'"}, {{"1", "1"}, "selected twice"}, {{"1"}, "at least two"}}) {
    EXPECT_TRUE(
        nasoa::testing::throws_error([&] { select_classes(all, bad.first); }, ErrorCode::kInvalidArgument, bad.second))
        << bad.second;
  }
  EXPECT_THROW(select_classes(all, {"1", "2"}, {"only-one"}), Error);
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] {
        select_classes(all, {"1", "2"}, {"same", "same"});
      },
      ErrorCode::kInvalidArgument, "class name 'same' is given twice"))
      << "two classes merged under one name";
}

TEST(TaskSourceTest, ReadsFashionMnistFromItsDebianPackage) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (!std::filesystem::exists(dir + "t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  const TaskSource s = list_idx(dir + "t10k-images-idx3-ubyte.gz", dir + "t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(s.samples.size(), 10000u);
  EXPECT_EQ(s.class_names.size(), 10u);
  EXPECT_EQ(s.idx_images->rows, 28);
  std::vector<int> per_class(10, 0);
  for (const SampleRef& r : s.samples) ++per_class[std::size_t(r.label)];
  for (int c : per_class) EXPECT_EQ(c, 1000);  // the test split is balanced
}

}  // namespace
}  // namespace nasoa::runtime
