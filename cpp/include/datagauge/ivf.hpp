// Approximate self k-NN by a cell-blocked inverted file (IVF), in dense tile products.
//
// The points are split into cells by a coarse quantiser (k-means centres, trained here by
// Lloyd iterations on a sample). Every point's home cell is its nearest centre. The queries of
// one home cell form a group, and the group is searched against the `nprobe` cells its probe
// list names (the home cell first, then the cells nearest to any point of the
// group). The work is therefore grouped by cell: a block of the group's queries (packed row
// panels) against a block of a probed cell's points (packed column panels) is a dense product
// of 6 x 32 register tiles (FMA; AVX-512 or AVX2 chosen at run time, a portable loop
// elsewhere), and only the tile entries below a query's current bound enter its candidate
// list. Groups are independent (each query belongs to one), so they run in parallel without
// locks, and the answer does not depend on the thread count.
//
// The tile distances |a|^2 + |b|^2 - 2 a.b (of centred data) only choose candidates: each
// query keeps kc > k of them, which are re-ranked with exact float32 distances (refine.hpp, the
// same arithmetic as the exact engines), so the distances returned are bit-identical to an
// exact engine's for the same pair and recall is the only approximation. With nprobe equal to
// the number of cells every query meets every point (an exact search up to the candidates'
// rounding margin).
//
// The data are used in place: rows are gathered into small per-thread packed buffers, never
// into a second copy of the whole matrix.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "datagauge/parallel.hpp"
#include "datagauge/refine.hpp"
#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define DATAGAUGE_IVF_X86 1
#else
#define DATAGAUGE_IVF_X86 0
#endif

