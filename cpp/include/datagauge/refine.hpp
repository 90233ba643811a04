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

// The k best of one query's candidates (valid, not excluded) by exact distance into `top`.
// Candidates must lie in [0, n) or be negative (checked by the caller: no exception may
// leave a function with target clones).
DATAGAUGE_SIMD_CLONES inline void refine_one(const float* data, std::int64_t n, std::int64_t d, const float* query,
                                             const std::int64_t* cand, std::int64_t c, std::int64_t ex, TopK& top) {
    const float* rows[8];
    std::int64_t ids[8];
    float dist[8];
    int m = 0;
    for (std::int64_t j = 0; j < c; ++j) {
        const std::int64_t i = cand[j];
        if (i < 0 || i == ex || i >= n) continue;
        rows[m] = data + i * d;
        ids[m++] = i;
        if (m == 8) {
            squared_distance8(query, rows, d, dist);
            for (int r = 0; r < 8; ++r) top.push(dist[r], ids[r]);
            m = 0;
        }
    }
    for (int r = 0; r < m; ++r) top.push(squared_distance(query, rows[r], d), ids[r]);
}

// Rows [begin, end) of queries (m, d); candidates (m, c) index rows of data (n, d).
inline void refine_rows(const float* data, std::int64_t n, std::int64_t d, const float* queries,
                        const std::int64_t* candidates, std::int64_t c, const std::int64_t* exclude,
                        std::int64_t begin, std::int64_t end, int k, float* dist_out,
                        std::int64_t* idx_out) {
    TopK top(k);
    for (std::int64_t q = begin; q < end; ++q) {
        top.reset();
        const std::int64_t ex = exclude ? exclude[q] : kMissingIndex;
        for (std::int64_t j = 0; j < c; ++j)
            if (candidates[q * c + j] >= n) throw std::out_of_range("candidate index out of range of the data");
        refine_one(data, n, d, queries + q * d, candidates + q * c, c, ex, top);
        top.write(dist_out + q * k, idx_out + q * k);
    }
}

}  // namespace datagauge
