// Exact self k-NN by brute force, for data where no tree prunes (high intrinsic dimension).
//
// Every pair of points is visited once. The points are split into blocks; a pair of blocks
// (I, J) is a tile of inner products computed like a GEMM (register micro-tiles, FMA, packed
// panels: 12 x 32 in AVX-512 registers, 6 x 16 in AVX2 ones, chosen at run time) and each approximate squared distance |a|^2 + |b|^2 - 2 a.b updates the
// candidate lists of both its row point and its column point, so the work is half of a full
// distance matrix. Only a tile entry below one of the two current list bounds leaves the
// registers (one vector compare per 8 or 16 entries); everything else is discarded on the spot,
// never written to memory.
//
// Block pairs are scheduled as a round-robin tournament: in a round every block occurs in at
// most one pair, so threads working on different pairs of a round never touch the same list.
// The schedule, the candidate lists and their exact finishing (SymmetricTiles) are shared
// with the int8 screening engine (screen.hpp), which only brings its own micro-tile and bound.
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
#include <atomic>
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
#if defined(__GNUC__) && defined(__x86_64__)
#define DATAGAUGE_BRUTE_AVX512 1
#else
#define DATAGAUGE_BRUTE_AVX512 0
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

// Per-feature minimum, maximum and sum (double) of x (n, d) float32 row-major, over row chunks
// on n_threads threads (the sums merged in chunk order: the same on any thread count).
// Throws std::invalid_argument on a value that is not finite.
inline void column_extremes_and_sums(const float* x, std::int64_t n, std::int64_t d, int n_threads,
                                     std::vector<double>& lo, std::vector<double>& hi, std::vector<double>& sum) {
    const std::size_t dd = static_cast<std::size_t>(d);
    constexpr std::size_t kChunk = 4096;
    const std::size_t n_chunks = (static_cast<std::size_t>(n) + kChunk - 1) / kChunk;
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> plo(n_chunks * dd, inf), phi(n_chunks * dd, -inf), psum(n_chunks * dd, 0.0);
    std::atomic<bool> bad{false};
    parallel_for(n_chunks, n_threads, 1, [&](std::size_t cb, std::size_t ce) {
        for (std::size_t c = cb; c < ce; ++c) {
            double* l = plo.data() + c * dd;
            double* h = phi.data() + c * dd;
            double* s = psum.data() + c * dd;
            const std::size_t i1 = std::min(static_cast<std::size_t>(n), (c + 1) * kChunk);
            for (std::size_t i = c * kChunk; i < i1; ++i)
                for (std::size_t j = 0; j < dd; ++j) {
                    const double v = x[i * dd + j];
                    if (!std::isfinite(v)) bad.store(true, std::memory_order_relaxed);
                    l[j] = std::min(l[j], v);
                    h[j] = std::max(h[j], v);
                    s[j] += v;
                }
        }
    });
    if (bad.load()) throw std::invalid_argument("data must be finite");
    lo.assign(dd, inf);
    hi.assign(dd, -inf);
    sum.assign(dd, 0.0);
    for (std::size_t c = 0; c < n_chunks; ++c)
        for (std::size_t j = 0; j < dd; ++j) {
            lo[j] = std::min(lo[j], plo[c * dd + j]);
            hi[j] = std::max(hi[j], phi[c * dd + j]);
            sum[j] += psum[c * dd + j];
        }
}

// The part of a symmetric tile engine that does not depend on its arithmetic: blocks of
// points, the tournament schedule, candidate lists of kc entries per point (screening
// distances of type Dist: float, or int32 for the int8 engine; max-heaps), and their exact
// finishing.
//
// Derived (CRTP) provides
//   bool tile(std::int64_t ir, std::int64_t jc, Dist* out, std::uint32_t* masks) const:
//     the screening distances of the micro-tile of rows ir.. and columns jc.. into out
//     (row-major, tile_cols() per row) and in masks[r] bit c set where entry (r, c) beats
//     bound_ of its row or of its column; false (out untouched) when no bit is set;
//   std::int64_t tile_rows() const, tile_cols() const (tile_cols() <= 32);
//   bool complete(std::int64_t i, Dist bound, float kth_exact) const: whether every point at
//     screening distance >= bound from point i is provably farther than kth_exact (exact
//     squared float32 distance), i.e. a full list whose kc-th entry is bound holds the answer.
template <class Derived, class Dist>
class SymmetricTiles {
   public:
    static constexpr std::int64_t kMaxTileRows = 16;

