# Use ccache when present. Precompiled headers need the sloppiness settings below.
find_program(DELTATUNE_CCACHE ccache)
if(DELTATUNE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      ${DELTATUNE_CCACHE})
  message(STATUS "DeltaTune: using ccache (${DELTATUNE_CCACHE})")
endif()
