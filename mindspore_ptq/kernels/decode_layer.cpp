// One decode step of a whole Llama decoder layer in one call (batch rows of one token each):
//   h = rmsnorm(x) ; q, k, v = rope(wq h), rope(wk h), wv h ; ctx = attention over the cache's valid prefix and
//   this step's own (stored) key/value ; h2 = x + wo ctx ; out = h2 + w2(silu(w1 n) * w3 n), n = rmsnorm(h2).
// It replaces the ~40 MindSpore ops of a layer's decode step, whose launch overhead (not the weight reads) is what
// bounds decode on CPU. Each linear runs the kernel of its own format (a code per linear, below). The step's
// key/value are stored in the cache in its own format (int8 for C8) at position length - 1, in place: the op is
// registered with a memory side effect, as MindSpore's Assign and ScatterNdUpdate are.
//
// Params: x f32 (B, hidden), cos, sin f32 (B, head_dim) at each row's position, lengths i32 (B) (the position is
// length - 1), meta i32 [heads, kv_heads, head_dim, cache kind, code of wq, wk, wv, wo, w1, w3, w2], scalars f32
// [rms_norm eps, softmax scale], then the operands: attention_norm weight, wq, wk, wv, the cache, wo, ffn_norm
// weight, w1, w3, w2; output: out f32 (B, hidden).
#include <cmath>

#include "ptq_kernels.h"

namespace ptq {
namespace {

// Linear codes and their operands (after the optional smooth_scale, the multiply of the input before A8):
//   F32: weight f32 (O, K) | W8: weight i8, scale | W4: packed u8 (O, K/2), scales (O, G) |
//   A8W8 dynamic: weight i8, w_scale | A8W8 static: input_scale (1), input_zero_point (1), weight i8, w_scale
enum Code { kF32, kW8, kW4, kA8W8Dynamic, kA8W8Static, kA8W8DynamicSmooth, kA8W8StaticSmooth, kCodes };
constexpr int kOperands[kCodes] = {1, 2, 2, 2, 4, 3, 5};
constexpr int kWeightOperand[kCodes] = {0, 0, 0, 0, 2, 1, 3};
enum CacheKind { kCacheF32, kCacheInt8, kCacheKinds };
constexpr int kCacheOperands[kCacheKinds] = {2, 6};
constexpr int kLinears = 7, kMetaLength = 4 + kLinears, kInputsBeforeOperands = 6, kOutputs = 1;

struct Linear {
  int code, first;  // first operand's param index

  int64_t n_out(const Args &a) const { return a.dim(first + kWeightOperand[code], 0); }
  int64_t k_len(const Args &a) const {
    const int64_t bytes = a.dim(first + kWeightOperand[code], 1);
    return code == kW4 ? 2 * bytes : bytes;
  }

  // y (tokens x n_out) = x (tokens x K) @ W^T; `smoothed` holds tokens x K floats
  int run(const Args &a, const float *x, int64_t tokens, float *y, float *smoothed) const {
    const int64_t k_len = this->k_len(a), n_out = this->n_out(a);
    int i = first;
    if (code == kA8W8DynamicSmooth || code == kA8W8StaticSmooth) {
      const float *smooth = a.ptr<float>(i++);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t k = 0; k < k_len; ++k) smoothed[t * k_len + k] = x[t * k_len + k] * smooth[k];
      x = smoothed;
    }
    switch (code) {
      case kF32: linear_f32(x, tokens, k_len, a.ptr<float>(i), n_out, y); return 0;
      case kW8: linear_w8(x, tokens, k_len, a.ptr<int8_t>(i), a.ptr<float>(i + 1), n_out, y); return 0;
      case kW4:
        linear_w4(x, tokens, k_len, a.ptr<uint8_t>(i), a.ptr<float>(i + 1), a.dim(i + 1, 1), n_out, y);
        return 0;
      case kA8W8Dynamic:
      case kA8W8DynamicSmooth:
        return linear_a8w8_dynamic(x, tokens, k_len, a.ptr<int8_t>(i), a.ptr<float>(i + 1), n_out, y);
      default:
        return linear_a8w8_static(x, tokens, k_len, *a.ptr<float>(i), *a.ptr<float>(i + 1), a.ptr<int8_t>(i + 2),
                                  a.ptr<float>(i + 3), n_out, y);
    }
  }
};

// out (rows x n) = x / sqrt(mean(x^2) + eps) * weight, per row
void rms_norm(const float *x, int64_t rows, int64_t n, const float *weight, float eps, float *out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * n;
    float sum = 0.f;
    for (int64_t i = 0; i < n; ++i) sum += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = xr[i] * inv * weight[i];
  }
}