    std::int64_t n_blocks() const { return n_blocks_; }
    // Rounds of the schedule: round 0 is every diagonal block (I, I); rounds 1.. pair blocks.
    std::int64_t n_rounds() const { return tournament_rounds(n_blocks_); }

    // Run one round of the schedule on n_threads threads.
    void run_round(std::int64_t round, int n_threads) {
        const auto pairs = tournament_pairs(n_blocks_, round);
        const std::size_t tile_size = static_cast<std::size_t>(engine().tile_rows() * engine().tile_cols());
        parallel_for(pairs.size(), n_threads, 1, [&](std::size_t b, std::size_t e) {
            std::vector<Dist> tile(tile_size);
            for (std::size_t t = b; t < e; ++t) block_pair(pairs[t].first, pairs[t].second, tile.data());
        });
    }

    // Exact answer from the candidates: rows [begin, end) of (n, k) outputs, squared distances.
    // proven[i] is set to 1 where the candidates are proven to hold the answer, else 0 (the
    // row must then be searched again over all points: exact_self_row, or a kd-tree query).
    void finish_rows(std::int64_t begin, std::int64_t end, int k, float* dist_out, std::int64_t* idx_out,
                     std::uint8_t* proven) const {
        if (k < 1 || k > kc_) throw std::invalid_argument("k must be in [1, candidates]");
        for (std::int64_t i = begin; i < end; ++i) {
            const std::int64_t self = i;
            refine_rows(x_, n_, d_, x_ + i * d_, cand_i_.data() + i * kc_, kc_, &self, 0, 1, k, dist_out + i * k,
                        idx_out + i * k);
            const std::size_t r = static_cast<std::size_t>(i);
            // A list that never filled holds every other point, or was not screened fully.
            const bool ok = count_[r] < kc_ ? count_[r] == n_ - 1
                                            : engine().complete(i, bound_[r], dist_out[i * k + k - 1]);
            proven[i] = ok ? 1 : 0;
        }
    }

   protected:
    const float* x_;
    std::int64_t n_, d_;
    int kc_;
    std::int64_t block_ = 0, n_blocks_ = 0, n_pad_ = 0;
    std::vector<Dist> cand_d_;
    std::vector<std::int64_t> cand_i_;
    std::vector<int> count_;
    std::vector<Dist> bound_;  // kc-th screening distance once a list is full, else no_bound

    // x: (n, d) float32 row-major. kc: candidates kept per point. block: rows per block,
    // rounded up to a multiple of align (a multiple of the micro-tile's rows and columns).
    SymmetricTiles(const float* x, std::int64_t n, std::int64_t d, int kc, std::int64_t block, std::int64_t align,
                   Dist no_bound)
        : x_(x), n_(n), d_(d), kc_(kc) {
        if (n < 2) throw std::invalid_argument("brute-force k-NN needs at least two points");
        if (d < 1) throw std::invalid_argument("brute-force k-NN needs at least one feature");
        if (kc < 1) throw std::invalid_argument("candidates per point must be >= 1");
        if (block < 1) throw std::invalid_argument("block must be >= 1");
        block_ = (std::min(block, n) + align - 1) / align * align;
        n_blocks_ = (n + block_ - 1) / block_;
        n_pad_ = n_blocks_ * block_;
        cand_d_.assign(static_cast<std::size_t>(n_ * kc_), no_bound);
        cand_i_.assign(static_cast<std::size_t>(n_ * kc_), kMissingIndex);
        count_.assign(static_cast<std::size_t>(n_), 0);
        bound_.assign(static_cast<std::size_t>(n_pad_), no_bound);
    }

