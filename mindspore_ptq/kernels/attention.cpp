// Decode attention over a KV cache, int8 (C8) or float32: one query token per (batch row, head), over the valid
// prefix [0, length) of the cache only (positions from length on are never read).
//   k = (k_q - kzp) * ks, v = (v_q - vzp) * vs per channel (kv head, d); query head h reads kv head h / n_rep.
// The key scales fold into the query once per head: q' = q * ks * softmax_scale, c = q' . kzp, so
// score_j = q' . k_q[j] - c (int8 rows converted to float in registers, 4 rows per horizontal sum). The softmax
// takes off the max and exponentiates 8 scores at a time; the values accumulate acc = sum_j e_j v_q[j] with
// e_j = exp(score_j - max) in registers (up to 64 channels per pass over the rows), and with Z = sum_j e_j the
// context is (acc / Z - vzp) * vs. Items are the (batch row, head) pairs.
#include <cmath>

#include "ptq_kernels.h"

namespace ptq {
namespace {

constexpr int kChunksPerPass = 8;  // 8-float chunks of the value accumulator kept in registers (64 channels)

// (hsum(a), hsum(b), hsum(c), hsum(d))
inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// e^x for x <= 0 (shifted scores): Cephes' expf polynomial, relative error about 2e-7; below -87 it gives
// about 1e-38 (the scores there weigh nothing next to the max's 1).
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // x - n ln 2, in two parts
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  for (const float coeff : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(coeff));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i two_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(two_n));
}

// s[j] = q . k[j] - c for the n rows of k (d values each)
template <class T>
void scores(const float *q, int64_t d, const T *k, int64_t n, float c, float *s) {
  const int64_t d8 = d / 8 * 8;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const T *kj = k + j * d;
    __m256 acc[4];
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < d8; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      for (int r = 0; r < 4; ++r) acc[r] = _mm256_fmadd_ps(load8(kj + r * d + i), qv, acc[r]);
    }
    alignas(16) float tail[4] = {-c, -c, -c, -c};
    for (int r = 0; r < 4; ++r)
      for (int64_t i = d8; i < d; ++i) tail[r] += q[i] * static_cast<float>(kj[r * d + i]);
    _mm_storeu_ps(s + j, _mm_add_ps(hsum4(acc[0], acc[1], acc[2], acc[3]), _mm_load_ps(tail)));
  }
  for (; j < n; ++j) {
    const T *kj = k + j * d;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < d8; i += 8) acc = _mm256_fmadd_ps(load8(kj + i), _mm256_loadu_ps(q + i), acc);
    float total = hsum(acc) - c;
    for (int64_t i = d8; i < d; ++i) total += q[i] * static_cast<float>(kj[i]);
    s[j] = total;
  }
}

// s[j] = exp(s[j] - max s) for j < n; returns the sum
float softmax_numerator(float *s, int64_t n) {
  float top = s[0];
  for (int64_t j = 1; j < n; ++j) top = std::max(top, s[j]);
  const __m256 vtop = _mm256_set1_ps(top);
  __m256 sum = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), vtop));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  float total = hsum(sum);
  for (; j < n; ++j) total += (s[j] = std::exp(s[j] - top));
  return total;
}

// acc[0, 8C) = sum_j e[j] * v[j * d + (0 .. 8C)] over the n rows of v (row stride d); two sets of accumulators
// where C is small, so that the FMA latency does not bound the loop
template <int C, class T>
void accumulate(const T *v, int64_t d, const float *e, int64_t n, float *acc) {
  constexpr int kSets = C <= 4 ? 2 : 1;
  __m256 a[kSets][C];
  for (int u = 0; u < kSets; ++u)
    for (int c = 0; c < C; ++c) a[u][c] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + kSets <= n; j += kSets)
    for (int u = 0; u < kSets; ++u) {
      const __m256 w = _mm256_set1_ps(e[j + u]);
      const T *vj = v + (j + u) * d;
      for (int c = 0; c < C; ++c) a[u][c] = _mm256_fmadd_ps(load8(vj + 8 * c), w, a[u][c]);
    }
  for (; j < n; ++j) {
    const __m256 w = _mm256_set1_ps(e[j]);
    for (int c = 0; c < C; ++c) a[0][c] = _mm256_fmadd_ps(load8(v + j * d + 8 * c), w, a[0][c]);
  }
  for (int c = 0; c < C; ++c) {
    __m256 total = a[0][c];
    for (int u = 1; u < kSets; ++u) total = _mm256_add_ps(total, a[u][c]);
    _mm256_storeu_ps(acc + 8 * c, total);
  }
}

