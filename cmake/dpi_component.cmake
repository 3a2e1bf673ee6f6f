# dpi_component_includes(<target> <folder>...): the include directory of one component.
#
# Headers are named from the top of the tree ("core/flow.h", "backends/nftables/model.h"), so the
# top itself would be an include directory that shows every folder to every component. Instead each
# component gets a directory of its own in the build tree holding links to just its folders, under
# their usual names; it is PUBLIC, so what links the component sees them too. A file that includes
# a folder its target neither owns nor links (core including a backend, a backend including cli/)
# then fails to compile, on top of the `layering` ctest that checks the sources.
#
# DPI_COMPONENT_INCLUDES=OFF gives every component the top of the tree instead (what the layering
# ctest then checks alone); the objects are the same, the compile commands differ, which matters only
# to a compiler cache shared with trees configured the other way.
option(DPI_COMPONENT_INCLUDES "Each component sees only its own folders and what it links" ON)

function(dpi_component_includes target)
  if(NOT DPI_COMPONENT_INCLUDES)
    target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR})
    return()
  endif()
  set(root ${CMAKE_BINARY_DIR}/include/${target})
  foreach(folder ${ARGN})
    if(NOT IS_DIRECTORY ${CMAKE_SOURCE_DIR}/${folder})
      message(FATAL_ERROR "dpi_component_includes(${target}): no folder ${folder}")
    endif()
    get_filename_component(parent ${root}/${folder} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(REMOVE ${root}/${folder})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
  endforeach()
  target_include_directories(${target} PUBLIC ${root})
endfunction()
