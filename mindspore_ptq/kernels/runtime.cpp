// Run-time settings read by every kernel call, set from Python through ctypes, and the thread pool's workers.
#include <thread>

#include "ptq_kernels.h"

namespace ptq {

std::atomic<int> g_threads{1};
std::atomic<int> g_isa{kIsaAvx2};
std::atomic<long long> g_calls{0};

Pool &pool() {
  static Pool *instance = new Pool();  // never destroyed: its detached workers outlive static destruction
  return *instance;
}

void worker_loop(Pool *pool) {
  uint32_t seen = 0;
  std::unique_lock<std::mutex> lock(pool->mutex_);
  for (;;) {
    pool->cv_.wait(lock, [&] { return pool->gen_ != seen && pool->wanted_ > 0; });
    seen = pool->gen_;
    --pool->wanted_;
    const Pool::Call call = pool->call_;
    void *ctx = pool->ctx_;
    const int64_t n = pool->n_;
    lock.unlock();
    pool->drain(seen, call, ctx, n);
    lock.lock();
  }
}

void Pool::spawn() { std::thread(worker_loop, this).detach(); }

void Pool::yield() { std::this_thread::yield(); }

namespace {
bool cpu_has_vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}
}  // namespace

}  // namespace ptq

using namespace ptq;

extern "C" {
void ptq_set_threads(int n) { g_threads = std::max(1, n); }
int ptq_get_threads() { return g_threads; }
int ptq_cpu_has_vnni() { return cpu_has_vnni() ? 1 : 0; }
// 0 = AVX2, 1 = AVX-512 (F/BW/VNNI: GEMM tiles and A8W8 dot products; AVX2 where the CPU lacks it);
// returns the instruction set now in use.
int ptq_set_isa(int isa) {
  g_isa = (isa == kIsaAvx512Vnni && cpu_has_vnni()) ? kIsaAvx512Vnni : kIsaAvx2;
  return g_isa;
}
int ptq_get_isa() { return g_isa; }
long long ptq_calls() { return g_calls.load(); }
long long ptq_prefill_min_tokens() { return kPrefillMinTokens; }
}