   private:
    const Derived& engine() const { return static_cast<const Derived&>(*this); }

    // Insert candidate j at screening distance v into the list of point i. A list is a binary
    // max-heap on the screening distance (entry 0 the largest), so an insertion costs
    // O(log kc) however long the lists; a point that leaves a full list is its largest entry,
    // so every point outside it is at least the final bound.
    void push(std::int64_t i, Dist v, std::int64_t j) {
        const std::size_t r = static_cast<std::size_t>(i);
        Dist* dl = cand_d_.data() + i * kc_;
        std::int64_t* il = cand_i_.data() + i * kc_;
        int pos;
        if (count_[r] < kc_) {  // sift up from the end
            pos = count_[r]++;
            while (pos > 0) {
                const int parent = (pos - 1) / 2;
                if (!(dl[parent] < v)) break;
                dl[pos] = dl[parent];
                il[pos] = il[parent];
                pos = parent;
            }
        } else {  // replace the largest, sift down
            if (!(v < dl[0])) return;
            pos = 0;
            for (;;) {
                int child = 2 * pos + 1;
                if (child >= kc_) break;
                if (child + 1 < kc_ && dl[child] < dl[child + 1]) ++child;
                if (!(v < dl[child])) break;
                dl[pos] = dl[child];
                il[pos] = il[child];
                pos = child;
            }
        }
        dl[pos] = v;
        il[pos] = j;
        if (count_[r] == kc_) bound_[r] = dl[0];
    }

    void block_pair(std::int64_t bi, std::int64_t bj, Dist* tile) {
        const bool diagonal = bi == bj;
        const std::int64_t r0 = bi * block_, c0 = bj * block_;
        const std::int64_t mr = engine().tile_rows(), nr = engine().tile_cols();
        std::uint32_t masks[kMaxTileRows];
        // Tiles wholly in the padding past the last point are skipped: padding points are
        // not points, and their lists never fill (their bounds would flag every entry).
        const std::int64_t c1 = std::min(c0 + block_, n_), r1 = std::min(r0 + block_, n_);
        for (std::int64_t jc = c0; jc < c1; jc += nr) {
            for (std::int64_t ir = r0; ir < r1; ir += mr) {
                if (!engine().tile(ir, jc, tile, masks)) continue;
                // Only the entries that beat a bound (bit c of masks[r]) are looked at.
                for (std::int64_t r = 0; r < mr; ++r) {
                    const std::int64_t i = ir + r;
                    for (std::uint32_t bits = masks[r]; bits != 0; bits &= bits - 1) {
                        const std::int64_t j = jc + __builtin_ctz(bits);
                        if (i == j || i >= n_ || j >= n_) continue;
                        const Dist v = tile[r * nr + (j - jc)];
                        if (v < bound_[static_cast<std::size_t>(i)]) push(i, v, j);
                        if (!diagonal && v < bound_[static_cast<std::size_t>(j)]) push(j, v, i);
                    }
                }
            }
        }
    }
};

// The float32 tile engine: squared distances |a|^2 + |b|^2 - 2 a.b of centred points in
// float32 FMA tiles screen the candidates.
class BruteSelfKnn : public SymmetricTiles<BruteSelfKnn, float> {
    friend class SymmetricTiles<BruteSelfKnn, float>;

   public:
    // The micro-kernels: AVX-512F (12 x 32 tile: 24 zmm accumulators), AVX2 + FMA (6 x 16: 12
    // ymm accumulators), portable loops (6 x 16). All compute every entry as
    // (|a|^2 + |b|^2) + sum_p a_p (-2 b_p), one FMA per feature in feature order.
    enum class Kernel { scalar, avx2, avx512 };

