// Weight-only linears, float32 activations: W8 (int8 per-channel), W4 (packed int4, group scales) and F32 (the
// float linears a fused decode layer runs beside the quantized ones).
//
// Few tokens: a GEMV that converts the weights to float in registers (AVX2 FMA), 4 rows at a time, prefetching
// the rows ahead (the weights stream from memory). From kPrefillMinTokens tokens: panels of 16 output rows are
// dequantized to fp32 (transposed, k-major) and multiplied by a register-blocked fp32 GEMM (AVX-512 12 x 16
// tiles where available, else AVX2 6 x 16).
#include "ptq_kernels.h"

namespace ptq {
namespace {

constexpr int kTileTokens = 6;  // tokens of one AVX2 GEMM micro-tile (6 x 16 = 12 ymm accumulators)
constexpr int64_t kRowsPerItem = 16;
constexpr int64_t kPrefetchRows = 8;
constexpr int64_t kTokenBlock = 256;

// y[r] = dot(x, w[r]) for NR rows of k_len int8 or float values (row stride k_len)
template <int NR, class T>
void dot_rows(const float *x, const T *w, int64_t k_len, float *y) {
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= k_len; k += 8) {
    const __m256 xv = _mm256_loadu_ps(x + k);
    for (int r = 0; r < NR; ++r) acc[r] = _mm256_fmadd_ps(load8(w + r * k_len + k), xv, acc[r]);
  }
  for (int r = 0; r < NR; ++r) {
    float s = hsum(acc[r]);
    for (int64_t i = k; i < k_len; ++i) s += x[i] * static_cast<float>(w[r * k_len + i]);
    y[r] = s;
  }
}

// The weight formats. Each gives 8 dequantized fp32 weights of row o from k (load8), one weight (value, for the
// K % 8 tail) and rows<NR>(x, o, y): y[r] = dot(x, dequantized row o + r) for NR rows (the GEMV).
struct W8 {  // int8 (O, K), scale (O)
  const int8_t *w;
  const float *scale;
  int64_t k_len;

  int64_t row_bytes() const { return k_len; }
  __m256 load8(int64_t o, int64_t k) const {
    return _mm256_mul_ps(_mm256_set1_ps(scale[o]), load_i8(w + o * k_len + k));
  }
  float value(int64_t o, int64_t k) const { return scale[o] * static_cast<float>(w[o * k_len + k]); }
  template <int NR>
  void rows(const float *x, int64_t o, float *y) const {
    dot_rows<NR>(x, w + o * k_len, k_len, y);
    for (int r = 0; r < NR; ++r) y[r] *= scale[o + r];
  }
};

struct F32 {  // float (O, K)
  const float *w;
  int64_t k_len;

  int64_t row_bytes() const { return k_len * 4; }
  __m256 load8(int64_t o, int64_t k) const { return _mm256_loadu_ps(w + o * k_len + k); }
  float value(int64_t o, int64_t k) const { return w[o * k_len + k]; }
  template <int NR>
  void rows(const float *x, int64_t o, float *y) const {
    dot_rows<NR>(x, w + o * k_len, k_len, y);
  }
};

struct W4 {  // two int4 per byte (O, K / 2), scales (O, G): one per group of g = K / G inputs
  const uint8_t *w;
  const float *scales;
  int64_t k_len, groups, g;

  int64_t row_bytes() const { return k_len / 2; }
  float scale(int64_t o, int64_t k) const { return scales[o * groups + k / g]; }
  __m256 load8(int64_t o, int64_t k) const {
    return _mm256_mul_ps(_mm256_set1_ps(scale(o, k)), load_i4(w + o * row_bytes() + k / 2));
  }
  float value(int64_t o, int64_t k) const { return scale(o, k) * static_cast<float>(nibble(w + o * row_bytes(), k)); }
  template <int NR>
  void rows(const float *x, int64_t o, float *y) const {
    const int64_t bytes = row_bytes();
    const uint8_t *wo = w + o * bytes;
    __m256 total[NR];
    float total_tail[NR];
    for (int r = 0; r < NR; ++r) total[r] = _mm256_setzero_ps(), total_tail[r] = 0.f;
    for (int64_t grp = 0; grp < groups; ++grp) {
      const int64_t i0 = grp * g;
      __m256 acc[NR];
      for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
      int64_t k = 0;
      for (; k + 8 <= g; k += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i0 + k);
        for (int r = 0; r < NR; ++r) acc[r] = _mm256_fmadd_ps(load_i4(wo + r * bytes + (i0 + k) / 2), xv, acc[r]);
      }
      for (int r = 0; r < NR; ++r) {
        float tail = 0.f;
        for (int64_t i = i0 + k; i < i0 + g; ++i) tail += x[i] * static_cast<float>(nibble(wo + r * bytes, i));
        const float s = scales[(o + r) * groups + grp];
        total[r] = _mm256_fmadd_ps(acc[r], _mm256_set1_ps(s), total[r]);
        total_tail[r] += s * tail;
      }
    }
    for (int r = 0; r < NR; ++r) y[r] = hsum(total[r]) + total_tail[r];
  }
};