namespace datagauge::ivf {

constexpr std::int64_t kMR = 6;    // tile rows (queries)
constexpr std::int64_t kNR = 32;   // tile columns (points)
constexpr std::int64_t kColBlock = 4 * kNR;  // points packed at a time (a few hundred KiB)
constexpr std::int64_t kQueryBlock = 768;    // queries of one group searched together at most
constexpr std::int64_t kTrainChunk = 1024;   // rows a thread assigns at a time

// ----------------------------------------------------------------------------- tile kernels

// out[r * kNR + c] = sum_p ap[p * kMR + r] * bp[p * kNR + c] over p < d.
using TileFn = void (*)(const float* ap, const float* bp, std::int64_t d, float* out);

inline void tile_scalar(const float* ap, const float* bp, std::int64_t d, float* out) {
    float acc[kMR * kNR] = {};
    for (std::int64_t p = 0; p < d; ++p)
        for (std::int64_t r = 0; r < kMR; ++r) {
            const float a = ap[p * kMR + r];
            for (std::int64_t c = 0; c < kNR; ++c) acc[r * kNR + c] += a * bp[p * kNR + c];
        }
    std::copy(acc, acc + kMR * kNR, out);
}

#if DATAGAUGE_IVF_X86
// Two 16-column halves of the panel, each 6 rows x 2 vectors of 8 (twelve accumulators).
__attribute__((target("avx2,fma"))) inline void tile_avx2(const float* ap, const float* bp, std::int64_t d,
                                                           float* out) {
    for (std::int64_t half = 0; half < kNR; half += 16) {
        __m256 acc[kMR][2];
        for (auto& row : acc) row[0] = row[1] = _mm256_setzero_ps();
        for (std::int64_t p = 0; p < d; ++p) {
            const __m256 b0 = _mm256_loadu_ps(bp + p * kNR + half), b1 = _mm256_loadu_ps(bp + p * kNR + half + 8);
            for (std::int64_t r = 0; r < kMR; ++r) {
                const __m256 a = _mm256_broadcast_ss(ap + p * kMR + r);
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
        }
        for (std::int64_t r = 0; r < kMR; ++r) {
            _mm256_storeu_ps(out + r * kNR + half, acc[r][0]);
            _mm256_storeu_ps(out + r * kNR + half + 8, acc[r][1]);
        }
    }
}

// 6 rows x 2 vectors of 16 (twelve accumulators).
__attribute__((target("avx512f"))) inline void tile_avx512(const float* ap, const float* bp, std::int64_t d,
                                                            float* out) {
    __m512 acc[kMR][2];
    for (auto& row : acc) row[0] = row[1] = _mm512_setzero_ps();
    for (std::int64_t p = 0; p < d; ++p) {
        const __m512 b0 = _mm512_loadu_ps(bp + p * kNR), b1 = _mm512_loadu_ps(bp + p * kNR + 16);
        for (std::int64_t r = 0; r < kMR; ++r) {
            const __m512 a = _mm512_set1_ps(ap[p * kMR + r]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    for (std::int64_t r = 0; r < kMR; ++r) {
        _mm512_storeu_ps(out + r * kNR, acc[r][0]);
        _mm512_storeu_ps(out + r * kNR + 16, acc[r][1]);
    }
}
#endif

// The widest kernel that simd::level() allows here, and its name.
inline TileFn tile_kernel() {
#if DATAGAUGE_IVF_X86
    const simd::Level level = simd::level();
    if (level == simd::Level::avx512) return tile_avx512;
    if (level == simd::Level::avx2) return tile_avx2;
#endif
    return tile_scalar;
}

inline const char* kernel_name() {
#if DATAGAUGE_IVF_X86
    const simd::Level level = simd::level();
    if (level == simd::Level::avx512) return "fp32-avx512";
    if (level == simd::Level::avx2) return "fp32-avx2";
#endif
    return "fp32-scalar";
}

// ----------------------------------------------------------------------------- packing

// Rows of a matrix (d columns, centred by `mean`) chosen by ids (nullptr: rows first.. in
// order) for the tiles. Row panels hold kMR rows as [feature][row]; column panels hold kNR
// rows as [feature][column], times -2. norm[t] is |row - mean|^2 (summed in double), 0 for
// padding rows and +inf for padding columns (a padding column never beats a bound).
inline void pack_panels(const float* x, std::int64_t d, const float* mean, const std::int64_t* ids,
                        std::int64_t first, std::int64_t m, bool columns, std::vector<float>& pack,
                        std::vector<float>& norm) {
    const std::int64_t w = columns ? kNR : kMR;
    const std::int64_t padded = (m + w - 1) / w * w;
    pack.assign(static_cast<std::size_t>(padded * d), 0.0f);
    norm.assign(static_cast<std::size_t>(padded), columns ? kMissingDistance : 0.0f);
    const float scale = columns ? -2.0f : 1.0f;
    for (std::int64_t t = 0; t < m; ++t) {
        const float* row = x + (ids != nullptr ? ids[first + t] : first + t) * d;
        float* dst = pack.data() + (t / w) * w * d + t % w;
        double s = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
            const float c = row[j] - mean[j];
            dst[j * w] = scale * c;
            s += static_cast<double>(c) * c;
        }
        norm[static_cast<std::size_t>(t)] = static_cast<float>(s);
    }
}

// ----------------------------------------------------------------------------- coarse quantiser

// Nearest centre of each row [begin, end) of x (approximate tile distances; the lowest
// index on ties) into labels; with gmin (ncent x ncent, row-major), gmin[label * ncent + c]
// is lowered to the row's distance to centre c.
inline void assign_rows(const float* x, std::int64_t d, const float* mean, const std::vector<float>& cpack,
                        const std::vector<float>& cnorm, std::int64_t ncent, std::int64_t begin, std::int64_t end,
                        TileFn tile, std::int64_t* labels, float* gmin) {
    std::vector<float> apack, anorm;
    const std::int64_t npan = static_cast<std::int64_t>(cnorm.size()) / kNR;
    std::vector<float> dist(static_cast<std::size_t>(kMR * npan * kNR)), acc(kMR * kNR);
    for (std::int64_t r0 = begin; r0 < end; r0 += kMR) {
        const std::int64_t m = std::min(kMR, end - r0);
        pack_panels(x, d, mean, nullptr, r0, m, false, apack, anorm);
        for (std::int64_t jp = 0; jp < npan; ++jp) {
            tile(apack.data(), cpack.data() + jp * kNR * d, d, acc.data());
            for (std::int64_t r = 0; r < m; ++r)
                for (std::int64_t c = 0; c < kNR; ++c)
                    dist[static_cast<std::size_t>(r * npan * kNR + jp * kNR + c)] =
                        anorm[static_cast<std::size_t>(r)] + cnorm[static_cast<std::size_t>(jp * kNR + c)] +
                        acc[static_cast<std::size_t>(r * kNR + c)];
        }
        for (std::int64_t r = 0; r < m; ++r) {
            const float* dr = dist.data() + r * npan * kNR;
            std::int64_t best = 0;
            for (std::int64_t c = 1; c < ncent; ++c)
                if (dr[c] < dr[best]) best = c;
            labels[r0 + r] = best;
            if (gmin == nullptr) continue;
            float* g = gmin + best * ncent;
            for (std::int64_t c = 0; c < ncent; ++c) g[c] = std::min(g[c], dr[c]);
        }
    }
}

class Quantiser {
   public:
    // centres: (ncent, d) float32 row-major (copied); mean: (d) the centring of the tiles.
    Quantiser(const float* centres, std::int64_t ncent, std::int64_t d, const float* mean)
        : ncent_(ncent), d_(d), centres_(centres, centres + ncent * d), mean_(mean, mean + d), tile_(tile_kernel()) {
        if (ncent < 1) throw std::invalid_argument("an inverted file needs at least one cell");
        if (d < 1) throw std::invalid_argument("an inverted file needs at least one feature");
        repack();
    }

    std::int64_t n_cells() const { return ncent_; }
    const std::vector<float>& centres() const { return centres_; }

    // Labels (nearest centre) of the rows [begin, end) of x, and with probe (ncent x ncent)
    // the probe scores lowered by them: probe[c * ncent + j] is lowered to the smallest tile
    // distance from a row of cell c to centre j. Start from +inf and set the diagonal to -inf
    // at the end (the home cell is probed first): see finish_scores().
    void assign(const float* x, std::int64_t begin, std::int64_t end, int n_threads, std::int64_t* labels,
                float* probe) const {
        const std::int64_t n = end - begin;
        if (n <= 0) return;
        const std::size_t cc = static_cast<std::size_t>(ncent_ * ncent_);
        const int workers = std::max(1, std::min<int>(resolve_threads(n_threads), static_cast<int>((n + kTrainChunk - 1) / kTrainChunk)));
        // One score matrix per contiguous range of rows: a minimum does not depend on the
        // order or the split, so the result does not depend on the thread count.
        std::vector<std::vector<float>> part(probe != nullptr ? static_cast<std::size_t>(workers) : 0);
        const std::int64_t per = (n + workers - 1) / workers;
        parallel_for(static_cast<std::size_t>(workers), workers, 1, [&](std::size_t b, std::size_t e) {
            for (std::size_t w = b; w < e; ++w) {
                const std::int64_t r0 = begin + static_cast<std::int64_t>(w) * per, r1 = std::min(end, r0 + per);
                float* g = nullptr;
                if (probe != nullptr) {
                    part[w].assign(cc, kMissingDistance);
                    g = part[w].data();
                }
                if (r0 < r1) assign_rows(x, d_, mean_.data(), cpack_, cnorm_, ncent_, r0, r1, tile_, labels, g);
            }
        });
        for (const auto& p : part)
            for (std::size_t t = 0; t < cc; ++t) probe[t] = std::min(probe[t], p[t]);
    }

    // The diagonal of the probe scores: -inf (each cell's own points are searched first).
    void finish_scores(float* probe) const {
        for (std::int64_t c = 0; c < ncent_; ++c) probe[c * ncent_ + c] = -kMissingDistance;
    }

    // Lloyd iterations on the sample s (m x d): every centre moves to the mean (in double, its
    // rows in index order) of the rows nearest to it; a centre without rows stays. Stops after
    // max_iter or once no label changes. Returns the iterations run.
    std::int64_t train(const float* s, std::int64_t m, std::int64_t max_iter, int n_threads) {
        std::vector<std::int64_t> labels(static_cast<std::size_t>(m), -1), prev, order(static_cast<std::size_t>(m));
        std::vector<std::int64_t> start(static_cast<std::size_t>(ncent_ + 1));
        std::int64_t it = 0;
        while (it < max_iter) {
            prev = labels;
            parallel_for(static_cast<std::size_t>(m), n_threads, static_cast<std::size_t>(kTrainChunk),
                         [&](std::size_t b, std::size_t e) {
                             assign_rows(s, d_, mean_.data(), cpack_, cnorm_, ncent_, static_cast<std::int64_t>(b),
                                         static_cast<std::int64_t>(e), tile_, labels.data(), nullptr);
                         });
            ++it;
            if (labels == prev) break;
            // Rows grouped by label (counting sort keeps index order inside a cell).
            std::fill(start.begin(), start.end(), 0);
            for (const std::int64_t l : labels) ++start[static_cast<std::size_t>(l + 1)];
            std::partial_sum(start.begin(), start.end(), start.begin());
            std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
            for (std::int64_t i = 0; i < m; ++i) order[static_cast<std::size_t>(fill[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])]++)] = i;
            parallel_for(static_cast<std::size_t>(ncent_), n_threads, 16, [&](std::size_t b, std::size_t e) {
                std::vector<double> sum(static_cast<std::size_t>(d_));
                for (std::size_t c = b; c < e; ++c) {
                    const std::int64_t lo = start[c], hi = start[c + 1];
                    if (lo == hi) continue;
                    std::fill(sum.begin(), sum.end(), 0.0);
                    for (std::int64_t t = lo; t < hi; ++t) {
                        const float* row = s + order[static_cast<std::size_t>(t)] * d_;
                        for (std::int64_t j = 0; j < d_; ++j) sum[static_cast<std::size_t>(j)] += row[j];
                    }
                    float* out = centres_.data() + static_cast<std::int64_t>(c) * d_;
                    for (std::int64_t j = 0; j < d_; ++j)
                        out[j] = static_cast<float>(sum[static_cast<std::size_t>(j)] / static_cast<double>(hi - lo));
                }
            });
            repack();
        }
        return it;
    }

   private:
    std::int64_t ncent_, d_;
    std::vector<float> centres_, mean_;
    TileFn tile_;
    std::vector<float> cpack_, cnorm_;  // centres as column panels

    void repack() { pack_panels(centres_.data(), d_, mean_.data(), nullptr, 0, ncent_, true, cpack_, cnorm_); }
};

// ----------------------------------------------------------------------------- search

// The inverted file: cell c holds the points members[start[c] .. start[c + 1]).
struct Cells {
    const std::int64_t* start;
    const std::int64_t* members;
    std::int64_t n_cells;
};

// One group's task: queries positions [begin, end) of the query list grouped by home cell.
struct Task {
    std::int64_t home, begin, end, work;
};

class Searcher {
   public:
    // x: (n, d) float32 row-major; mean: (d) the centring of the tiles; probe: (n_cells x
    // probe_width) cell ids per home cell, nearest first; kc: candidates kept per query.
    Searcher(const float* x, std::int64_t n, std::int64_t d, const float* mean, Cells cells, const std::int32_t* probe,
             std::int64_t probe_width, std::int64_t nprobe, int kc)
        : x_(x), n_(n), d_(d), mean_(mean), cells_(cells), probe_(probe), width_(probe_width), nprobe_(nprobe),
          kc_(kc), tile_(tile_kernel()) {
        if (nprobe < 1 || nprobe > probe_width) throw std::invalid_argument("nprobe must lie in [1, probe width]");
        if (kc < 1) throw std::invalid_argument("candidates per query must be >= 1");
    }

    // Tasks for the queries (m ids) whose home cells are labels[id]: the queries grouped by
    // home cell (order[t] is the position in the query list of the t-th grouped query), at
    // most kQueryBlock a task, the largest work first.
    std::vector<Task> plan(const std::int64_t* queries, std::int64_t m, const std::int64_t* labels,
                           std::vector<std::int64_t>& order) const {
        const std::size_t nc = static_cast<std::size_t>(cells_.n_cells);
        std::vector<std::int64_t> start(nc + 1, 0);
        for (std::int64_t t = 0; t < m; ++t) ++start[static_cast<std::size_t>(labels[queries[t]] + 1)];
        std::partial_sum(start.begin(), start.end(), start.begin());
        std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
        order.assign(static_cast<std::size_t>(m), 0);
        for (std::int64_t t = 0; t < m; ++t) order[static_cast<std::size_t>(fill[static_cast<std::size_t>(labels[queries[t]])]++)] = t;
        std::vector<Task> tasks;
        for (std::int64_t c = 0; c < cells_.n_cells; ++c) {
            std::int64_t points = 0;
            for (std::int64_t p = 0; p < nprobe_; ++p) {
                const std::int64_t j = probe_[c * width_ + p];
                points += cells_.start[j + 1] - cells_.start[j];
            }
            for (std::int64_t b = start[static_cast<std::size_t>(c)]; b < start[static_cast<std::size_t>(c) + 1]; b += kQueryBlock) {
                const std::int64_t e = std::min(b + kQueryBlock, start[static_cast<std::size_t>(c) + 1]);
                tasks.push_back({c, b, e, (e - b) * points});
            }
        }
        std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.work > b.work; });
        return tasks;
    }