// Rotate-half RoPE in place on `heads` heads of d values: x * cos + [-x2, x1] * sin
void rope(float *x, int64_t heads, int64_t d, const float *cos, const float *sin) {
  const int64_t half = d / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float *xh = x + h * d;
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = xh[i], x2 = xh[i + half];
      xh[i] = x1 * cos[i] - x2 * sin[i];
      xh[i + half] = x2 * cos[i + half] + x1 * sin[i + half];
    }
  }
}

struct Step {  // the shapes of one call
  int64_t batch, hidden, heads, kv_heads, d, seq, n_rep;
};

// Store each row's key/value (B, kv_heads, d) at position length - 1 of the caches (B, kv_heads, seq, d).
template <class T>
void store_rows(const Step &s, const T *key_rows, const T *value_rows, const int32_t *lengths, T *keys, T *values) {
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t g = 0; g < s.kv_heads; ++g) {
      const int64_t head = b * s.kv_heads + g, at = (head * s.seq + lengths[b] - 1) * s.d;
      std::memcpy(keys + at, key_rows + head * s.d, sizeof(T) * s.d);
      std::memcpy(values + at, value_rows + head * s.d, sizeof(T) * s.d);
    }
}

// Attend every (row, head) over positions [0, length) of the cache.
template <class T>
void attend_all(const Step &s, const float *q, const T *keys, const T *values, const float *key_scale,
                const float *key_zp, const float *value_scale, const float *value_zp, const int32_t *lengths,
                float softmax_scale, float *context) {
  int64_t work = 0;
  for (int64_t b = 0; b < s.batch; ++b) work += 2 * lengths[b] * s.heads * s.d;
  pool().run(s.batch * s.heads, work, [&](int64_t item) {
    const int64_t b = item / s.heads, g = item % s.heads / s.n_rep, head = b * s.kv_heads + g;
    const int64_t offset = head * s.seq * s.d;
    attend(q + item * s.d, s.d, KVHead<T>{keys + offset, key_scale + g * s.d, key_zp + g * s.d},
           KVHead<T>{values + offset, value_scale + g * s.d, value_zp + g * s.d}, lengths[b], softmax_scale,
           context + item * s.d, scratch<float>(2 * s.d + s.seq));
  });
}

// q = clip(round(x / scale) + zp, -128, 127) per channel (round half to even, as the portable cache encodes)
void encode_int8(const float *x, int64_t rows, int64_t channels, const float *scale, const float *zp, int8_t *q) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const float v = std::nearbyint(x[r * channels + c] / scale[c]) + zp[c];
      q[r * channels + c] = static_cast<int8_t>(std::min(127.f, std::max(-128.f, v)));
    }
}