template <class T>
using Accumulate = void (*)(const T *, int64_t, const float *, int64_t, float *);
template <class T>
constexpr Accumulate<T> kAccumulate[kChunksPerPass + 1] = {nullptr,          accumulate<1, T>, accumulate<2, T>,
                                                           accumulate<3, T>, accumulate<4, T>, accumulate<5, T>,
                                                           accumulate<6, T>, accumulate<7, T>, accumulate<8, T>};

// context (d) = softmax over the n cache rows j of (query . k_j * softmax_scale), weighting v_j; scratch: 2 d + n
template <class T>
void attend_rows(const float *query, int64_t d, const KVHead<T> &key, const KVHead<T> &value, int64_t n,
                 float softmax_scale, float *context, float *scratch) {
  float *q = scratch, *acc = scratch + d, *s = scratch + 2 * d;
  float c = 0.f;
  for (int64_t i = 0; i < d; ++i) {
    q[i] = query[i] * key.scale[i] * softmax_scale;
    c += q[i] * key.zp[i];
  }
  scores(q, d, key.rows, n, c, s);
  const float inv_z = 1.0f / softmax_numerator(s, n);
  const int64_t d8 = d / 8 * 8;
  for (int64_t i0 = 0; i0 < d8; i0 += 8 * kChunksPerPass)
    kAccumulate<T>[std::min<int64_t>(kChunksPerPass, (d8 - i0) / 8)](value.rows + i0, d, s, n, acc + i0);
  for (int64_t i = d8; i < d; ++i) {
    float total = 0.f;
    for (int64_t j = 0; j < n; ++j) total += s[j] * static_cast<float>(value.rows[j * d + i]);
    acc[i] = total;
  }
  for (int64_t i = 0; i < d; ++i) context[i] = (acc[i] * inv_z - value.zp[i]) * value.scale[i];
}

}  // namespace

void attend(const float *query, int64_t d, const KVHead<int8_t> &key, const KVHead<int8_t> &value, int64_t n,
            float softmax_scale, float *context, float *scratch) {
  attend_rows(query, d, key, value, n, softmax_scale, context, scratch);
}

void attend(const float *query, int64_t d, const KVHead<float> &key, const KVHead<float> &value, int64_t n,
            float softmax_scale, float *context, float *scratch) {
  attend_rows(query, d, key, value, n, softmax_scale, context, scratch);
}

}  // namespace ptq

using namespace ptq;

// query f32 (B, H, 1, D), key_cache, value_cache int8 (B, Hkv, L, D), key_scale, key_zp, value_scale, value_zp
// f32 (1, Hkv, 1, D), lengths int32 (B) in [1, L], softmax_scale f32 (1) -> context f32 (B, H, 1, D)
// (kBadLength for a length outside [1, L]; Python checks the shapes)
PTQ_AOT(PtqKV8DecodeAttention, 10) {
  const int64_t batch = a.dim(0, 0), heads = a.dim(0, 1), d = a.dim(0, 3), kv_heads = a.dim(1, 1), seq = a.dim(1, 2);
  const int64_t n_rep = heads / kv_heads;
  const int32_t *lengths = a.ptr<int32_t>(7);
  int64_t work = 0;
  for (int64_t b = 0; b < batch; ++b) {
    if (lengths[b] < 1 || lengths[b] > seq) return kBadLength;
    work += 2 * lengths[b] * heads * d;
  }
  const float *query = a.ptr<float>(0), softmax_scale = *a.ptr<float>(8);
  const int8_t *keys = a.ptr<int8_t>(1), *values = a.ptr<int8_t>(2);
  const float *key_scale = a.ptr<float>(3), *key_zp = a.ptr<float>(4), *value_scale = a.ptr<float>(5),
              *value_zp = a.ptr<float>(6);
  float *context = a.ptr<float>(9);
  pool().run(batch * heads, work, [&](int64_t item) {
    const int64_t b = item / heads, g = item % heads / n_rep, offset = (b * kv_heads + g) * seq * d;
    attend(query + item * d, d, KVHead<int8_t>{keys + offset, key_scale + g * d, key_zp + g * d},
           KVHead<int8_t>{values + offset, value_scale + g * d, value_zp + g * d}, lengths[b], softmax_scale,
           context + item * d, scratch<float>(2 * d + seq));
  });
  return 0;
}
