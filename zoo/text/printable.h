// zoo/text/printable.h: text from files and users, trimmed, and made safe to
// show and to store as a label. Below everything else, so that the encoding parser, the
// manifest and the runtime's task readers share one rule.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nasoa::zoo {

// `text` without the blanks at either end (space, tab, line breaks, vertical
// tab, form feed: what std::isspace calls space in the C locale).
std::string_view trim_blanks(std::string_view text);

// `text` for a message: control bytes written as \t, \n, \r or \xHH (a NUL
// would end the message for C callers, a line break would forge a line), and
// so is every byte that is not part of well-formed UTF-8 (a Latin-1 file
// name), so that the result can go into JSON and protobuf text fields.
std::string printable(std::string_view text);

// Whether `text` is well-formed UTF-8 (RFC 3629).
bool is_valid_utf8(std::string_view text);

// `text` with every byte that is not part of well-formed UTF-8 written as
// \xHH, and nothing else changed: for free text (a command line, a path)
// stored in a JSON or protobuf text field, which must be UTF-8.
std::string utf8_safe(std::string_view text);

// utf8_safe() after doubling every backslash: one-to-one, so that a name
// holding a literal "\xe9" never reads as the Latin-1 one, for names that
// must stay apart once stored (run ids, recorded paths).
std::string utf8_escaped(std::string_view text);

// `value` for a message in at most 15 significant digits: "32", "0.01",
// "1e+300", "nan" (std::to_string writes "32.000000" and 300 digits).
std::string shown_number(double value);

// `value` with `decimals` digits after the point, as printf's %.Nf writes
// it: "0.60" for seconds in a message a person reads.
std::string fixed_number(double value, int decimals);

// `value` in the fewest significant digits (as printf's %g lays them out)
// that read back as exactly `value`: two values that differ never read
// alike, and 0.1 reads "0.1". (std::to_chars for doubles would do it, but
// not with GCC 9's library, which JetPack 5 ships.)
std::string round_trip_number(double value);

// Whether `name` can be a model's label: non-empty, well-formed UTF-8 (a
// model's manifest and reports hold UTF-8) and free of control characters
// (tabs and line breaks separate labels in a model's files and in
// nasoa-classify's output; other control bytes would print raw).
bool is_valid_label(std::string_view name);

// Why `labels` cannot be a model's labels, "" when they can: the first that
// is not a valid label, or that repeats an earlier one (two classes of one
// name cannot be told apart), quoted with printable(). `index` receives its
// position.
std::string label_problem(const std::vector<std::string>& labels, std::size_t* index = nullptr);

}  // namespace nasoa::zoo