// y (tokens x n_out) = x (tokens x K) * dequantized w^T, 4 rows at a time, prefetching the rows ahead.
template <class W>
void gemv(const float *x, int64_t tokens, int64_t n_out, float *y, const W &w) {
  const int64_t items = (n_out + kRowsPerItem - 1) / kRowsPerItem, row_bytes = w.row_bytes();
  pool().run(items, tokens * row_bytes * n_out, [&](int64_t item) {  // work: about the multiply-adds
    const int64_t end = std::min(n_out, (item + 1) * kRowsPerItem);
    for (int64_t t = 0; t < tokens; ++t) {
      const float *xt = x + t * w.k_len;
      float *yt = y + t * n_out;
      int64_t o = item * kRowsPerItem;
      for (; o + 4 <= end; o += 4) {
        if (t == 0 && o + kPrefetchRows + 4 <= n_out)
          prefetch(reinterpret_cast<const char *>(w.w) + (o + kPrefetchRows) * row_bytes, 4 * row_bytes);
        w.template rows<4>(xt, o, yt + o);
      }
      for (; o < end; ++o) w.template rows<1>(xt, o, yt + o);
    }
  });
}

// c (NT x 16) = x (NT rows of K) * panel (K x 16)
template <int NT>
void micro_tile(const float *x, int64_t k_len, const float *panel, float *c) {
  __m256 acc[2 * NT];
#pragma GCC unroll 12
  for (int i = 0; i < 2 * NT; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < k_len; ++k) {
    const __m256 b0 = _mm256_load_ps(panel + k * kPanel), b1 = _mm256_load_ps(panel + k * kPanel + 8);
#pragma GCC unroll 6
    for (int t = 0; t < NT; ++t) {
      const __m256 a = _mm256_broadcast_ss(x + t * k_len + k);
      acc[2 * t] = _mm256_fmadd_ps(a, b0, acc[2 * t]);
      acc[2 * t + 1] = _mm256_fmadd_ps(a, b1, acc[2 * t + 1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < 2 * NT; ++i) _mm256_storeu_ps(c + i * 8, acc[i]);
}

using MicroTile = void (*)(const float *, int64_t, const float *, float *);
constexpr MicroTile kMicroTile[kTileTokens + 1] = {nullptr,       micro_tile<1>, micro_tile<2>, micro_tile<3>,
                                                   micro_tile<4>, micro_tile<5>, micro_tile<6>};

// Stores the 8x8 block r (row i = output i, 8 consecutive k) transposed: column k to dst + k * kPanel.
void store_transposed(const __m256 r[8], float *dst) {
  __m256 a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; ++j) {
      b[i + j] = _mm256_shuffle_ps(a[i + j], a[i + j + 2], _MM_SHUFFLE(1, 0, 1, 0));
      b[i + j + 2] = _mm256_shuffle_ps(a[i + j], a[i + j + 2], _MM_SHUFFLE(3, 2, 3, 2));
    }
  const int column[4] = {0, 2, 1, 3};  // b[c] holds column column[c] (low lane) and column[c] + 4 (high lane)
  for (int c = 0; c < 4; ++c) {
    _mm256_store_ps(dst + column[c] * kPanel, _mm256_permute2f128_ps(b[c], b[c + 4], 0x20));
    _mm256_store_ps(dst + (column[c] + 4) * kPanel, _mm256_permute2f128_ps(b[c], b[c + 4], 0x31));
  }
}

// Dequantized GEMM, y = x * w^T. Tokens go kTokenBlock at a time, so that their activations stay in L2 while
// every panel passes over them.
template <class W>
void panel_gemm(const float *x, int64_t tokens, int64_t n_out, float *y, const W &w) {
  const int64_t k_len = w.k_len, n_panels = (n_out + kPanel - 1) / kPanel, k8 = k_len / 8 * 8;
  for (int64_t b0 = 0; b0 < tokens; b0 += kTokenBlock) {
    const int64_t block = std::min(kTokenBlock, tokens - b0);
    const float *xb = x + b0 * k_len;
    float *yb = y + b0 * n_out;
    pool().run(n_panels, block * k_len * n_out, [&](int64_t p) {
      float *panel = scratch<float>(k_len * kPanel);
      const int64_t o0 = p * kPanel, valid = std::min<int64_t>(kPanel, n_out - o0);
      for (int j0 = 0; j0 < kPanel; j0 += 8)
        for (int64_t k = 0; k < k8; k += 8) {
          __m256 r[8];
          for (int i = 0; i < 8; ++i) r[i] = j0 + i < valid ? w.load8(o0 + j0 + i, k) : _mm256_setzero_ps();
          store_transposed(r, panel + k * kPanel + j0);
        }
      for (int64_t k = k8; k < k_len; ++k)
        for (int j = 0; j < kPanel; ++j) panel[k * kPanel + j] = j < valid ? w.value(o0 + j, k) : 0.f;
      if (g_isa == kIsaAvx512Vnni)
        return f32_panel_avx512(xb, block, k_len, panel, yb + o0, n_out, static_cast<int>(valid));
      alignas(32) float tile[kTileTokens * kPanel];
      for (int64_t t0 = 0; t0 < block; t0 += kTileTokens) {
        const int64_t nt = std::min<int64_t>(kTileTokens, block - t0);
        kMicroTile[nt](xb + t0 * k_len, k_len, panel, tile);
        for (int64_t t = 0; t < nt; ++t)
          std::memcpy(yb + (t0 + t) * n_out + o0, tile + t * kPanel, sizeof(float) * valid);
      }
    });
  }
}

// y (tokens x n_out) = x (tokens x K) * dequantized w^T
template <class W>
void weight_only(const float *x, int64_t tokens, int64_t n_out, float *y, const W &w) {
  if (tokens >= kPrefillMinTokens) return panel_gemm(x, tokens, n_out, y, w);
  gemv(x, tokens, n_out, y, w);
}

}  // namespace

void linear_f32(const float *x, int64_t tokens, int64_t k_len, const float *w, int64_t n_out, float *y) {
  weight_only(x, tokens, n_out, y, F32{w, k_len});
}

void linear_w8(const float *x, int64_t tokens, int64_t k_len, const int8_t *w, const float *scale, int64_t n_out,
               float *y) {
  weight_only(x, tokens, n_out, y, W8{w, scale, k_len});
}

void linear_w4(const float *x, int64_t tokens, int64_t k_len, const uint8_t *w, const float *scales, int64_t groups,
               int64_t n_out, float *y) {
  weight_only(x, tokens, n_out, y, W4{w, scales, k_len, groups, k_len / groups});
}

}  // namespace ptq

using namespace ptq;

// x f32 (..., K), w int8 (O, K), scale f32 (O) -> y f32 (..., O)
PTQ_AOT(PtqW8MatMul, 4) {
  linear_w8(a.ptr<float>(0), a.rows(0), a.dim(0, -1), a.ptr<int8_t>(1), a.ptr<float>(2), a.dim(1, 0), a.ptr<float>(3));
  return 0;
}

// x f32 (..., K), w uint8/int8 (O, K/2) two int4 per byte (low nibble = even k), scales f32 (O, G) -> y (..., O).
// The panel path needs K/G % 8 == 0 or G == 1 (no 8-wide load straddles two groups); Python checks it.
PTQ_AOT(PtqW4MatMul, 4) {
  linear_w4(a.ptr<float>(0), a.rows(0), a.dim(0, -1), a.ptr<uint8_t>(1), a.ptr<float>(2), a.dim(2, 1), a.dim(1, 0),
            a.ptr<float>(3));
  return 0;
}
