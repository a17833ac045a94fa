// nasoa/export.h: symbol visibility for the public API.
//
// libnasoa is built with hidden visibility; only declarations marked NASOA_API
// are exported. Apps never need to define anything.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define NASOA_API __attribute__((visibility("default")))
#else
#define NASOA_API
#endif