    // The kernel simd::level() (CPU and DATAGAUGE_SIMD) selects.
    static Kernel selected_kernel() {
        const simd::Level level = simd::level();
#if DATAGAUGE_BRUTE_AVX512
        if (level == simd::Level::avx512) return Kernel::avx512;
#endif
#if DATAGAUGE_BRUTE_AVX2
        if (static_cast<int>(level) >= static_cast<int>(simd::Level::avx2)) return Kernel::avx2;
#endif
        (void)level;
        return Kernel::scalar;
    }
    static const char* kernel_name(Kernel k) {
        switch (k) {
            case Kernel::avx512: return "fp32-avx512";
            case Kernel::avx2: return "fp32-avx2";
            default: return "fp32-scalar";
        }
    }
    static std::int64_t kernel_rows(Kernel k) { return k == Kernel::avx512 ? 12 : 6; }
    static std::int64_t kernel_cols(Kernel k) { return k == Kernel::avx512 ? 32 : 16; }
    // Blocks are multiples of lcm(rows, cols): 96 with AVX-512, 48 otherwise.
    static std::int64_t kernel_align(Kernel k) { return k == Kernel::avx512 ? 96 : 48; }

    // x: (n, d) float32 row-major. kc: candidates kept per point (> k). block: rows per block
    // (rounded up to a multiple of kernel_align(selected_kernel()): 96 with AVX-512, else 48).
    // The packing runs on n_threads threads.
    BruteSelfKnn(const float* x, std::int64_t n, std::int64_t d, int kc, std::int64_t block, int n_threads = 1)
        : SymmetricTiles(x, n, d, kc, block, kernel_align(selected_kernel()), kMissingDistance),
          kernel_(selected_kernel()),
          mr_(kernel_rows(kernel_)),
          nr_(kernel_cols(kernel_)) {
        pack(n_threads);
    }

    // Which micro-kernel runs the tiles: "fp32-avx512", "fp32-avx2" or "fp32-scalar".
    const char* kernel() const { return kernel_name(kernel_); }

    // Row i searched over all points: sorted by (distance, index), the lowest indices on ties.
    void exact_row(std::int64_t i, int k, float* dist_out, std::int64_t* idx_out) const {
        exact_self_row(x_, n_, d_, i, k, dist_out, idx_out);
    }

   private:
    Kernel kernel_;
    std::int64_t mr_, nr_;     // micro-tile rows and columns of the kernel
    std::vector<float> apack_;  // row panels: panel p holds rows mr p.. as [feature][row]
    std::vector<float> bpack_;  // column panels of -2 x: panel p holds rows nr p.. as [feature][col]
    std::vector<float> norm_;   // |x - mean|^2 per row; +inf for padding rows
    float err_scale_ = 0.0f;    // rounding bound of an approximate distance, see complete()
    float max_norm_ = 0.0f;

    std::int64_t tile_rows() const { return mr_; }
    std::int64_t tile_cols() const { return nr_; }

