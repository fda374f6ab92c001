// A8W8 linears: int8 activations x int8 weights, exact int32 accumulation, float32 output
//   y[t, o] = float(sum_k (x[t, k] - zp) * w[o, k]) * x_scale[t] * w_scale[o],  zp in [-128, 127],
// and the activation quantizers (per-token dynamic symmetric, per-tensor static), rounding half to even.
// The dot products use AVX-512 VNNI (vpdpbusd, avx512.cpp) where the CPU has it, else AVX2 (int16 madd of x - zp,
// centred once per call; it never saturates). Few tokens: dot products of 4 weight rows at a time, prefetching the
// rows ahead; from kPrefillMinTokens tokens with VNNI: a GEMM on panels of 16 weight rows (no horizontal sums).
// VNNI takes x + 128, so it takes off (128 + zp) * the weight row sums, summed on the first token's pass over the
// rows (few tokens) or on each panel (GEMM).
#include <cmath>

#include "ptq_kernels.h"

namespace ptq {
namespace {

constexpr int64_t kRowsPerItem = 16;
constexpr int64_t kPrefetchRows = 8;

// dot_block_vnni (ptq_kernels.h) in AVX2, for NR rows and activations already centred: xc = x - zp in int16.
template <int NR>
void dot_rows_avx2(const int16_t *xc, int64_t tokens, int64_t k_len, const int8_t *w, int32_t *acc) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int16_t *xt = xc + t * k_len;
    __m256i a[NR];
    for (int r = 0; r < NR; ++r) a[r] = _mm256_setzero_si256();
    int64_t k = 0;
    for (; k + 16 <= k_len; k += 16) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xt + k));
      for (int r = 0; r < NR; ++r) {
        const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w + r * k_len + k)));
        a[r] = _mm256_add_epi32(a[r], _mm256_madd_epi16(xv, wv));
      }
    }
    for (int r = 0; r < NR; ++r) {
      int32_t total = hsum(a[r]);
      for (int64_t i = k; i < k_len; ++i) total += xt[i] * w[r * k_len + i];
      acc[t * 4 + r] = total;
    }
  }
}

void dot_block_avx2(const int16_t *xc, int64_t tokens, int64_t k_len, const int8_t *w, int nr, int32_t *acc) {
  if (nr == 4) return dot_rows_avx2<4>(xc, tokens, k_len, w, acc);
  for (int r = 0; r < nr; ++r) dot_rows_avx2<1>(xc, tokens, k_len, w + r * k_len, acc + r);
}

void a8w8_gemm_vnni(const int8_t *xq, int64_t tokens, int64_t k_len, const int8_t *w, const A8W8Out &out) {
  const int64_t stride = (k_len + 3) / 4 * 4;
  std::vector<uint8_t> u(tokens * stride, 0x80);  // x + 128, rows padded to 4 bytes (the padded weights are 0)
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t t = 0; t < tokens; ++t) {
    const int8_t *src = xq + t * k_len;
    uint8_t *dst = u.data() + t * stride;
    int64_t k = 0;
    for (; k + 32 <= k_len; k += 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + k),
                          _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + k)), bias));
    for (; k < k_len; ++k) dst[k] = static_cast<uint8_t>(src[k] ^ 0x80);
  }
  pool().run((out.n_out + kPanel - 1) / kPanel, tokens * k_len * out.n_out, [&](int64_t p) {
    a8w8_panel_vnni(u.data(), tokens, w, k_len, p * kPanel, out, scratch<int32_t>(stride / 4 * kPanel));
  });
}

// y (tokens x n_out) = float((xq - zp) * w^T) * x_scale[t] * w_scale[o]; x_scale holds `tokens` values
// (0, or kBadZeroPoint for a zp outside [-128, 127])
int a8w8_matmul(const int8_t *xq, int64_t tokens, int64_t k_len, const float *x_scale, int32_t zp, const int8_t *w,
                const float *w_scale, int64_t n_out, float *y) {
  if (zp < -128 || zp > 127) return kBadZeroPoint;
  if (g_isa == kIsaAvx512Vnni && tokens >= kPrefillMinTokens) {
    a8w8_gemm_vnni(xq, tokens, k_len, w, {x_scale, zp, w_scale, y, n_out});
    return 0;
  }
  const bool vnni = g_isa == kIsaAvx512Vnni;
  std::vector<int16_t> xc(vnni ? 0 : tokens * k_len);  // AVX2: x - zp, within int16 (madd never saturates)
  for (size_t i = 0; i < xc.size(); ++i) xc[i] = static_cast<int16_t>(xq[i] - zp);
  const int64_t items = (n_out + kRowsPerItem - 1) / kRowsPerItem;
  pool().run(items, tokens * k_len * n_out, [&](int64_t item) {
    int32_t *acc = scratch<int32_t>(tokens * 4);
    for (int64_t o0 = item * kRowsPerItem; o0 < std::min(n_out, (item + 1) * kRowsPerItem); o0 += 4) {
      const int nr = static_cast<int>(std::min<int64_t>(4, n_out - o0));
      if (o0 + kPrefetchRows + 4 <= n_out) prefetch(w + (o0 + kPrefetchRows) * k_len, 4 * k_len);
      if (vnni) dot_block_vnni(xq, tokens, k_len, w + o0 * k_len, nr, zp, acc);
      else dot_block_avx2(xc.data(), tokens, k_len, w + o0 * k_len, nr, acc);
      for (int64_t t = 0; t < tokens; ++t)
        for (int r = 0; r < nr; ++r)
          y[t * n_out + o0 + r] = static_cast<float>(acc[t * 4 + r]) * x_scale[t] * w_scale[o0 + r];
    }
  });
  return 0;
}

