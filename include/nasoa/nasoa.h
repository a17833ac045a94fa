// nasoa/nasoa.h: the whole public API of the nasoa SDK in one include.
//
// Linking: target_link_libraries(app PRIVATE nasoa::nasoa) after
// find_package(nasoa). No LibTorch header is needed to compile against it.
#pragma once

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "nasoa/version.h"
#include "nasoa/zoo.h"
