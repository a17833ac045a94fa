// zoo/bundle/sha256.h: SHA-256 digests (OpenSSL's libcrypto), as lower-case hex.
#pragma once

#include <string>
#include <string_view>

namespace nasoa::zoo {

std::string sha256_hex(std::string_view bytes);

// The raw 32-byte digest, for formats that seal themselves with it.
std::string sha256_bytes(std::string_view bytes);

// Digest of a whole file, read in chunks. Throws Error{kNotFound or kIo}.
std::string sha256_file_hex(const std::string& path);

}  // namespace nasoa::zoo