    // One task: exact squared distances and indices of the k best candidates of each of its
    // queries, written to row order[t] of the (m, k) outputs.
    void run(const Task& task, const std::int64_t* queries, const std::vector<std::int64_t>& order, int k,
             float* dist_out, std::int64_t* idx_out) const {
        const std::int64_t m = task.end - task.begin;
        std::vector<std::int64_t> qid(static_cast<std::size_t>(m));
        for (std::int64_t t = 0; t < m; ++t) qid[static_cast<std::size_t>(t)] = queries[order[static_cast<std::size_t>(task.begin + t)]];
        std::vector<float> apack, anorm, bpack, bnorm, acc(kMR * kNR);
        pack_panels(x_, d_, mean_, qid.data(), 0, m, false, apack, anorm);
        std::vector<TopK> top(static_cast<std::size_t>(m), TopK(kc_));  // by tile distance
        const std::int64_t rpan = (m + kMR - 1) / kMR;
        for (std::int64_t p = 0; p < nprobe_; ++p) {
            const std::int64_t cell = probe_[task.home * width_ + p];
            const std::int64_t lo = cells_.start[cell], hi = cells_.start[cell + 1];
            for (std::int64_t b0 = lo; b0 < hi; b0 += kColBlock) {
                const std::int64_t nb = std::min(kColBlock, hi - b0);
                pack_panels(x_, d_, mean_, cells_.members, b0, nb, true, bpack, bnorm);
                const std::int64_t cpan = (nb + kNR - 1) / kNR;
                for (std::int64_t ip = 0; ip < rpan; ++ip)
                    for (std::int64_t jp = 0; jp < cpan; ++jp) {
                        tile_(apack.data() + ip * kMR * d_, bpack.data() + jp * kNR * d_, d_, acc.data());
                        const std::int64_t rows = std::min(kMR, m - ip * kMR), cols = std::min(kNR, nb - jp * kNR);
                        for (std::int64_t r = 0; r < rows; ++r) {
                            const std::size_t q = static_cast<std::size_t>(ip * kMR + r);
                            const float base = anorm[q];
                            for (std::int64_t c = 0; c < cols; ++c) {
                                const float v = base + bnorm[static_cast<std::size_t>(jp * kNR + c)] + acc[static_cast<std::size_t>(r * kNR + c)];
                                if (!(v < top[q].bound())) continue;
                                const std::int64_t j = cells_.members[b0 + jp * kNR + c];
                                if (j != qid[q]) top[q].push(v, j);
                            }
                        }
                    }
            }
        }
        std::vector<float> cd(static_cast<std::size_t>(kc_));
        std::vector<std::int64_t> ci(static_cast<std::size_t>(kc_));
        for (std::int64_t t = 0; t < m; ++t) {
            const std::int64_t row = order[static_cast<std::size_t>(task.begin + t)], self = qid[static_cast<std::size_t>(t)];
            top[static_cast<std::size_t>(t)].write(cd.data(), ci.data());
            refine_rows(x_, n_, d_, x_ + self * d_, ci.data(), kc_, &self, 0, 1, k, dist_out + row * k,
                        idx_out + row * k);
        }
    }

