# Finds nifticlib (Debian: libnifti2-dev). Debian 12's own NIFTIConfig.cmake points its imported
# targets at ${prefix}/lib instead of the multiarch directory and fails at configure time, so
# this module looks the files up itself and defines NIFTI::nifti2 (with znz and zlib).
find_path(NIFTI_INCLUDE_DIR nifti2_io.h PATH_SUFFIXES nifti)
find_library(NIFTI_NIFTI2_LIBRARY NAMES nifti2)
find_library(NIFTI_ZNZ_LIBRARY NAMES znz)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(NIFTI REQUIRED_VARS NIFTI_NIFTI2_LIBRARY NIFTI_ZNZ_LIBRARY NIFTI_INCLUDE_DIR)
if(NIFTI_FOUND AND NOT TARGET NIFTI::nifti2)
  find_package(ZLIB REQUIRED)
  add_library(NIFTI::znz UNKNOWN IMPORTED)
  set_target_properties(NIFTI::znz PROPERTIES IMPORTED_LOCATION "${NIFTI_ZNZ_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NIFTI_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES ZLIB::ZLIB)
  add_library(NIFTI::nifti2 UNKNOWN IMPORTED)
  set_target_properties(NIFTI::nifti2 PROPERTIES IMPORTED_LOCATION "${NIFTI_NIFTI2_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NIFTI_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES "NIFTI::znz;m")
endif()
mark_as_advanced(NIFTI_INCLUDE_DIR NIFTI_NIFTI2_LIBRARY NIFTI_ZNZ_LIBRARY)
