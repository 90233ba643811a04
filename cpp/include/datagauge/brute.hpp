// Exact self k-NN by brute force, for data where no tree prunes (high intrinsic dimension).
//
// Every pair of points is visited once. The points are split into blocks; a pair of blocks
// (I, J) is a tile of inner products computed like a GEMM (register micro-tiles of 6 x 16,
// FMA, packed panels) and each approximate squared distance |a|^2 + |b|^2 - 2 a.b updates the
// candidate lists of both its row point and its column point, so the work is half of a full
// distance matrix. Only a tile entry below one of the two current list bounds leaves the
// registers (one vector compare per 8 entries); everything else is discarded on the spot,
// never written to memory.
//
// Block pairs are scheduled as a round-robin tournament: in a round every block occurs in at
// most one pair, so threads working on different pairs of a round never touch the same list.
//
// The candidate lists (kc > k entries, approximate distances) are then re-ranked with exact
// distances (refine.hpp), and each point's answer is verified: a point outside its candidate
// list has an approximate distance at least the list's bound, hence a true distance at least
// that bound minus a rounding-error bound. Where that does not clear the exact k-th distance
// (exact ties, many duplicate points, overflow) the point is searched again exactly (over all
// points, or through a kd-tree when there are many such points). The result is the exact
// k-NN with exact distances, as the other engines.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "datagauge/parallel.hpp"
#include "datagauge/refine.hpp"
#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define DATAGAUGE_BRUTE_AVX2 1
#else
#define DATAGAUGE_BRUTE_AVX2 0
#endif

namespace datagauge {

// Rounds of a round-robin tournament over n_blocks blocks: round 0 is every diagonal pair
// (I, I), rounds 1.. pair distinct blocks so that no block occurs twice in a round.
inline std::int64_t tournament_rounds(std::int64_t n_blocks) {
    return 1 + (n_blocks % 2 == 0 ? n_blocks - 1 : n_blocks);
}

inline std::vector<std::pair<std::int64_t, std::int64_t>> tournament_pairs(std::int64_t n_blocks,
                                                                           std::int64_t round) {
    if (round < 0 || round >= tournament_rounds(n_blocks)) throw std::invalid_argument("round out of range");
    std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
    if (round == 0) {
        for (std::int64_t b = 0; b < n_blocks; ++b) pairs.emplace_back(b, b);
        return pairs;
    }
    // Circle method over m (even) slots; slot m-1 is fixed, a slot >= n_blocks is a bye.
    const std::int64_t m = n_blocks + (n_blocks % 2), r = round - 1;
    pairs.emplace_back(m - 1, r);
    for (std::int64_t i = 1; i < m / 2; ++i) pairs.emplace_back((r + i) % (m - 1), (r - i + (m - 1)) % (m - 1));
    pairs.erase(std::remove_if(pairs.begin(), pairs.end(),
                               [&](const auto& p) { return p.first >= n_blocks || p.second >= n_blocks; }),
                pairs.end());
    return pairs;
}

// Row i of x (n, d) searched over all other rows: sorted by (distance, index), the lowest
// indices on ties; written to row i of the (n, k) outputs.
inline void exact_self_row(const float* x, std::int64_t n, std::int64_t d, std::int64_t i, int k, float* dist_out,
                           std::int64_t* idx_out) {
    TopK top(k);
    const float* q = x + i * d;
    for (std::int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const float dist = squared_distance(q, x + j * d, d);
        if (dist <= top.bound()) top.push(dist, j);
    }
    top.write(dist_out + i * k, idx_out + i * k);
}

class BruteSelfKnn {
   public:
    static constexpr std::int64_t kMR = 6, kNR = 16;  // micro-tile: rows x columns
    static constexpr std::int64_t kAlign = 48;         // blocks are multiples of lcm(kMR, kNR)