// Buffers of one call, kept per thread (apart from `scratch`, which the kernels called here use).
float *layer_buffer(size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

unsigned char *layer_buffer_bytes(size_t n) {
  thread_local std::vector<unsigned char> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

int decode_layer(int nparam, const Args &a) {
  if (nparam < kInputsBeforeOperands + kOutputs || a.numel(4) != kMetaLength) return kBadParamCount;
  const int32_t *meta = a.ptr<int32_t>(4);
  const int cache_kind = meta[3];
  if (cache_kind < 0 || cache_kind >= kCacheKinds) return kBadParamCount;
  Linear linears[kLinears];  // wq, wk, wv, wo, w1, w3, w2
  int next = kInputsBeforeOperands + 1;  // after attention_norm
  int cache_first = 0, ffn_norm = 0;
  for (int l = 0; l < kLinears; ++l) {
    const int code = meta[4 + l];
    if (code < 0 || code >= kCodes) return kBadParamCount;
    linears[l] = Linear{code, next};
    next += kOperands[code];
    if (l == 2) cache_first = next, next += kCacheOperands[cache_kind];
    if (l == 3) ffn_norm = next++;
  }
  if (next + kOutputs != nparam) return kBadParamCount;

  const Step s{a.rows(0), a.dim(0, -1), meta[0], meta[1], meta[2], a.dim(cache_first, 2), meta[0] / meta[1]};
  const int64_t q_dim = s.heads * s.d, kv_dim = s.kv_heads * s.d, ffn = linears[4].n_out(a), b = s.batch;
  const int32_t *lengths = a.ptr<int32_t>(3);
  for (int64_t r = 0; r < b; ++r)
    if (lengths[r] < 1 || lengths[r] > s.seq) return kBadLength;
  const float eps = a.ptr<float>(5)[0], softmax_scale = a.ptr<float>(5)[1];
  const float *x = a.ptr<float>(0), *cos = a.ptr<float>(1), *sin = a.ptr<float>(2);
  float *out = a.ptr<float>(next);

  const int64_t widest = std::max({s.hidden, q_dim, ffn});
  float *normed = layer_buffer(b * (3 * s.hidden + 2 * q_dim + 2 * kv_dim + 2 * ffn + widest));
  float *q = normed + b * s.hidden, *k = q + b * q_dim, *v = k + b * kv_dim, *context = v + b * kv_dim;
  float *h2 = context + b * q_dim, *gate = h2 + b * s.hidden, *up = gate + b * ffn, *down = up + b * ffn;
  float *smoothed = down + b * s.hidden;
  int err = 0;
  rms_norm(x, b, s.hidden, a.ptr<float>(kInputsBeforeOperands), eps, normed);
  err |= linears[0].run(a, normed, b, q, smoothed);
  err |= linears[1].run(a, normed, b, k, smoothed);
  err |= linears[2].run(a, normed, b, v, smoothed);
  for (int64_t r = 0; r < b; ++r) {
    rope(q + r * q_dim, s.heads, s.d, cos + r * s.d, sin + r * s.d);
    rope(k + r * kv_dim, s.kv_heads, s.d, cos + r * s.d, sin + r * s.d);
  }
  const int c = cache_first;
  if (cache_kind == kCacheInt8) {
    int8_t *keys = a.ptr<int8_t>(c), *values = a.ptr<int8_t>(c + 1);
    int8_t *key_rows = reinterpret_cast<int8_t *>(layer_buffer_bytes(2 * b * kv_dim)), *value_rows = key_rows + b * kv_dim;
    encode_int8(k, b, kv_dim, a.ptr<float>(c + 2), a.ptr<float>(c + 3), key_rows);
    encode_int8(v, b, kv_dim, a.ptr<float>(c + 4), a.ptr<float>(c + 5), value_rows);
    store_rows(s, key_rows, value_rows, lengths, keys, values);
    attend_all(s, q, keys, values, a.ptr<float>(c + 2), a.ptr<float>(c + 3), a.ptr<float>(c + 4),
               a.ptr<float>(c + 5), lengths, softmax_scale, context);
  } else {
    float *keys = a.ptr<float>(c), *values = a.ptr<float>(c + 1);
    store_rows(s, k, v, lengths, keys, values);
    const std::vector<float> ones(kv_dim, 1.f), zeros(kv_dim, 0.f);
    attend_all(s, q, keys, values, ones.data(), zeros.data(), ones.data(), zeros.data(), lengths, softmax_scale,
               context);
  }
  err |= linears[3].run(a, context, b, h2, smoothed);
  for (int64_t i = 0; i < b * s.hidden; ++i) h2[i] += x[i];
  rms_norm(h2, b, s.hidden, a.ptr<float>(ffn_norm), eps, normed);
  err |= linears[4].run(a, normed, b, gate, smoothed);
  err |= linears[5].run(a, normed, b, up, smoothed);
  for (int64_t i = 0; i < b * ffn; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  err |= linears[6].run(a, gate, b, down, smoothed);
  for (int64_t i = 0; i < b * s.hidden; ++i) out[i] = h2[i] + down[i];
  return err ? kBadZeroPoint : 0;
}

}  // namespace
}  // namespace ptq

using namespace ptq;

extern "C" int PtqDecodeLayer(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  ++g_calls;
  return decode_layer(nparam, Args{params, ndims, shapes});
}
