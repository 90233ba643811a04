// Portable SIMD helpers for the hot loops of the k-NN engines.
//
// DATAGAUGE_SIMD_CLONES gives a function an AVX2 clone picked at run time (GCC function
// multi-versioning), so the library is built for the baseline CPU and still uses wide SIMD
// where the CPU has it. The clone targets AVX2 without FMA on purpose: the compiler may
// contract a*b+c into an FMA where FMA exists, which would change the rounding of distances
// that must be bit-identical across engines. A clone's callees are built for the baseline CPU unless they are
// inlined into it, hence DATAGAUGE_INLINE on the helpers of cloned functions.
//
// Float8 is eight floats in one 32-byte vector (GCC/Clang vector extension): one AVX register
// in the AVX2 clone, two SSE registers otherwise. Arithmetic on it is element-wise IEEE
// arithmetic in the order written (no FMA in the clone to contract a*b+c into), so a lane
// computes bit for bit what the scalar loop computes.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DATAGAUGE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DATAGAUGE_SIMD_CLONES
#endif

#if defined(__GNUC__)
#define DATAGAUGE_INLINE __attribute__((always_inline)) inline
#else
#define DATAGAUGE_INLINE inline
#endif

#if defined(__GNUC__)
// The helpers pass vectors by value but are always inlined: no ABI boundary is crossed.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace datagauge::simd {

#if defined(__GNUC__)
typedef float Float8 __attribute__((vector_size(32)));
typedef std::int32_t Int8 __attribute__((vector_size(32)));

DATAGAUGE_INLINE Float8 load(const float* p) {
    Float8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
DATAGAUGE_INLINE Float8 splat(float a) { return Float8{} + a; }
DATAGAUGE_INLINE Float8 vmax(Float8 a, Float8 b) { return a > b ? a : b; }
DATAGAUGE_INLINE float hsum(Float8 v) {
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
// Whether any lane of a comparison result is set.
DATAGAUGE_INLINE bool any(Int8 m) {
    std::uint64_t w[4];
    std::memcpy(w, &m, sizeof w);
    return ((w[0] | w[1]) | (w[2] | w[3])) != 0;
}
#else
struct Float8 {
    float v[8];
    float operator[](int i) const { return v[i]; }
};
#endif

}  // namespace datagauge::simd
