# The ROS 2 Python wheels on PyPI were built in a manylinux container: their exported CMake
# targets name include directories under /opt/python/... that do not exist elsewhere, and
# CMake's generate step fails on them. Replace such entries with this interpreter's Python and
# NumPy include directories. On a ROS install from packages no target matches and this does
# nothing.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)

function(_grasp_semantics_fix_includes dir)
  get_property(targets DIRECTORY "${dir}" PROPERTY IMPORTED_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(includes ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(includes AND "${includes}" MATCHES "/opt/python/")
      set(fixed "")
      foreach(entry IN LISTS includes)
        if(NOT entry MATCHES "^/opt/python/")
          list(APPEND fixed "${entry}")
        endif()
      endforeach()
      list(APPEND fixed ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
      set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${fixed}")
    endif()
  endforeach()
endfunction()

_grasp_semantics_fix_includes("${CMAKE_CURRENT_SOURCE_DIR}")