    void pack(int n_threads) {
        // Centre the data (distances do not change; cancellation in |a|^2 + |b|^2 - 2ab shrinks).
        std::vector<double> lo, hi, mean;
        column_extremes_and_sums(x_, n_, d_, n_threads, lo, hi, mean);
        for (double& m : mean) m /= static_cast<double>(n_);
        apack_.assign(static_cast<std::size_t>(n_pad_ * d_), 0.0f);
        bpack_.assign(static_cast<std::size_t>(n_pad_ * d_), 0.0f);
        norm_.assign(static_cast<std::size_t>(n_pad_), kMissingDistance);
        parallel_for(static_cast<std::size_t>(n_), n_threads, 2048, [&](std::size_t rb, std::size_t re) {
            for (std::int64_t i = static_cast<std::int64_t>(rb); i < static_cast<std::int64_t>(re); ++i) {
                double s = 0.0;
                float* a = apack_.data() + (i / mr_) * mr_ * d_ + i % mr_;
                float* b = bpack_.data() + (i / nr_) * nr_ * d_ + i % nr_;
                for (std::int64_t j = 0; j < d_; ++j) {
                    const float c = static_cast<float>(x_[i * d_ + j] - mean[static_cast<std::size_t>(j)]);
                    a[j * mr_] = c;
                    b[j * nr_] = -2.0f * c;
                    s += static_cast<double>(c) * c;
                }
                norm_[static_cast<std::size_t>(i)] = static_cast<float>(s);
            }
        });
        // The largest |x - mean|^2, from the float32 norms rounded up by their relative rounding.
        double max_norm = 0.0;
        for (std::int64_t i = 0; i < n_; ++i)
            max_norm = std::max(max_norm, static_cast<double>(norm_[static_cast<std::size_t>(i)]));
        max_norm *= 1.0 + std::ldexp(1.0, -23);
        max_norm_ = static_cast<float>(std::sqrt(max_norm));
        // |approx - exact| <= (d + 6) u (|a| + |b|)^2 (u = 2^-24): the float32 sum of |a|^2 + |b|^2
        // and d FMAs, plus the rounding of the centred coordinates; doubled for margin (and
        // for the portable loop, where a compiler may or may not contract a*b+c into an FMA).
        // Every kernel computes an entry in that same order, so the bound holds for each.
        err_scale_ = static_cast<float>(2.0 * static_cast<double>(d_ + 6) * std::ldexp(1.0, -24));
    }

    bool complete(std::int64_t i, float bound, float kth_exact) const {
        const double a = std::sqrt(static_cast<double>(norm_[static_cast<std::size_t>(i)])) + max_norm_;
        const double lower = (static_cast<double>(bound) - err_scale_ * a * a) *
                             (1.0 - static_cast<double>(d_ + 4) * std::ldexp(1.0, -24));
        // Outside the list every exact distance exceeds the k-th: the answer is complete.
        return std::isfinite(lower) && lower > static_cast<double>(kth_exact);
    }

    // Approximate squared distances of the micro-tile at rows ir.., columns jc.. into `tile`,
    // and in masks[r] bit c set where entry (r, c) beats its row's or its column's bound;
    // false when no bit is set (the tile is then not written).
    bool tile(std::int64_t ir, std::int64_t jc, float* tile, std::uint32_t* masks) const {
        const float *ap = apack_.data() + ir * d_, *bp = bpack_.data() + jc * d_;
        const float *rn = norm_.data() + ir, *cn = norm_.data() + jc;
        const float *rb = bound_.data() + ir, *cb = bound_.data() + jc;
#if DATAGAUGE_BRUTE_AVX512
        if (kernel_ == Kernel::avx512) return micro_tile_avx512(ap, bp, rn, cn, rb, cb, d_, tile, masks);
#endif
#if DATAGAUGE_BRUTE_AVX2
        if (kernel_ == Kernel::avx2) return micro_tile_avx2(ap, bp, rn, cn, rb, cb, d_, tile, masks);
#endif
        return micro_tile_scalar(ap, bp, rn, cn, rb, cb, tile, masks);
    }

