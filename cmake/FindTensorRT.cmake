# FindTensorRT
# ------------
# Finds an installed TensorRT (10.6 or newer) and its ONNX parser. Never downloads anything.
#
# Where it looks, first match wins:
#   1. TENSORRT_ROOT (CMake variable, then environment variable): a tar/zip install or a prefix
#   2. the CUDA toolkit folders (CUDAToolkit_ROOT, CUDA_PATH, CUDA_HOME, /usr/local/cuda): pip-less
#      Windows and Jetson installs put TensorRT beside CUDA
#   3. /usr/local/tensorrt, /opt/tensorrt and the Debian/Ubuntu multiarch folders of the
#      libnvinfer-dev packages (/usr/include/<triplet>, /usr/lib/<triplet>)
#
# Sets:
#   TensorRT_FOUND              TRUE when headers, nvinfer, nvonnxparser and a supported version were found
#   TensorRT_VERSION            "major.minor.patch" read from NvInferVersion.h
#   TensorRT_VERSION_MAJOR/MINOR/PATCH
#   TensorRT_INCLUDE_DIRS       folders holding NvInfer.h and NvOnnxParser.h
#   TensorRT_LIBRARIES          nvinfer and nvonnxparser
#   TensorRT_NOT_FOUND_REASON   one sentence saying what was missing (empty when found), for `deimv2 info`
# Imported targets: TensorRT::nvinfer, TensorRT::nvonnxparser

set(TensorRT_NOT_FOUND_REASON "")

set(_trt_roots "")
if(TENSORRT_ROOT)
  list(APPEND _trt_roots "${TENSORRT_ROOT}")
endif()
if(DEFINED ENV{TENSORRT_ROOT} AND NOT "$ENV{TENSORRT_ROOT}" STREQUAL "")
  list(APPEND _trt_roots "$ENV{TENSORRT_ROOT}")
endif()
foreach(_cuda_root IN ITEMS "${CUDAToolkit_ROOT}" "$ENV{CUDAToolkit_ROOT}" "$ENV{CUDA_PATH}" "$ENV{CUDA_HOME}" /usr/local/cuda)
  if(NOT "${_cuda_root}" STREQUAL "")
    list(APPEND _trt_roots "${_cuda_root}")
  endif()
endforeach()
list(APPEND _trt_roots /usr/local/tensorrt /opt/tensorrt /usr/local /usr)

if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_trt_triplet "${CMAKE_LIBRARY_ARCHITECTURE}")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(_trt_triplet "aarch64-linux-gnu")
else()
  set(_trt_triplet "x86_64-linux-gnu")
endif()

# An explicit TENSORRT_ROOT must not be shadowed by a system copy, so the roots go first as HINTS.
find_path(TensorRT_INCLUDE_DIR NvInfer.h
  HINTS ${_trt_roots}
  PATH_SUFFIXES include "include/${_trt_triplet}" "targets/${CMAKE_SYSTEM_PROCESSOR}-linux/include"
  NO_CMAKE_SYSTEM_PATH)
find_path(TensorRT_ONNXPARSER_INCLUDE_DIR NvOnnxParser.h
  HINTS ${TensorRT_INCLUDE_DIR} ${_trt_roots}
  PATH_SUFFIXES include "include/${_trt_triplet}"
  NO_CMAKE_SYSTEM_PATH)
# Windows installs name the libraries after the major version (nvinfer_10.lib).
find_library(TensorRT_NVINFER_LIBRARY NAMES nvinfer nvinfer_11 nvinfer_10
  HINTS ${_trt_roots}
  PATH_SUFFIXES lib lib64 "lib/${_trt_triplet}" "targets/${CMAKE_SYSTEM_PROCESSOR}-linux/lib"
  NO_CMAKE_SYSTEM_PATH)
find_library(TensorRT_ONNXPARSER_LIBRARY NAMES nvonnxparser nvonnxparser_11 nvonnxparser_10
  HINTS ${_trt_roots}
  PATH_SUFFIXES lib lib64 "lib/${_trt_triplet}" "targets/${CMAKE_SYSTEM_PROCESSOR}-linux/lib"
  NO_CMAKE_SYSTEM_PATH)

