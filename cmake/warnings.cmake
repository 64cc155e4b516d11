# Warnings as errors for the addon's own sources (headers of Node, node-addon-api, TensorRT and CUDA
# are included as system headers, so their warnings do not count). The same flags as the review check
# (../shared/tools/trt-compile-check): -Wall -Wextra -Werror.
function(deimv2_enable_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:/W4 /WX>)
  else()
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>
      $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Werror>)
  endif()
endfunction()