    bool micro_tile_scalar(const float* ap, const float* bp, const float* rn, const float* cn, const float* rb,
                           const float* cb, float* tile, std::uint32_t* masks) const {
        constexpr std::int64_t kMR = 6, kNR = 16;
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
    // The 6 x 16 tile in ymm registers; panels of 6 rows and 16 columns.
    __attribute__((target("avx2,fma"))) static bool micro_tile_avx2(const float* ap, const float* bp,
                                                                     const float* rn, const float* cn,
                                                                     const float* rb, const float* cb,
                                                                     std::int64_t d, float* tile,
                                                                     std::uint32_t* masks) {
        constexpr int kMR = 6, kNR = 16;
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

#if DATAGAUGE_BRUTE_AVX512
    // The 12 x 32 tile in zmm registers (24 accumulators of the 32; each feature step loads
    // two vectors of B and broadcasts 12 values of A for 24 FMAs); panels of 12 rows and 32
    // columns. Every entry is computed as in the AVX2 tile, bit for bit.
    __attribute__((target("avx512f"))) static bool micro_tile_avx512(const float* ap, const float* bp,
                                                                    const float* rn, const float* cn,
                                                                    const float* rb, const float* cb,
                                                                    std::int64_t d, float* tile,
                                                                    std::uint32_t* masks) {
        constexpr int kMR = 12, kNR = 32;
        const __m512 cn0 = _mm512_loadu_ps(cn), cn1 = _mm512_loadu_ps(cn + 16);
#define DG_ROW_INIT(r)                                     \
    const __m512 n##r = _mm512_set1_ps(rn[r]);             \
    __m512 c##r##_0 = _mm512_add_ps(n##r, cn0);            \
    __m512 c##r##_1 = _mm512_add_ps(n##r, cn1);
        DG_ROW_INIT(0) DG_ROW_INIT(1) DG_ROW_INIT(2) DG_ROW_INIT(3) DG_ROW_INIT(4) DG_ROW_INIT(5)
        DG_ROW_INIT(6) DG_ROW_INIT(7) DG_ROW_INIT(8) DG_ROW_INIT(9) DG_ROW_INIT(10) DG_ROW_INIT(11)
#undef DG_ROW_INIT
        for (std::int64_t p = 0; p < d; ++p) {
            const __m512 b0 = _mm512_loadu_ps(bp + p * kNR), b1 = _mm512_loadu_ps(bp + p * kNR + 16);
            const float* a = ap + p * kMR;
#define DG_ROW_FMA(r)                                      \
    {                                                      \
        const __m512 v = _mm512_set1_ps(a[r]);             \
        c##r##_0 = _mm512_fmadd_ps(v, b0, c##r##_0);       \
        c##r##_1 = _mm512_fmadd_ps(v, b1, c##r##_1);       \
    }
            DG_ROW_FMA(0) DG_ROW_FMA(1) DG_ROW_FMA(2) DG_ROW_FMA(3) DG_ROW_FMA(4) DG_ROW_FMA(5)
            DG_ROW_FMA(6) DG_ROW_FMA(7) DG_ROW_FMA(8) DG_ROW_FMA(9) DG_ROW_FMA(10) DG_ROW_FMA(11)
#undef DG_ROW_FMA
        }
        const __m512 acc[kMR][2] = {{c0_0, c0_1}, {c1_0, c1_1}, {c2_0, c2_1},   {c3_0, c3_1},
                                    {c4_0, c4_1}, {c5_0, c5_1}, {c6_0, c6_1},   {c7_0, c7_1},
                                    {c8_0, c8_1}, {c9_0, c9_1}, {c10_0, c10_1}, {c11_0, c11_1}};
        const __m512 cb0 = _mm512_loadu_ps(cb), cb1 = _mm512_loadu_ps(cb + 16);
        std::uint32_t any = 0;
        for (int r = 0; r < kMR; ++r) {
            const __m512 rbv = _mm512_set1_ps(rb[r]);
            const __mmask16 lo = _mm512_cmp_ps_mask(acc[r][0], _mm512_max_ps(rbv, cb0), _CMP_LT_OQ);
            const __mmask16 hi = _mm512_cmp_ps_mask(acc[r][1], _mm512_max_ps(rbv, cb1), _CMP_LT_OQ);
            masks[r] = static_cast<std::uint32_t>(lo) | (static_cast<std::uint32_t>(hi) << 16);
            any |= masks[r];
        }
        if (any == 0) return false;
        for (int r = 0; r < kMR; ++r) {
            _mm512_storeu_ps(tile + r * kNR, acc[r][0]);
            _mm512_storeu_ps(tile + r * kNR + 16, acc[r][1]);
        }
        return true;
    }
#endif
};

}  // namespace datagauge
