# Route compilations through ccache. Precompiled headers need the sloppiness
# settings below, otherwise ccache refuses to cache any TU that uses them; the
# base directory makes paths relative, so that two clones share their cache.
if(NASOA_USE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(NASOA_CCACHE ccache)
  if(NASOA_CCACHE)
    set(CMAKE_CXX_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        "CCACHE_BASEDIR=${PROJECT_SOURCE_DIR}"
        ${NASOA_CCACHE})
  endif()
endif()
