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

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace datagauge::simd {

// Widest instruction set the k-NN kernels may use, chosen at run time (never at build time):
// "avx512" (AVX-512 F/BW/VL with VNNI: the int8 screening kernel), "avx2" (AVX2 + FMA: the
// float32 tiles), "scalar" (portable loops). The environment variable DATAGAUGE_SIMD
// (auto|avx512|avx2|scalar, read once, on first use) caps it; "auto" or unset is the best the
// CPU has. A cap above what the CPU has gives what the CPU has.
enum class Level { scalar = 0, avx2 = 1, avx512 = 2 };

inline Level cpu_level() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return Level::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Level::avx2;
#endif
    return Level::scalar;
}

inline Level requested_level() {
    const char* env = std::getenv("DATAGAUGE_SIMD");
    const std::string v = env ? env : "";
    if (v.empty() || v == "auto") return Level::avx512;
    if (v == "avx512") return Level::avx512;
    if (v == "avx2") return Level::avx2;
    if (v == "scalar") return Level::scalar;
    throw std::invalid_argument("DATAGAUGE_SIMD must be 'auto', 'avx512', 'avx2' or 'scalar', got '" + v +
                                "'; unset it or set one of these");
}

// The level in effect: min(CPU, DATAGAUGE_SIMD), computed once (an invalid DATAGAUGE_SIMD
// throws std::invalid_argument on every call until the process restarts with a valid value).
inline Level level() {
    static const Level chosen = [] {
        const Level cpu = cpu_level(), req = requested_level();
        return static_cast<int>(req) < static_cast<int>(cpu) ? req : cpu;
    }();
    return chosen;
}

inline const char* level_name(Level l) {
    switch (l) {
        case Level::avx512: return "avx512";
        case Level::avx2: return "avx2";
        default: return "scalar";
    }
}

}  // namespace datagauge::simd
