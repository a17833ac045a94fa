// Sample: open a zoo bundle and list what it offers.
//
//   nasoa-sample-zoo-info ZOO_DIR
//
// Shows the three things every nasoa app starts with: opening (and thereby
// verifying) a bundle, reading its model descriptions, and handling
// nasoa::Error, the only exception the SDK throws.
#include <nasoa/nasoa.h>

#include <iostream>
#include <string>

#include "../common/text_file.h"

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << "usage: " << argv[0] << " ZOO_DIR\nOpens (and so verifies) a zoo bundle and lists its models.\n";
    return 0;
  }
  if (argc != 2 || argv[1][0] == '\0') {
    std::cerr << "usage: " << argv[0] << " ZOO_DIR" << (argc == 2 ? " (ZOO_DIR is empty)" : "") << "\n";
    return 2;
  }
  try {
    const nasoa::Zoo zoo = nasoa::Zoo::open(argv[1]);  // checks every file's SHA-256
    // The provenance is free text from whoever made the bundle: shown on one
    // line, its control bytes escaped, so that it cannot forge lines of this
    // listing or send the terminal escape sequences.
    std::cout << "zoo '" << zoo.name() << "', made by " << nasoa_samples::one_line(zoo.provenance().tool) << " on "
              << nasoa_samples::one_line(zoo.provenance().date) << "\n";
    for (const nasoa::ModelInfo& model : zoo.models()) {
      std::cout << "  " << model.name << ": " << model.parameters / 1e6 << " M parameters, "
                << model.macs / 1e6 << " M MACs at " << model.input_size << "x"
                << model.input_size << ", "
                << (model.upstream_accuracy ? std::to_string(*model.upstream_accuracy) : "untrained")
                << "\n";
    }
    // A listing that could not be written (a full disk, a closed pipe) is a
    // failure, not a success with nothing shown.
    if (!std::cout.flush()) {
      std::cerr << "cannot write the listing to standard output\n";
      return 1;
    }
    return 0;
  } catch (const nasoa::Error& e) {
    // The message names the file and what is wrong with it.
    std::cerr << "cannot use " << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
}
