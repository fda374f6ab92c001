// Shared pieces of the quantized-linear CPU kernels: run-time settings, the thread pool, AVX2 helpers.
//
// The library is built with -mavx2 -mfma; AVX-512 code is confined to functions compiled for that target and
// chosen at run time. Tensors are row-major; "tokens" are all dims of an activation but the last.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

// AOT entry point `name` taking `count` params (inputs then outputs): counts the call, then returns what the body
// returns on `const ptq::Args &a`: 0 or an error code (MindSpore raises RuntimeError for any but 0).
#define PTQ_AOT(name, count)                                                                                   \
  static int name##_body(const ptq::Args &a);                                                                  \
  extern "C" int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) { \
    if (nparam != (count)) return ptq::kBadParamCount;                                                         \
    ++ptq::g_calls;                                                                                            \
    return name##_body(ptq::Args{params, ndims, shapes});                                                      \
  }                                                                                                            \
  static int name##_body(const ptq::Args &a)

namespace ptq {

constexpr int kIsaAvx2 = 0;
constexpr int kIsaAvx512Vnni = 1;
constexpr int64_t kMinWorkPerThread = 1 << 15;  // multiply-adds below which another thread does not pay off
constexpr int64_t kPrefillMinTokens = 16;        // from this many tokens on, linears run a panel GEMM
constexpr int kPanel = 16;                       // output columns of one GEMM panel
constexpr int kBadParamCount = 1, kBadZeroPoint = 2, kBadLength = 3;  // AOT error codes

extern std::atomic<int> g_threads;  // threads per kernel call, the caller included (ptq_set_threads)
extern std::atomic<int> g_isa;      // kIsaAvx2 or kIsaAvx512Vnni (ptq_set_isa)
extern std::atomic<long long> g_calls;

// The params of an AOT call: param i is a tensor of ndims[i] dims.
struct Args {
  void **params;
  int *ndims;
  int64_t **shapes;
  template <class T>
  T *ptr(int i) const { return static_cast<T *>(params[i]); }
  int64_t dim(int i, int d) const { return shapes[i][d < 0 ? ndims[i] + d : d]; }  // d < 0 counts from the end
  int64_t rows(int i) const {  // the product of all dims but the last (tokens)
    int64_t rows = 1;
    for (int d = 0; d + 1 < ndims[i]; ++d) rows *= shapes[i][d];
    return rows;
  }
  int64_t numel(int i) const { return rows(i) * (ndims[i] ? dim(i, -1) : 1); }
};

// Fork-join pool in which the calling thread works too and waits only for items already claimed, never for a
// worker to wake up: a descheduled worker just does less. (OpenMP's barrier waits for every thread; next to
// MindSpore's own threads on a busy machine that cost 30x.) Workers sleep between jobs; a call that finds the
// pool busy (MindSpore may launch kernels from several threads) runs on its own thread.
class Pool {
 public:
  // Calls f(i) for i in [0, n) on up to g_threads threads; `work` (multiply-adds) sets how many are worth it.
  template <class F>
  void run(int64_t n, int64_t work, F &&f) {
    const int64_t useful = std::max<int64_t>(1, work / kMinWorkPerThread);
    const int threads = static_cast<int>(std::min<int64_t>({g_threads.load(), n, useful}));
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (threads <= 1 || !busy) {
      for (int64_t i = 0; i < n; ++i) f(i);
      return;
    }
    const Call call = [](void *ctx, int64_t i) { (*static_cast<std::remove_reference_t<F> *>(ctx))(i); };
    void *const ctx = static_cast<void *>(&f);
    uint32_t gen;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (; spawned_ < threads - 1; ++spawned_) spawn();
      call_ = call, ctx_ = ctx, n_ = n;
      gen = ++gen_;
      wanted_ = threads - 1;
      done_.store(0, std::memory_order_relaxed);
      ticket_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
    }
    cv_.notify_all();
    drain(gen, call, ctx, n);
    for (int spins = 0; done_.load(std::memory_order_acquire) < n; ++spins) spins < 4096 ? _mm_pause() : yield();
    std::lock_guard<std::mutex> lock(mutex_);
    wanted_ = 0;  // a worker waking up now has nothing to join
  }

 private:
  using Call = void (*)(void *, int64_t);
  void spawn();
  static void yield();
  // Runs items of job `gen` until none is left; a claim is a CAS on (gen, next item), so a late worker can never
  // take an item of a later job.
  void drain(uint32_t gen, Call call, void *ctx, int64_t n) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    while ((t >> 32) == gen && static_cast<int64_t>(t & 0xffffffffu) < n) {
      if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) {
        call(ctx, static_cast<int64_t>(t & 0xffffffffu));
        done_.fetch_add(1, std::memory_order_acq_rel);
        t = ticket_.load(std::memory_order_acquire);
      }
    }
  }
  friend void worker_loop(Pool *pool);

  std::mutex run_mutex_, mutex_;
  std::condition_variable cv_;
  int spawned_ = 0, wanted_ = 0;
  uint32_t gen_ = 0;
  Call call_ = nullptr;
  void *ctx_ = nullptr;
  int64_t n_ = 0;
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> done_{0};
};