   private:
    const float* x_;
    std::int64_t n_, d_;
    const float* mean_;
    Cells cells_;
    const std::int32_t* probe_;
    std::int64_t width_, nprobe_;
    int kc_;
    TileFn tile_;
};

// ----------------------------------------------------------------------------- exact rows

// out[j] = squared_distance(q, centres row j) for j < nc (the exact engines' float32
// arithmetic, eight rows at a time).
DATAGAUGE_SIMD_CLONES inline void centre_distances(const float* q, const float* centres, std::int64_t nc,
                                                   std::int64_t d, float* out) {
    const float* rows[8];
    std::int64_t j = 0;
    for (; j + 8 <= nc; j += 8) {
        for (int r = 0; r < 8; ++r) rows[r] = centres + (j + r) * d;
        squared_distance8(q, rows, d, out + j);
    }
    for (; j < nc; ++j) out[j] = squared_distance(q, centres + j * d, d);
}

// Exact k-NN of chosen rows, pruned by cells with the triangle inequality. Each query comes
// with a bound B on its squared k-th distance (an approximate search's k-th distance of real
// points: at least the true one). Cells are visited nearest centre first; a cell is skipped
// when even its nearest possible point, |q - c| - R_c (R_c: the largest distance from centre
// c to a point of the cell), lies beyond the current bound (B, or the k-th distance found
// once that is smaller). Float32 rounding of the computed squared distances (relative error
// at most (d + 3) u, u = 2^-24) is covered by a margin eps = 2 (d + 4) u on both sides, so
// no point within the bound is skipped: the answer is the exact k-NN with the exact engines'
// distances.
class ExactRows {
   public:
    ExactRows(const float* x, std::int64_t n, std::int64_t d, const float* centres, Cells cells)
        : x_(x), n_(n), d_(d), centres_(centres), cells_(cells),
          eps_(2.0 * static_cast<double>(d + 4) * std::ldexp(1.0, -24)) {
        radius_.assign(static_cast<std::size_t>(cells.n_cells), 0.0);
        for (std::int64_t c = 0; c < cells.n_cells; ++c) {
            double r = 0.0;
            for (std::int64_t t = cells.start[c]; t < cells.start[c + 1]; ++t)
                r = std::max(r, static_cast<double>(squared_distance(x + cells.members[t] * d, centres + c * d, d)));
            radius_[static_cast<std::size_t>(c)] = std::sqrt(r / (1.0 - eps_)) * (1.0 + 1e-12);
        }
    }