    // x: (n, d) float32 row-major. kc: candidates kept per point (> k). block: rows per block
    // (rounded up to a multiple of 48).
    BruteSelfKnn(const float* x, std::int64_t n, std::int64_t d, int kc, std::int64_t block)
        : x_(x), n_(n), d_(d), kc_(kc) {
        if (n < 2) throw std::invalid_argument("brute-force k-NN needs at least two points");
        if (d < 1) throw std::invalid_argument("brute-force k-NN needs at least one feature");
        if (kc < 1) throw std::invalid_argument("candidates per point must be >= 1");
        if (block < 1) throw std::invalid_argument("block must be >= 1");
        block_ = (std::min(block, n) + kAlign - 1) / kAlign * kAlign;
        n_blocks_ = (n + block_ - 1) / block_;
        n_pad_ = n_blocks_ * block_;
        pack();
        cand_d_.assign(static_cast<std::size_t>(n_ * kc_), kMissingDistance);
        cand_i_.assign(static_cast<std::size_t>(n_ * kc_), kMissingIndex);
        count_.assign(static_cast<std::size_t>(n_), 0);
        bound_.assign(static_cast<std::size_t>(n_pad_), kMissingDistance);
#if DATAGAUGE_BRUTE_AVX2
        avx2_ = static_cast<int>(simd::level()) >= static_cast<int>(simd::Level::avx2);
#endif
    }

    std::int64_t n_blocks() const { return n_blocks_; }
    // Rounds of the schedule: round 0 is every diagonal block (I, I); rounds 1.. pair blocks.
    std::int64_t n_rounds() const { return tournament_rounds(n_blocks_); }
    // Which micro-kernel runs the tiles: "fp32-avx2" or "fp32-scalar".
    const char* kernel() const { return avx2_ ? "fp32-avx2" : "fp32-scalar"; }

    // Run one round of the schedule on n_threads threads.
    void run_round(std::int64_t round, int n_threads) {
        const auto pairs = tournament_pairs(n_blocks_, round);
        parallel_for(pairs.size(), n_threads, 1, [&](std::size_t b, std::size_t e) {
            std::vector<float> tile(static_cast<std::size_t>(kMR * kNR));
            for (std::size_t t = b; t < e; ++t) block_pair(pairs[t].first, pairs[t].second, tile.data());
        });
    }

    // Exact answer from the candidates: rows [begin, end) of (n, k) outputs, squared distances.
    // proven[i] is set to 1 where the candidates are proven to hold the answer, else 0 (the
    // row must then be searched again over all points: exact_row, or a kd-tree query).
    void finish_rows(std::int64_t begin, std::int64_t end, int k, float* dist_out, std::int64_t* idx_out,
                     std::uint8_t* proven) const {
        if (k < 1 || k > kc_) throw std::invalid_argument("k must be in [1, candidates]");
        for (std::int64_t i = begin; i < end; ++i) {
            const std::int64_t self = i;
            refine_rows(x_, n_, d_, x_ + i * d_, cand_i_.data() + i * kc_, kc_, &self, 0, 1, k, dist_out + i * k,
                        idx_out + i * k);
            proven[i] = verified(i, dist_out[i * k + k - 1]) ? 1 : 0;
        }
    }

    // Row i searched over all points: sorted by (distance, index), the lowest indices on ties.
    void exact_row(std::int64_t i, int k, float* dist_out, std::int64_t* idx_out) const {
        exact_self_row(x_, n_, d_, i, k, dist_out, idx_out);
    }

   private:
    const float* x_;
    std::int64_t n_, d_;
    int kc_;
    std::int64_t block_ = 0, n_blocks_ = 0, n_pad_ = 0;
    bool avx2_ = false;
    std::vector<float> apack_;  // row panels: panel p holds rows 6p..6p+5 as [feature][row]
    std::vector<float> bpack_;  // column panels of -2 x: panel p holds rows 16p.. as [feature][col]
    std::vector<float> norm_;   // |x - mean|^2 per row; +inf for padding rows
    float err_scale_ = 0.0f;    // rounding bound of an approximate distance, see verified()
    float max_norm_ = 0.0f;
    std::vector<float> cand_d_;
    std::vector<std::int64_t> cand_i_;
    std::vector<int> count_;
    std::vector<float> bound_;  // kc-th approximate distance once a list is full, else +inf