Pool &pool();

// A per-thread buffer of n elements, 64-byte aligned, reused between calls.
template <class T>
T *scratch(size_t n) {
  thread_local std::vector<unsigned char> buffer;
  buffer.resize(n * sizeof(T) + 64);
  return reinterpret_cast<T *>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63});
}

inline void prefetch(const void *p, int64_t bytes) {
  for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch(static_cast<const char *>(p) + b, _MM_HINT_T0);
}

// ---- the linears, y (tokens x n_out) = x (tokens x K) @ W^T, for each weight format (weight_only.cpp, a8w8.cpp);
// the A8W8 ones return 0 or an AOT error code ----
void linear_f32(const float *x, int64_t tokens, int64_t k_len, const float *w, int64_t n_out, float *y);
void linear_w8(const float *x, int64_t tokens, int64_t k_len, const int8_t *w, const float *scale, int64_t n_out,
               float *y);
void linear_w4(const float *x, int64_t tokens, int64_t k_len, const uint8_t *w, const float *scales, int64_t groups,
               int64_t n_out, float *y);
int linear_a8w8_dynamic(const float *x, int64_t tokens, int64_t k_len, const int8_t *w, const float *w_scale,
                        int64_t n_out, float *y);
int linear_a8w8_static(const float *x, int64_t tokens, int64_t k_len, float scale, float zp, const int8_t *w,
                       const float *w_scale, int64_t n_out, float *y);

// ---- attention.cpp: one query row (d) against the first n rows of one kv head of the cache (d values each,
// per-channel scale and zero point; 1 and 0 for a float cache); scratch holds 2 d + n floats ----
template <class T>
struct KVHead {
  const T *rows;
  const float *scale, *zp;
};
void attend(const float *query, int64_t d, const KVHead<int8_t> &key, const KVHead<int8_t> &value, int64_t n,
            float softmax_scale, float *context, float *scratch);
void attend(const float *query, int64_t d, const KVHead<float> &key, const KVHead<float> &value, int64_t n,
            float softmax_scale, float *context, float *scratch);

// ---- avx512.cpp: called only when g_isa == kIsaAvx512Vnni ----
// y (tokens x valid, row stride ldy) = x (tokens x K) * panel (K x kPanel, 64-byte aligned)
void f32_panel_avx512(const float *x, int64_t tokens, int64_t k_len, const float *panel, float *y, int64_t ldy,
                      int valid);
// For nr <= 4 weight rows w[r] of K bytes: acc[t * 4 + r] = sum_k (x[t, k] - zp) * w[r, k], zp in [-128, 127].
void dot_block_vnni(const int8_t *x, int64_t tokens, int64_t k_len, const int8_t *w, int nr, int32_t zp, int32_t *acc);
struct A8W8Out {  // y[t, o] = float(sum_k (x[t, k] - zp) * w[o, k]) * x_scale[t] * w_scale[o]
  const float *x_scale;
  int32_t zp;
  const float *w_scale;
  float *y;
  int64_t n_out;
};
// Outputs o0 .. o0 + kPanel of all tokens (the row sums taken from the panel); u = x ^ 0x80 with rows padded to a
// multiple of 4 bytes; panel: scratch of kPanel * ceil(K / 4) int32, 64-byte aligned.
void a8w8_panel_vnni(const uint8_t *u, int64_t tokens, const int8_t *w, int64_t k_len, int64_t o0, const A8W8Out &out,
                     int32_t *panel);

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(_mm_hadd_epi32(s, s));
}

// 8 int8 -> 8 float
inline __m256 load_i8(const int8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p))));
}

// 8 int8 or float values -> 8 float (for code templated over both)
inline __m256 load8(const int8_t *p) { return load_i8(p); }
inline __m256 load8(const float *p) { return _mm256_loadu_ps(p); }

// 8 signed nibbles from 4 bytes, in input order (low nibble first) -> 8 float
inline __m256 load_i4(const uint8_t *p) {
  int32_t word;
  std::memcpy(&word, p, 4);
  const __m256i up = _mm256_sllv_epi32(_mm256_set1_epi32(word), _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0));
  return _mm256_cvtepi32_ps(_mm256_srai_epi32(up, 28));
}

// The signed int4 at input index i of a packed row.
inline int nibble(const uint8_t *row, int64_t i) {
  const int8_t b = static_cast<int8_t>(row[i >> 1]);
  return (i & 1) ? (b >> 4) : (static_cast<int8_t>(b << 4) >> 4);
}

}  // namespace ptq