    // Row q: its k nearest other rows (exact when its true k-th squared distance is at most
    // `bound`; +inf: no bound) into dist_out / idx_out (k entries; (+inf, -1) where fewer
    // exist). Returns the cells scanned.
    std::int64_t query(std::int64_t q, float bound, int k, float* dist_out, std::int64_t* idx_out) const {
        const std::int64_t nc = cells_.n_cells;
        std::vector<float> dc(static_cast<std::size_t>(nc));
        const float* qp = x_ + q * d_;
        centre_distances(qp, centres_, nc, d_, dc.data());
        std::vector<std::int64_t> order(static_cast<std::size_t>(nc));
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
            return dc[static_cast<std::size_t>(a)] < dc[static_cast<std::size_t>(b)] ||
                   (dc[static_cast<std::size_t>(a)] == dc[static_cast<std::size_t>(b)] && a < b);
        });
        TopK top(k);
        top.reset(bound);
        std::int64_t scanned = 0;
        for (const std::int64_t c : order) {
            const double near = std::sqrt(static_cast<double>(dc[static_cast<std::size_t>(c)]) / (1.0 + eps_)) -
                                radius_[static_cast<std::size_t>(c)];
            const double reach = std::sqrt(static_cast<double>(top.bound()) / (1.0 - eps_)) * (1.0 + 1e-12);
            if (near > reach) continue;  // bound +inf: reach is +inf, nothing skipped
            const std::int64_t lo = cells_.start[c];
            refine_one(x_, n_, d_, qp, cells_.members + lo, cells_.start[c + 1] - lo, q, top);
            ++scanned;
        }
        top.write(dist_out, idx_out);
        return scanned;
    }

   private:
    const float* x_;
    std::int64_t n_, d_;
    const float* centres_;
    Cells cells_;
    double eps_;
    std::vector<double> radius_;
};

}  // namespace datagauge::ivf
