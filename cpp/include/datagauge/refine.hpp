// Exact re-ranking of candidate neighbours.
//
// FAISS returns squared distances from |x|^2 + |y|^2 - 2xy, which loses precision to
// cancellation (a point's distance to itself can come back non-zero). Given candidate indices
// per query, recompute exact squared distances from coordinate differences, drop the excluded
// index (the query itself) and invalid candidates, and keep the k best by (distance, index).
#pragma once

#include <cstdint>
#include <stdexcept>

#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

namespace datagauge {

inline float squared_distance(const float* a, const float* b, std::int64_t d) {
    float s = 0.0f;
    for (std::int64_t j = 0; j < d; ++j) {
        const float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

// squared_distance(q, rows[r], d) for r < 8, lane by lane: each lane adds the rounded squares
// of its rounded differences in feature order, exactly as squared_distance does (no FMA in
// either clone), so the results are bit-identical; eight independent sums instead of one
// chain of dependent additions.
DATAGAUGE_INLINE void squared_distance8(const float* q, const float* const* rows, std::int64_t d, float* out) {
#if defined(__GNUC__)
    simd::Float8 s = {};
    for (std::int64_t j = 0; j < d; ++j) {
        const simd::Float8 b = {rows[0][j], rows[1][j], rows[2][j], rows[3][j],
                                rows[4][j], rows[5][j], rows[6][j], rows[7][j]};
        const simd::Float8 t = simd::splat(q[j]) - b;
        s = s + t * t;
    }
    for (int r = 0; r < 8; ++r) out[r] = s[r];
#else
    for (int r = 0; r < 8; ++r) out[r] = squared_distance(q, rows[r], d);
#endif
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define DATAGAUGE_REFINE_AVX512 1
// GCC 12 reports its own intrinsics' deliberately undefined vectors (_mm512_undefined_ps) as
// possibly uninitialised once they are inlined here: not a defect of this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Transpose the 16 x 16 floats in r (r[i] lane j -> r[j] lane i).
__attribute__((target("avx512f"), always_inline)) inline void transpose16(__m512* r) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; ++i) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; ++i) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

// squared_distance(q, rows[r], d) for r < 16, lane by lane and bit-identical to it: 16 x 16
// blocks of the rows are transposed in registers, so lane r adds the rounded squares of its
// row's rounded differences in feature order (separate sub, mul and add: no FMA). Sixteen
// independent sums and whole-vector loads, where squared_distance8 assembles each vector
// from eight scalar loads: 3-5x faster on wide rows.
__attribute__((target("avx512f"))) inline void squared_distance16_avx512(const float* q, const float* const* rows,
                                                                        std::int64_t d, float* out) {
    // The explicitly rounded forms: GCC contracts a plain mul + add into an FMA (C++ builds
    // default to -ffp-contract=fast), which would change the rounding; these it leaves alone.
    constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    __m512 s = _mm512_setzero_ps();
    std::int64_t j = 0;
    for (; j + 16 <= d; j += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i] + j);
        transpose16(r);
        for (int f = 0; f < 16; ++f) {
            const __m512 t = _mm512_sub_round_ps(_mm512_set1_ps(q[j + f]), r[f], kNearest);
            s = _mm512_add_round_ps(s, _mm512_mul_round_ps(t, t, kNearest), kNearest);
        }
    }
    alignas(64) float col[16];
    for (; j < d; ++j) {
        for (int i = 0; i < 16; ++i) col[i] = rows[i][j];
        const __m512 t = _mm512_sub_round_ps(_mm512_set1_ps(q[j]), _mm512_load_ps(col), kNearest);
        s = _mm512_add_round_ps(s, _mm512_mul_round_ps(t, t, kNearest), kNearest);
    }
    _mm512_storeu_ps(out, s);
}
#pragma GCC diagnostic pop
#else
#define DATAGAUGE_REFINE_AVX512 0
#endif

// Whether the exact re-ranking uses the AVX-512 16-row kernel (simd::level(); false where an
// invalid DATAGAUGE_SIMD makes level() throw: the callers' own checks report that).
inline bool refine_avx512() noexcept {
#if DATAGAUGE_REFINE_AVX512
    try {
        return simd::level() == simd::Level::avx512;
    } catch (...) {
        return false;
    }
#else
    return false;
#endif
}

// The k best of one query's candidates (valid, not excluded) by exact distance into `top`.
// Candidates must lie in [0, n) or be negative (checked by the caller: no exception may
// leave a function with target clones).
// `wide`: 16 candidates at a time through squared_distance16_avx512 (refine_avx512()).
DATAGAUGE_SIMD_CLONES inline void refine_one(const float* data, std::int64_t n, std::int64_t d, const float* query,
                                             const std::int64_t* cand, std::int64_t c, std::int64_t ex, TopK& top,
                                             bool wide = false) {
    const float* rows[16];
    std::int64_t ids[16];
    float dist[16];
    int m = 0;
#if DATAGAUGE_REFINE_AVX512
    const int group = wide ? 16 : 8;
#else
    (void)wide;
    const int group = 8;
#endif
    for (std::int64_t j = 0; j < c; ++j) {
        const std::int64_t i = cand[j];
        if (i < 0 || i == ex || i >= n) continue;
        rows[m] = data + i * d;
        ids[m++] = i;
        if (m == group) {
#if DATAGAUGE_REFINE_AVX512
            if (group == 16)
                squared_distance16_avx512(query, rows, d, dist);
            else
#endif
                squared_distance8(query, rows, d, dist);
            for (int r = 0; r < m; ++r) top.push(dist[r], ids[r]);
            m = 0;
        }
    }
    int r = 0;
    if (m >= 8) {
        squared_distance8(query, rows, d, dist);
        for (; r < 8; ++r) top.push(dist[r], ids[r]);
    }
    for (; r < m; ++r) top.push(squared_distance(query, rows[r], d), ids[r]);
}

// Rows [begin, end) of queries (m, d); candidates (m, c) index rows of data (n, d).
inline void refine_rows(const float* data, std::int64_t n, std::int64_t d, const float* queries,
                        const std::int64_t* candidates, std::int64_t c, const std::int64_t* exclude,
                        std::int64_t begin, std::int64_t end, int k, float* dist_out,
                        std::int64_t* idx_out) {
    TopK top(k);
    const bool wide = refine_avx512();
    for (std::int64_t q = begin; q < end; ++q) {
        top.reset();
        const std::int64_t ex = exclude ? exclude[q] : kMissingIndex;
        for (std::int64_t j = 0; j < c; ++j)
            if (candidates[q * c + j] >= n) throw std::out_of_range("candidate index out of range of the data");
        refine_one(data, n, d, queries + q * d, candidates + q * c, c, ex, top, wide);
        top.write(dist_out + q * k, idx_out + q * k);
    }
}

}  // namespace datagauge
