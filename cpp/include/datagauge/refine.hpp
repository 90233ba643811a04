// Exact re-ranking of candidate neighbours.
//
// FAISS returns squared distances from |x|^2 + |y|^2 - 2xy, which loses precision to
// cancellation (a point's distance to itself can come back non-zero). Given candidate indices
// per query, recompute exact squared distances from coordinate differences, drop the excluded
// index (the query itself) and invalid candidates, and keep the k best by (distance, index).
#pragma once

#include <cstdint>
#include <stdexcept>

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

// Rows [begin, end) of queries (m, d); candidates (m, c) index rows of data (n, d).
inline void refine_rows(const float* data, std::int64_t n, std::int64_t d, const float* queries,
                        const std::int64_t* candidates, std::int64_t c, const std::int64_t* exclude,
                        std::int64_t begin, std::int64_t end, int k, float* dist_out,
                        std::int64_t* idx_out) {
    TopK top(k);
    for (std::int64_t q = begin; q < end; ++q) {
        top.reset();
        const std::int64_t ex = exclude ? exclude[q] : kMissingIndex;
        const std::int64_t* cand = candidates + q * c;
        for (std::int64_t j = 0; j < c; ++j) {
            const std::int64_t i = cand[j];
            if (i < 0 || i == ex) continue;
            if (i >= n) throw std::out_of_range("candidate index out of range of the data");
            top.push(squared_distance(queries + q * d, data + i * d, d), i);
        }
        top.write(dist_out + q * k, idx_out + q * k);
    }
}

}  // namespace datagauge
