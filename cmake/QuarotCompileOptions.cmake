# Compiler flags shared by every quarot target.
function(quarot_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare)
  if(QUAROT_NATIVE)
    target_compile_options(${target} PRIVATE -march=native)
  endif()
  if(QUAROT_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
  if(QUAROT_TSAN)
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=thread)
  endif()
  if(QUAROT_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()

# Kernels are compiled once per instruction set and picked at run time
# (kernels/cpu/cpu_features.h). Files named *_amx.cpp, *_avx512vbmi.cpp (VBMI + VNNI),
# *_avx512vnni.cpp, *_avx512.cpp and *_avx2.cpp get the matching target flags even in
# the portable build, so one binary carries every path.
# The quantization contract (fake_quant, int_quant, fwht*, act_quant*) is compiled
# without floating-point contraction: GCC fuses a*b - c*d into an FMA wherever the
# target has one, and which product it fuses depends on the surrounding code, so the
# simulated quantizer gave different scales in native and portable builds, and the
# integer path could not reproduce it bit for bit. The SwiGLU gating (silu_avx2, and the
# AMX products' gated epilogue, int_gemm_amx) likewise: the two must give the same bits.
function(quarot_isa_sources target)
  get_target_property(srcs ${target} SOURCES)
  foreach(src IN LISTS srcs)
    set(opts "")
    if(src MATCHES "_amx\\.cpp$")
      set(opts -mamx-tile -mamx-int8 -mavx512vnni -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2 -mf16c)
    elseif(src MATCHES "_avx512vbmi\\.cpp$")
      set(opts -mavx512vbmi -mavx512vnni -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2 -mf16c)
    elseif(src MATCHES "_avx512vnni\\.cpp$")
      set(opts -mavx512vnni -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2 -mf16c)
    elseif(src MATCHES "_avx512\\.cpp$")
      set(opts -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2 -mf16c)
    elseif(src MATCHES "_avx2\\.cpp$")
      set(opts -mavx2 -mfma -mf16c)
    endif()
    # GCC 12's AVX-512 intrinsic headers start some results from an undefined register
    # (`__Y = __Y`), which -Wmaybe-uninitialized reports at every inlined use: ~1400 false
    # lines per build from the codebook / weight-only kernels' unrolled templates, hiding
    # real warnings.
    if(src MATCHES "(codebook_gemm_avx512|codebook_int8_avx512vbmi|kv_code_tiles_int8_avx512vbmi|weight_only_gemm_avx512|act_quant_avx512|fwht_avx512)\\.cpp$"
       AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      list(APPEND opts -Wno-maybe-uninitialized -Wno-uninitialized)
    endif()
    if(src MATCHES "/(fake_quant|int_quant|fwht[a-z0-9_]*|act_quant[a-z0-9_]*|silu_avx2|int_gemm_amx)\\.cpp$")
      list(APPEND opts -ffp-contract=off)
    endif()
    if(opts)
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${opts}")
    endif()
  endforeach()
endfunction()