# TensorRT 10.x spells the version NV_TENSORRT_MAJOR; 10.11+ and 11.x define TRT_MAJOR_ENTERPRISE and
# make NV_TENSORRT_MAJOR an alias of it, so read the numeric one of either spelling.
function(_trt_read_version_part header part out)
  file(STRINGS "${header}" _lines REGEX "#define[ \t]+(TRT_${part}_ENTERPRISE|NV_TENSORRT_${part})[ \t]+[0-9]+")
  set(_value "")
  foreach(_line IN LISTS _lines)
    if(_line MATCHES "#define[ \t]+[A-Z_]+[ \t]+([0-9]+)")
      set(_value "${CMAKE_MATCH_1}")
      break()
    endif()
  endforeach()
  set(${out} "${_value}" PARENT_SCOPE)
endfunction()

set(TensorRT_VERSION "")
if(TensorRT_INCLUDE_DIR AND EXISTS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
  _trt_read_version_part("${TensorRT_INCLUDE_DIR}/NvInferVersion.h" MAJOR TensorRT_VERSION_MAJOR)
  _trt_read_version_part("${TensorRT_INCLUDE_DIR}/NvInferVersion.h" MINOR TensorRT_VERSION_MINOR)
  _trt_read_version_part("${TensorRT_INCLUDE_DIR}/NvInferVersion.h" PATCH TensorRT_VERSION_PATCH)
  if(NOT "${TensorRT_VERSION_MAJOR}" STREQUAL "")
    set(TensorRT_VERSION "${TensorRT_VERSION_MAJOR}.${TensorRT_VERSION_MINOR}.${TensorRT_VERSION_PATCH}")
  endif()
endif()

if(NOT TensorRT_INCLUDE_DIR)
  set(TensorRT_NOT_FOUND_REASON "NvInfer.h not found")
elseif("${TensorRT_VERSION}" STREQUAL "")
  set(TensorRT_NOT_FOUND_REASON "no TensorRT version in ${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
elseif(TensorRT_VERSION VERSION_LESS "10.6")
  set(TensorRT_NOT_FOUND_REASON "TensorRT ${TensorRT_VERSION} at ${TensorRT_INCLUDE_DIR} is older than 10.6, the oldest deimv2 supports")
elseif(NOT TensorRT_ONNXPARSER_INCLUDE_DIR)
  set(TensorRT_NOT_FOUND_REASON "NvOnnxParser.h not found beside NvInfer.h in ${TensorRT_INCLUDE_DIR}")
elseif(NOT TensorRT_NVINFER_LIBRARY)
  set(TensorRT_NOT_FOUND_REASON "libnvinfer not found for the TensorRT ${TensorRT_VERSION} headers in ${TensorRT_INCLUDE_DIR}")
elseif(NOT TensorRT_ONNXPARSER_LIBRARY)
  set(TensorRT_NOT_FOUND_REASON "libnvonnxparser not found for TensorRT ${TensorRT_VERSION}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TensorRT
  REQUIRED_VARS TensorRT_INCLUDE_DIR TensorRT_ONNXPARSER_INCLUDE_DIR TensorRT_NVINFER_LIBRARY TensorRT_ONNXPARSER_LIBRARY
  VERSION_VAR TensorRT_VERSION
  REASON_FAILURE_MESSAGE "${TensorRT_NOT_FOUND_REASON}")
if(TensorRT_FOUND AND NOT "${TensorRT_NOT_FOUND_REASON}" STREQUAL "")
  # Everything exists but the version is unsupported.
  set(TensorRT_FOUND FALSE)
endif()

if(TensorRT_FOUND)
  set(TensorRT_INCLUDE_DIRS "${TensorRT_INCLUDE_DIR}" "${TensorRT_ONNXPARSER_INCLUDE_DIR}")
  list(REMOVE_DUPLICATES TensorRT_INCLUDE_DIRS)
  set(TensorRT_LIBRARIES "${TensorRT_NVINFER_LIBRARY}" "${TensorRT_ONNXPARSER_LIBRARY}")
  if(NOT TARGET TensorRT::nvinfer)
    add_library(TensorRT::nvinfer UNKNOWN IMPORTED)
    set_target_properties(TensorRT::nvinfer PROPERTIES
      IMPORTED_LOCATION "${TensorRT_NVINFER_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}")
  endif()
  if(NOT TARGET TensorRT::nvonnxparser)
    add_library(TensorRT::nvonnxparser UNKNOWN IMPORTED)
    set_target_properties(TensorRT::nvonnxparser PROPERTIES
      IMPORTED_LOCATION "${TensorRT_ONNXPARSER_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_ONNXPARSER_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES TensorRT::nvinfer)
  endif()
endif()

mark_as_advanced(TensorRT_INCLUDE_DIR TensorRT_ONNXPARSER_INCLUDE_DIR TensorRT_NVINFER_LIBRARY TensorRT_ONNXPARSER_LIBRARY)
