# Installation and the CMake package: find_package(nasoa) + nasoa::nasoa.
include(CMakePackageConfigHelpers)

install(TARGETS nasoa EXPORT nasoaTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/nasoa
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/nasoa/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nasoa)

set(NASOA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nasoa)
install(EXPORT nasoaTargets NAMESPACE nasoa:: DESTINATION ${NASOA_CMAKE_DIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/nasoaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nasoaConfig.cmake
  INSTALL_DESTINATION ${NASOA_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/nasoaConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nasoaConfig.cmake
              ${PROJECT_BINARY_DIR}/nasoaConfigVersion.cmake
        DESTINATION ${NASOA_CMAKE_DIR})