void store8(int8_t *q, __m256 v) {  // v integral and within int8 range
  const __m256i i = _mm256_cvtps_epi32(v);
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i *>(q), _mm_packs_epi16(w16, w16));
}

// q = clip(round(x / scale) + zp, lo, hi), round half to even
void quantize_row(const float *x, int64_t k_len, float scale, float zp, float lo, float hi, int8_t *q) {
  const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(zp), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  int64_t k = 0;
  for (; k + 8 <= k_len; k += 8) {
    const __m256 ratio = _mm256_div_ps(_mm256_loadu_ps(x + k), vs);
    const __m256 v = _mm256_round_ps(ratio, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    store8(q + k, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, vz), vlo), vhi));
  }
  for (; k < k_len; ++k) q[k] = static_cast<int8_t>(std::min(std::max(std::nearbyint(x[k] / scale) + zp, lo), hi));
}

// Dynamic symmetric per token: s = max|x| / 127 (1 for a token of zeros), q = clip(round(x / s), -127, 127).
void quantize_per_token(const float *x, int64_t tokens, int64_t k_len, int8_t *q, float *s) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  pool().run(tokens, tokens * k_len / 4, [&](int64_t t) {
    const float *xt = x + t * k_len;
    __m256 m = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= k_len; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xt + k), abs_mask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    for (; k < k_len; ++k) amax = std::max(amax, std::fabs(xt[k]));
    s[t] = amax > 0.f ? amax / 127.0f : 1.0f;
    quantize_row(xt, k_len, s[t], 0.f, -127.f, 127.f, q + t * k_len);
  });
}

void quantize_static(const float *x, int64_t tokens, int64_t k_len, float scale, float zp, int8_t *q) {
  pool().run(tokens, tokens * k_len / 4, [&](int64_t t) {
    quantize_row(x + t * k_len, k_len, scale, zp, -128.f, 127.f, q + t * k_len);
  });
}

}  // namespace

int linear_a8w8_dynamic(const float *x, int64_t tokens, int64_t k_len, const int8_t *w, const float *w_scale,
                        int64_t n_out, float *y) {
  std::vector<int8_t> q(tokens * k_len);
  std::vector<float> s(tokens);
  quantize_per_token(x, tokens, k_len, q.data(), s.data());
  return a8w8_matmul(q.data(), tokens, k_len, s.data(), 0, w, w_scale, n_out, y);
}

int linear_a8w8_static(const float *x, int64_t tokens, int64_t k_len, float scale, float zp, const int8_t *w,
                       const float *w_scale, int64_t n_out, float *y) {
  if (!(zp >= -128.f && zp <= 127.f)) return kBadZeroPoint;
  std::vector<int8_t> q(tokens * k_len);
  quantize_static(x, tokens, k_len, scale, zp, q.data());
  std::vector<float> ones(tokens, 1.f), scales(n_out);  // (acc * 1) * (scale * w_scale)
  for (int64_t o = 0; o < n_out; ++o) scales[o] = scale * w_scale[o];
  return a8w8_matmul(q.data(), tokens, k_len, ones.data(), static_cast<int32_t>(std::lrint(zp)), w, scales.data(),
                     n_out, y);
}

}  // namespace ptq

using namespace ptq;

// xq int8 (..., K), x_scale f32 (T) or (1), x_zp int32 (1), w int8 (O, K), w_scale f32 (O) -> y f32 (..., O)
PTQ_AOT(PtqA8W8MatMul, 6) {
  const int64_t tokens = a.rows(0), k_len = a.dim(3, 1);
  const float *x_scale = a.ptr<float>(1);
  std::vector<float> broadcast(a.numel(1) == tokens ? 0 : tokens, x_scale[0]);
  return a8w8_matmul(a.ptr<int8_t>(0), tokens, k_len, broadcast.empty() ? x_scale : broadcast.data(),
                     *a.ptr<int32_t>(2), a.ptr<int8_t>(3), a.ptr<float>(4), a.dim(3, 0), a.ptr<float>(5));
}

// x f32 (..., K) -> q int8 (..., K), s f32 (...)
PTQ_AOT(PtqQuantPerToken, 3) {
  quantize_per_token(a.ptr<float>(0), a.rows(0), a.dim(0, -1), a.ptr<int8_t>(1), a.ptr<float>(2));
  return 0;
}

// x f32 (..., K), scale f32 (1), zp f32 (1, integer-valued) -> q int8 (..., K)
PTQ_AOT(PtqQuantStatic, 4) {
  quantize_static(a.ptr<float>(0), a.rows(0), a.dim(0, -1), *a.ptr<float>(1), *a.ptr<float>(2), a.ptr<int8_t>(3));
  return 0;
}

// Per-token dynamic A8W8 linear in one call: x f32 (..., K), w int8 (O, K), w_scale f32 (O) -> y f32 (..., O)
PTQ_AOT(PtqA8W8Dynamic, 4) {
  return linear_a8w8_dynamic(a.ptr<float>(0), a.rows(0), a.dim(1, 1), a.ptr<int8_t>(1), a.ptr<float>(2), a.dim(1, 0),
                             a.ptr<float>(3));
}

// Static per-tensor A8W8 linear in one call: x f32 (..., K), scale f32 (1), zp f32 (1, integer-valued),
// w int8 (O, K), w_scale f32 (O) -> y = float((q - zp) @ w^T) * (scale * w_scale) f32 (..., O)
PTQ_AOT(PtqA8W8Static, 6) {
  return linear_a8w8_static(a.ptr<float>(0), a.rows(0), a.dim(3, 1), *a.ptr<float>(1), *a.ptr<float>(2),
                            a.ptr<int8_t>(3), a.ptr<float>(4), a.dim(3, 0), a.ptr<float>(5));
}
