// Opens a zoo bundle through the installed public API and prints its models.
// Usage: consumer BUNDLE_DIR
#include <nasoa/nasoa.h>

#include <iostream>

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
    nasoa::Encoding::parse("not an encoding");
  } catch (const nasoa::Error& e) {
    // The last call must fail with the SDK's own error type.
    std::cout << "caught " << nasoa::to_string(e.code()) << '\n';
    return e.code() == nasoa::ErrorCode::kInvalidEncoding ? 0 : 1;
  }
  return 1;
}