    void pack() {
        // Centre the data (distances do not change; cancellation in |a|^2 + |b|^2 - 2ab shrinks).
        std::vector<double> mean(static_cast<std::size_t>(d_), 0.0);
        for (std::int64_t i = 0; i < n_; ++i)
            for (std::int64_t j = 0; j < d_; ++j) mean[static_cast<std::size_t>(j)] += x_[i * d_ + j];
        for (double& m : mean) m /= static_cast<double>(n_);
        apack_.assign(static_cast<std::size_t>(n_pad_ * d_), 0.0f);
        bpack_.assign(static_cast<std::size_t>(n_pad_ * d_), 0.0f);
        norm_.assign(static_cast<std::size_t>(n_pad_), kMissingDistance);
        double max_norm = 0.0;
        for (std::int64_t i = 0; i < n_; ++i) {
            double s = 0.0;
            float* a = apack_.data() + (i / kMR) * kMR * d_ + i % kMR;
            float* b = bpack_.data() + (i / kNR) * kNR * d_ + i % kNR;
            for (std::int64_t j = 0; j < d_; ++j) {
                const float c = static_cast<float>(x_[i * d_ + j] - mean[static_cast<std::size_t>(j)]);
                a[j * kMR] = c;
                b[j * kNR] = -2.0f * c;
                s += static_cast<double>(c) * c;
            }
            norm_[static_cast<std::size_t>(i)] = static_cast<float>(s);
            max_norm = std::max(max_norm, s);
        }
        max_norm_ = static_cast<float>(std::sqrt(max_norm));
        // |approx - exact| <= (d + 6) u (|a| + |b|)^2 (u = 2^-24): the float32 sum of |a|^2 + |b|^2
        // and d FMAs, plus the rounding of the centred coordinates; doubled for margin.
        err_scale_ = static_cast<float>(2.0 * static_cast<double>(d_ + 6) * std::ldexp(1.0, -24));
    }

    bool verified(std::int64_t i, float kth_exact) const {
        const std::size_t r = static_cast<std::size_t>(i);
        if (count_[r] < kc_) return count_[r] == n_ - 1;  // every other point is a candidate
        const double a = std::sqrt(static_cast<double>(norm_[r])) + max_norm_;
        const double lower = (static_cast<double>(bound_[r]) - err_scale_ * a * a) *
                             (1.0 - static_cast<double>(d_ + 4) * std::ldexp(1.0, -24));
        // Outside the list every exact distance exceeds the k-th: the answer is complete.
        return std::isfinite(lower) && lower > static_cast<double>(kth_exact);
    }

    // Insert candidate j at approximate squared distance v into the list of point i.
    void push(std::int64_t i, float v, std::int64_t j) {
        const std::size_t r = static_cast<std::size_t>(i);
        float* dl = cand_d_.data() + i * kc_;
        std::int64_t* il = cand_i_.data() + i * kc_;
        const bool full = count_[r] == kc_;
        if (full && !(v < dl[kc_ - 1])) return;
        int pos = full ? kc_ - 1 : count_[r]++;
        while (pos > 0 && v < dl[pos - 1]) {
            dl[pos] = dl[pos - 1];
            il[pos] = il[pos - 1];
            --pos;
        }
        dl[pos] = v;
        il[pos] = j;
        if (count_[r] == kc_) bound_[r] = dl[kc_ - 1];
    }

    void block_pair(std::int64_t bi, std::int64_t bj, float* tile) {
        const bool diagonal = bi == bj;
        const std::int64_t r0 = bi * block_, c0 = bj * block_;
        std::uint32_t masks[kMR];
        for (std::int64_t jc = c0; jc < c0 + block_; jc += kNR) {
            const float* bp = bpack_.data() + jc * d_;
            for (std::int64_t ir = r0; ir < r0 + block_; ir += kMR) {
                const float* ap = apack_.data() + ir * d_;
                if (!micro_tile(ap, bp, norm_.data() + ir, norm_.data() + jc, bound_.data() + ir,
                                bound_.data() + jc, tile, masks))
                    continue;
                // Only the entries that beat a bound (bit c of masks[r]) are looked at.
                for (std::int64_t r = 0; r < kMR; ++r) {
                    const std::int64_t i = ir + r;
                    for (std::uint32_t bits = masks[r]; bits != 0; bits &= bits - 1) {
                        const std::int64_t j = jc + __builtin_ctz(bits);
                        if (i == j || i >= n_ || j >= n_) continue;
                        const float v = tile[r * kNR + (j - jc)];
                        if (v < bound_[static_cast<std::size_t>(i)]) push(i, v, j);
                        if (!diagonal && v < bound_[static_cast<std::size_t>(j)]) push(j, v, i);
                    }
                }
            }
        }
    }

