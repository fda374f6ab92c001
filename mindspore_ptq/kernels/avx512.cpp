// AVX-512 paths, compiled for that target (the rest of the library is AVX2) and called only when g_isa says
// the CPU has AVX-512 F/BW/VNNI: the fp32 GEMM on a dequantized panel, and the A8W8 VNNI dot products.
// Nothing here calls a template or inline function defined outside this file's target region.
#include "ptq_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")

namespace ptq {
namespace {

constexpr int kTileTokens = 12;  // tokens per register tile: 12 zmm accumulators of 16 outputs

// y (NT x 16, masked to the valid outputs) = x (NT rows of K) * panel (K x 16)
template <int NT>
void f32_tile(const float *x, int64_t k_len, const float *panel, float *y, int64_t ldy, __mmask16 mask) {
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < k_len; ++k) {
    const __m512 b = _mm512_load_ps(panel + k * kPanel);
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(x[t * k_len + k]), b, acc[t]);
  }
  for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
}

using F32Tile = void (*)(const float *, int64_t, const float *, float *, int64_t, __mmask16);
constexpr F32Tile kF32Tile[kTileTokens + 1] = {nullptr,        f32_tile<1>,  f32_tile<2>, f32_tile<3>, f32_tile<4>,
                                               f32_tile<5>,    f32_tile<6>,  f32_tile<7>, f32_tile<8>, f32_tile<9>,
                                               f32_tile<10>,   f32_tile<11>, f32_tile<12>};

// dot_block_vnni for NR rows. vpdpbusd multiplies unsigned by signed bytes: it is fed u = x + 128 (x ^ 0x80)
// and, while the first token streams the rows, the constant 128 + zp, whose products (128 + zp) * rowsum are
// taken off (kept for the later tokens).
template <int NR>
void dot_rows(const int8_t *x, int64_t tokens, int64_t k_len, const int8_t *w, int32_t zp, int32_t *acc) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80)), shift = _mm512_set1_epi8(static_cast<char>(128 + zp));
  int32_t correction[NR];
  for (int64_t t = 0; t < tokens; ++t) {
    const bool first = t == 0;
    __m512i a[NR], c[NR];
    for (int r = 0; r < NR; ++r) a[r] = c[r] = _mm512_setzero_si512();
    const auto step = [&](int64_t k, __mmask64 m) {  // m: the bytes to use (masked off: w = 0)
      const __m512i u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + t * k_len + k), bias);
      for (int r = 0; r < NR; ++r) {
        const __m512i wv = _mm512_maskz_loadu_epi8(m, w + r * k_len + k);
        a[r] = _mm512_dpbusd_epi32(a[r], u, wv);
        if (first) c[r] = _mm512_dpbusd_epi32(c[r], shift, wv);
      }
    };
    int64_t k = 0;
    for (; k + 64 <= k_len; k += 64) step(k, ~0ULL);
    if (k < k_len) step(k, ~0ULL >> (64 - (k_len - k)));
    for (int r = 0; r < NR; ++r) {
      if (first && tokens > 1) correction[r] = _mm512_reduce_add_epi32(c[r]);
      acc[t * 4 + r] = first ? _mm512_reduce_add_epi32(_mm512_sub_epi32(a[r], c[r]))
                             : _mm512_reduce_add_epi32(a[r]) - correction[r];
    }
  }
}

// One tile of the A8W8 GEMM: NT tokens x 16 outputs, epilogue included.
template <int NT>
void a8w8_tile(const uint8_t *u, int64_t stride, int64_t groups, const int32_t *panel, const float *x_scale,
               __m512i correction, __m512 w_scale, float *y, int64_t ldy, __mmask16 mask) {
  __m512i acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i b = _mm512_load_si512(panel + g * kPanel);
    for (int t = 0; t < NT; ++t) {
      int32_t four;
      __builtin_memcpy(&four, u + t * stride + 4 * g, 4);
      acc[t] = _mm512_dpbusd_epi32(acc[t], _mm512_set1_epi32(four), b);
    }
  }
  for (int t = 0; t < NT; ++t) {
    const __m512 value = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[t], correction));
    _mm512_mask_storeu_ps(y + t * ldy, mask, _mm512_mul_ps(_mm512_mul_ps(value, _mm512_set1_ps(x_scale[t])), w_scale));
  }
}

