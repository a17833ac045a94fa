#include "offline_tools/search/report.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "nasoa/error.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/text/printable.h"

namespace nasoa::search {

void write_csv(const std::string& path, const std::vector<NamedEvaluation>& rows, bool error_column) {
  std::ostringstream out;
  out << "name,encoding,step_ms,accuracy,parameters,macs,cost_s,seed,rank" << (error_column ? ",error" : "") << '\n';
  for (const NamedEvaluation& r : rows) {
    const Evaluation& e = r.evaluation;
    // Unquoted columns: a comma, quote or line break would shift or split a row.
    for (const std::string* text : {&r.name, &e.encoding})
      if (text->find_first_of(",\"\r\n") != std::string::npos)
        throw Error(ErrorCode::kInvalidArgument, path + ": '" + *text + "' has a comma, quote or line break");
    // A failed evaluation has no accuracy, and no step time unless the step
    // was timed (one above --max-step-ms): empty, not a 0 to be read as measured.
    char step[64] = "", accuracy[64] = "", rest[2048];  // any double fits; the text columns have no bound
    if (e.ok() || e.step_seconds > 0) std::snprintf(step, sizeof step, "%.4f", 1000 * e.step_seconds);
    if (e.ok()) std::snprintf(accuracy, sizeof accuracy, "%.6f", e.accuracy);
    std::snprintf(rest, sizeof rest, "%lld,%lld,%.2f,%llu,%d", static_cast<long long>(e.parameters),
                  static_cast<long long>(e.macs), e.cost_seconds, static_cast<unsigned long long>(e.seed), e.rank);
    out << r.name << ',' << e.encoding << ',' << step << ',' << accuracy << ',' << rest;
    if (error_column) {
      // printable() puts line breaks and control bytes on one line as \n,
      // \xHH; quotes are doubled inside the quoted field (RFC 4180).
      std::string text;
      for (const char c : zoo::printable(e.error)) text += c == '"' ? std::string("\"\"") : std::string(1, c);
      out << ",\"" << text << '"';
    }
    out << '\n';
  }
  zoo::write_file_atomic(path, out.str());
}

void write_front_plot(const std::string& path, const std::vector<Evaluation>& evaluated,
                      const std::vector<Evaluation>& front, const std::vector<NamedEvaluation>& selected,
                      const std::vector<NamedEvaluation>& baselines, const std::string& title) {
  const int width = 1100, height = 720, left = 90, right = 30, top = 50, bottom = 70;
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  std::vector<const Evaluation*> all;
  for (const Evaluation& e : evaluated) all.push_back(&e);
  for (const NamedEvaluation& b : baselines) all.push_back(&b.evaluation);
  if (all.empty()) throw Error(ErrorCode::kInvalidArgument, "nothing to plot in " + path);
  double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = -1e300;
  for (const Evaluation* e : all) {
    xmin = std::min(xmin, e->step_seconds * 1000), xmax = std::max(xmax, e->step_seconds * 1000);
    ymin = std::min(ymin, e->accuracy * 100), ymax = std::max(ymax, e->accuracy * 100);
  }
  // A margin on both sides in x, so that names next to the extreme points fit.
  const double pad = std::max(0.1, 0.08 * (std::log10(xmax) - std::log10(xmin)));
  const double lx0 = std::log10(xmin) - pad, lx1 = std::log10(xmax) + 2 * pad;
  const double y0 = std::floor(ymin / 5) * 5, y1 = std::ceil(ymax / 5) * 5 + (ymax >= std::ceil(ymax / 5) * 5 ? 5 : 0);
  auto px = [&](double ms) {
    return left + static_cast<int>((std::log10(ms) - lx0) / (lx1 - lx0) * (width - left - right));
  };
  auto py = [&](double acc) {
    return height - bottom - static_cast<int>((acc - y0) / (y1 - y0) * (height - top - bottom));
  };
  const cv::Scalar black(0, 0, 0), grey(170, 170, 170), light(235, 235, 235), blue(200, 90, 20), red(40, 40, 210),
      green(40, 160, 40);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  // Grid and ticks: decades and their 2x and 5x in x, every 5 points in y.
  for (int d = static_cast<int>(std::floor(lx0)); d <= static_cast<int>(std::ceil(lx1)); ++d)
    for (double m : {1.0, 2.0, 5.0}) {
      const double ms = m * std::pow(10.0, d);
      if (std::log10(ms) < lx0 || std::log10(ms) > lx1) continue;
      const int x = px(ms);
      cv::line(img, {x, top}, {x, height - bottom}, light, 1);
      char label[32];
      std::snprintf(label, sizeof label, "%g", ms);
      cv::putText(img, label, {x - 12, height - bottom + 22}, font, 0.5, black, 1, cv::LINE_AA);
    }
  for (double a = y0; a <= y1 + 1e-9; a += 5) {
    const int y = py(a);
    cv::line(img, {left, y}, {width - right, y}, light, 1);
    char label[32];
    std::snprintf(label, sizeof label, "%.0f", a);
    cv::putText(img, label, {left - 40, y + 5}, font, 0.5, black, 1, cv::LINE_AA);
  }
  cv::rectangle(img, {left, top}, {width - right, height - bottom}, black, 1);
  cv::putText(img, "training step time (ms, log scale)", {width / 2 - 170, height - 20}, font, 0.6, black, 1,
              cv::LINE_AA);
  cv::putText(img, "upstream accuracy (%)", {10, top - 15}, font, 0.6, black, 1, cv::LINE_AA);
  cv::putText(img, title, {left + 250, top - 15}, font, 0.6, black, 1, cv::LINE_AA);

  for (const Evaluation& e : evaluated)
    cv::circle(img, {px(e.step_seconds * 1000), py(e.accuracy * 100)}, 3, grey, cv::FILLED, cv::LINE_AA);
  std::vector<Evaluation> f = front;
  std::sort(f.begin(), f.end(), [](const Evaluation& a, const Evaluation& b) { return a.step_seconds < b.step_seconds; });
  for (std::size_t i = 0; i < f.size(); ++i) {
    const cv::Point p{px(f[i].step_seconds * 1000), py(f[i].accuracy * 100)};
    if (i > 0) cv::line(img, {px(f[i - 1].step_seconds * 1000), py(f[i - 1].accuracy * 100)}, p, blue, 2, cv::LINE_AA);
    cv::circle(img, p, 5, blue, cv::FILLED, cv::LINE_AA);
  }
  for (const NamedEvaluation& s : selected) {
    const cv::Point p{px(s.evaluation.step_seconds * 1000), py(s.evaluation.accuracy * 100)};
    cv::circle(img, p, 9, green, 2, cv::LINE_AA);
    cv::putText(img, s.name, p + cv::Point(8, -10), font, 0.42, green, 1, cv::LINE_AA);
  }
  for (const NamedEvaluation& b : baselines) {
    const cv::Point p{px(b.evaluation.step_seconds * 1000), py(b.evaluation.accuracy * 100)};
    cv::rectangle(img, p - cv::Point(5, 5), p + cv::Point(5, 5), red, cv::FILLED);
    cv::putText(img, b.name, p + cv::Point(8, 16), font, 0.42, red, 1, cv::LINE_AA);
  }
  // Legend.
  int ly = top + 20;
  cv::circle(img, {left + 20, ly}, 3, grey, cv::FILLED, cv::LINE_AA);
  cv::putText(img, "evaluated candidates", {left + 32, ly + 5}, font, 0.45, black, 1, cv::LINE_AA);
  cv::circle(img, {left + 20, ly += 20}, 5, blue, cv::FILLED, cv::LINE_AA);
  cv::putText(img, "Pareto front", {left + 32, ly + 5}, font, 0.45, black, 1, cv::LINE_AA);
  cv::circle(img, {left + 20, ly += 20}, 8, green, 2, cv::LINE_AA);
  cv::putText(img, "selected for the zoo", {left + 32, ly + 5}, font, 0.45, black, 1, cv::LINE_AA);
  ly += 20;
  cv::rectangle(img, {left + 15, ly - 5}, {left + 25, ly + 5}, red, cv::FILLED);
  cv::putText(img, "hand-designed baselines", {left + 32, ly + 5}, font, 0.45, black, 1, cv::LINE_AA);

  std::vector<unsigned char> png;
  if (!cv::imencode(".png", img, png)) throw Error(ErrorCode::kIo, path + ": PNG encoding failed");
  zoo::write_file_atomic(path, std::string(png.begin(), png.end()));
}

}  // namespace nasoa::search
