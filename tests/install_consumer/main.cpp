// Opens a zoo bundle through the installed public API and prints its models.
// Usage: consumer BUNDLE_DIR
#include <nasoa/nasoa.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer BUNDLE_DIR\n";
    return 2;
  }
  try {
    const nasoa::Zoo zoo = nasoa::Zoo::open(argv[1]);
    std::cout << "nasoa " << NASOA_VERSION_STRING << " opened '" << zoo.name() << "'\n";
    for (const nasoa::ModelInfo& m : zoo.models()) {
      const nasoa::NetworkCost cost = nasoa::count_cost(nasoa::Encoding::parse(m.encoding),
                                                        m.upstream_classes, m.input_size);
      std::cout << m.name << ' ' << cost.parameters << '\n';
    }
    // nasoa/classifier.h takes cv::Mat: this compiles only if the package
    // hands OpenCV's headers on to the app.
    try {
      nasoa::Classifier::open(std::string(argv[1]) + "/no-such-model");
      return 1;
    } catch (const nasoa::Error& e) {
      if (e.code() != nasoa::ErrorCode::kNotFound) return 1;
      std::cout << "classifier refused a missing model dir\n";
    }
    nasoa::Encoding::parse("not an encoding");
  } catch (const nasoa::Error& e) {
    // The last call must fail with the SDK's own error type.
    std::cout << "caught " << nasoa::to_string(e.code()) << '\n';
    return e.code() == nasoa::ErrorCode::kInvalidEncoding ? 0 : 1;
  }
  return 1;
}
