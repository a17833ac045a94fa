// nasoa/nasoa.h: the whole public API of the nasoa SDK in one include.
//
// Linking: target_link_libraries(app PRIVATE nasoa::nasoa) after
// find_package(nasoa). No LibTorch header is needed to compile against it;
// OpenCV's core headers are (nasoa/classifier.h takes cv::Mat), and the
// nasoa::nasoa target brings them.
#pragma once

#include "nasoa/adapter.h"
#include "nasoa/classifier.h"
#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "nasoa/plan.h"
#include "nasoa/regime.h"
#include "nasoa/task.h"
#include "nasoa/version.h"
#include "nasoa/zoo.h"