using A8W8Tile = void (*)(const uint8_t *, int64_t, int64_t, const int32_t *, const float *, __m512i, __m512, float *,
                          int64_t, __mmask16);
constexpr A8W8Tile kA8W8Tile[kTileTokens + 1] = {nullptr,       a8w8_tile<1>,  a8w8_tile<2>,  a8w8_tile<3>,
                                                 a8w8_tile<4>,  a8w8_tile<5>,  a8w8_tile<6>,  a8w8_tile<7>,
                                                 a8w8_tile<8>,  a8w8_tile<9>,  a8w8_tile<10>, a8w8_tile<11>,
                                                 a8w8_tile<12>};

}  // namespace

void f32_panel_avx512(const float *x, int64_t tokens, int64_t k_len, const float *panel, float *y, int64_t ldy,
                      int valid) {
  const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
  for (int64_t t0 = 0; t0 < tokens; t0 += kTileTokens) {
    const int64_t nt = tokens - t0 < kTileTokens ? tokens - t0 : kTileTokens;
    kF32Tile[nt](x + t0 * k_len, k_len, panel, y + t0 * ldy, ldy, mask);
  }
}

void dot_block_vnni(const int8_t *x, int64_t tokens, int64_t k_len, const int8_t *w, int nr, int32_t zp, int32_t *acc) {
  if (nr == 4) return dot_rows<4>(x, tokens, k_len, w, zp, acc);
  for (int r = 0; r < nr; ++r) dot_rows<1>(x, tokens, k_len, w + r * k_len, zp, acc + r);
}

void a8w8_panel_vnni(const uint8_t *u, int64_t tokens, const int8_t *w, int64_t k_len, int64_t o0, const A8W8Out &out,
                     int32_t *panel) {
  const int64_t groups = (k_len + 3) / 4, full = k_len / 4, left = out.n_out - o0;
  const int valid = static_cast<int>(left < kPanel ? left : kPanel);
  const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
  // panel[g][j] = the 4 weights w[o0 + j, 4g .. 4g + 3], zero past the valid rows and past K
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(static_cast<int>(k_len)));
  const int8_t *base = w + o0 * k_len;
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t g = 0; g < full; ++g)
    _mm512_store_si512(panel + g * kPanel, _mm512_mask_i32gather_epi32(zero, mask, rows, base + 4 * g, 1));
  if (full < groups) {
    uint8_t *tail = reinterpret_cast<uint8_t *>(panel + full * kPanel);
    for (int j = 0; j < kPanel; ++j)
      for (int b = 0; b < 4; ++b)
        tail[4 * j + b] = j < valid && 4 * full + b < k_len ? static_cast<uint8_t>(base[j * k_len + 4 * full + b]) : 0;
  }
  // (128 + zp) * the row sums: taken off the products with u = x + 128 (the panel's zero padding adds nothing)
  const __m512i shift = _mm512_set1_epi8(static_cast<char>(128 + out.zp));
  __m512i correction = zero;
  for (int64_t g = 0; g < groups; ++g)
    correction = _mm512_dpbusd_epi32(correction, shift, _mm512_load_si512(panel + g * kPanel));
  const __m512 w_scale = _mm512_maskz_loadu_ps(mask, out.w_scale + o0);
  for (int64_t t0 = 0; t0 < tokens; t0 += kTileTokens) {
    const int64_t nt = tokens - t0 < kTileTokens ? tokens - t0 : kTileTokens;
    kA8W8Tile[nt](u + t0 * 4 * groups, 4 * groups, groups, panel, out.x_scale + t0, correction, w_scale,
                  out.y + t0 * out.n_out + o0, out.n_out, mask);
  }
}

}  // namespace ptq

#pragma GCC pop_options