    // Approximate squared distances of a 6 x 16 micro-tile into `tile`, and in masks[r] bit c
    // set where entry (r, c) beats its row's or its column's bound; false when no bit is set
    // (the tile is then not written).
    bool micro_tile(const float* ap, const float* bp, const float* rn, const float* cn, const float* rb,
                    const float* cb, float* tile, std::uint32_t* masks) const {
#if DATAGAUGE_BRUTE_AVX2
        if (avx2_) return micro_tile_avx2(ap, bp, rn, cn, rb, cb, d_, tile, masks);
#endif
        float acc[kMR * kNR];
        for (std::int64_t r = 0; r < kMR; ++r)
            for (std::int64_t c = 0; c < kNR; ++c) acc[r * kNR + c] = rn[r] + cn[c];
        for (std::int64_t p = 0; p < d_; ++p)
            for (std::int64_t r = 0; r < kMR; ++r)
                for (std::int64_t c = 0; c < kNR; ++c) acc[r * kNR + c] += ap[p * kMR + r] * bp[p * kNR + c];
        std::uint32_t any = 0;
        for (std::int64_t r = 0; r < kMR; ++r) {
            masks[r] = 0;
            for (std::int64_t c = 0; c < kNR; ++c)
                masks[r] |= static_cast<std::uint32_t>(acc[r * kNR + c] < std::max(rb[r], cb[c])) << c;
            any |= masks[r];
        }
        if (any != 0) std::copy(acc, acc + kMR * kNR, tile);
        return any != 0;
    }

#if DATAGAUGE_BRUTE_AVX2
    __attribute__((target("avx2,fma"))) static bool micro_tile_avx2(const float* ap, const float* bp,
                                                                     const float* rn, const float* cn,
                                                                     const float* rb, const float* cb,
                                                                     std::int64_t d, float* tile,
                                                                     std::uint32_t* masks) {
        // Twelve named accumulators: an array of vectors gets spilled to the stack by GCC.
        const __m256 cn0 = _mm256_loadu_ps(cn), cn1 = _mm256_loadu_ps(cn + 8);
#define DG_ROW_INIT(r)                                     \
    const __m256 n##r = _mm256_broadcast_ss(rn + r);       \
    __m256 c##r##0 = _mm256_add_ps(n##r, cn0);             \
    __m256 c##r##1 = _mm256_add_ps(n##r, cn1);
        DG_ROW_INIT(0) DG_ROW_INIT(1) DG_ROW_INIT(2) DG_ROW_INIT(3) DG_ROW_INIT(4) DG_ROW_INIT(5)
#undef DG_ROW_INIT
        for (std::int64_t p = 0; p < d; ++p) {
            const __m256 b0 = _mm256_loadu_ps(bp + p * kNR), b1 = _mm256_loadu_ps(bp + p * kNR + 8);
            const float* a = ap + p * kMR;
#define DG_ROW_FMA(r)                                      \
    {                                                      \
        const __m256 v = _mm256_broadcast_ss(a + r);       \
        c##r##0 = _mm256_fmadd_ps(v, b0, c##r##0);         \
        c##r##1 = _mm256_fmadd_ps(v, b1, c##r##1);         \
    }
            DG_ROW_FMA(0) DG_ROW_FMA(1) DG_ROW_FMA(2) DG_ROW_FMA(3) DG_ROW_FMA(4) DG_ROW_FMA(5)
#undef DG_ROW_FMA
        }
        const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
        const __m256 cb0 = _mm256_loadu_ps(cb), cb1 = _mm256_loadu_ps(cb + 8);
        std::uint32_t any = 0;
        for (int r = 0; r < kMR; ++r) {
            const __m256 rbv = _mm256_broadcast_ss(rb + r);
            const int lo = _mm256_movemask_ps(_mm256_cmp_ps(acc[r][0], _mm256_max_ps(rbv, cb0), _CMP_LT_OQ));
            const int hi = _mm256_movemask_ps(_mm256_cmp_ps(acc[r][1], _mm256_max_ps(rbv, cb1), _CMP_LT_OQ));
            masks[r] = static_cast<std::uint32_t>(lo) | (static_cast<std::uint32_t>(hi) << 8);
            any |= masks[r];
        }
        if (any == 0) return false;
        for (int r = 0; r < kMR; ++r) {
            _mm256_storeu_ps(tile + r * kNR, acc[r][0]);
            _mm256_storeu_ps(tile + r * kNR + 8, acc[r][1]);
        }
        return true;
    }
#endif
};

}  // namespace datagauge
