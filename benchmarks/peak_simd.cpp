// Peak multiply-add throughput of one core for the instructions the k-NN kernels use.
//
// Twelve independent accumulator chains per instruction (enough to cover latency on two
// ports), timed over 2e7 iterations; prints instructions/s and multiply-adds/s per core.
// Built for the baseline CPU with per-function target attributes (no -m flags):
//
//     g++ -O2 -std=c++17 benchmarks/peak_simd.cpp -o /tmp/peak_simd && /tmp/peak_simd
//
// Run it on an otherwise idle core: on a loaded machine it measures the share it gets.
#include <immintrin.h>

#include <chrono>
#include <cstdio>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

constexpr long kIters = 20000000;

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void report(const char* name, double s, int macs_per_instr) {
    const double instr = 12.0 * kIters / s;
    std::printf("%-28s %6.2f G instr/s  %7.1f G multiply-adds/s\n", name, instr / 1e9, instr * macs_per_instr / 1e9);
}

// Twelve chains of `a = STEP(a)`; STEP is a macro of the calling function, so the intrinsics
// are inlined into a function that has their target attribute (a lambda would not).
#define DG_CHAINS(T, init)                                                                             \
    const auto t0 = std::chrono::steady_clock::now();                                                  \
    T a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init, a6 = init, a7 = init, a8 = init, \
      a9 = init, a10 = init, a11 = init;                                                               \
    for (long i = 0; i < kIters; ++i) {                                                                \
        a0 = STEP(a0); a1 = STEP(a1); a2 = STEP(a2); a3 = STEP(a3); a4 = STEP(a4); a5 = STEP(a5);      \
        a6 = STEP(a6); a7 = STEP(a7); a8 = STEP(a8); a9 = STEP(a9); a10 = STEP(a10); a11 = STEP(a11);  \
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3));                                \
    }                                                                                                  \
    T sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;                              \
    __asm__ volatile("" ::"v"(sum));                                                                   \
    return since(t0);

__attribute__((target("avx2,fma"))) double fp32_avx2() {
    const __m256 b = _mm256_set1_ps(1.0001f), c = _mm256_set1_ps(0.5f);
#define STEP(a) _mm256_fmadd_ps(a, b, c)
    DG_CHAINS(__m256, _mm256_set1_ps(1.0f))
#undef STEP
}

__attribute__((target("avx512f"))) double fp32_avx512() {
    const __m512 b = _mm512_set1_ps(1.0001f), c = _mm512_set1_ps(0.5f);
#define STEP(a) _mm512_fmadd_ps(a, b, c)
    DG_CHAINS(__m512, _mm512_set1_ps(1.0f))
#undef STEP
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) double int8_vnni() {
    const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(2);
#define STEP(a) _mm512_dpbusd_epi32(a, u, v)
    DG_CHAINS(__m512i, _mm512_set1_epi32(1))
#undef STEP
}

__attribute__((target("avx512f,avx512bf16"))) double bf16_dp() {
    const __m512bh h = (__m512bh)_mm512_set1_epi16(0x3f80);
#define STEP(a) _mm512_dpbf16_ps(a, h, h)
    DG_CHAINS(__m512, _mm512_set1_ps(1.0f))
#undef STEP
}

}  // namespace

int main() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        report("fp32 FMA ymm (vfmadd, AVX2)", fp32_avx2(), 8);
    if (__builtin_cpu_supports("avx512f")) report("fp32 FMA zmm (AVX-512)", fp32_avx512(), 16);
    if (__builtin_cpu_supports("avx512vnni")) report("int8 vpdpbusd zmm (VNNI)", int8_vnni(), 64);
    if (__builtin_cpu_supports("avx512bf16")) report("bf16 vdpbf16ps zmm", bf16_dp(), 32);
    return 0;
}
