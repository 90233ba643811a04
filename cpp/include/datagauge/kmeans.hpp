// k-means initialisation of the Gaussian mixture: greedy k-means++ seeding and Lloyd iterations.
//
// plusplus(): scikit-learn's greedy k-means++ (kmeans_plusplus): the first centre is a given
// row; each next centre is the best of `trials` candidates drawn with probability proportional
// to the squared distance to the nearest centre so far (the candidate that leaves the smallest
// total squared distance wins, the first on ties). The uniform draws come from the caller
// (Python's seeded Generator), so the result depends only on them and the data.
// lloyd(): Lloyd iterations as scikit-learn's KMeans(algorithm="lloyd") runs them: assign each
// row to its nearest centre, move every centre to the mean of its rows, stop once the centres
// move by at most `tol` (squared, summed), an empty cluster taking the row farthest from its
// centre (scikit-learn's relocation). Hamerly's distance bounds skip the rows whose centre
// cannot change (the labels stay those of full passes).
//
// Distances are exact differences summed in double (rows of float input are widened), in
// register tiles of the GMM kernels, with the kernel family gmm::dispatch() chooses; the
// reductions (nearest centre, k-means++ potentials, sums) are fused into the pass over a
// block of rows. Rows are split into fixed chunks whose partial sums merge in chunk order:
// the result does not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "gmm.hpp"
#include "parallel.hpp"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace datagauge::kmeans {

constexpr std::int64_t kChunk = 4096;  // rows per fixed partial result

// m centres (m x d, double) laid out for the distance tiles: transposed dp x mp, zero padded.
struct Centres {
    std::int64_t m, d, dp, mp;
    std::vector<double> t, ones;
    Centres(const double* c, std::int64_t m_, std::int64_t d_)
        : m(m_), d(d_), dp(gmm::padded(d_)), mp(m_ <= 4 ? 4 : (m_ + 7) / 8 * 8) {  // lanes: 4 (AVX2) or 8 (AVX-512)
        t.assign(static_cast<std::size_t>(dp * mp), 0.0);
        ones.assign(t.size(), 1.0);
        for (std::int64_t k = 0; k < m; ++k)
            for (std::int64_t j = 0; j < d; ++j) t[static_cast<std::size_t>(j * mp + k)] = c[k * d + j];
    }
};

// dst[0, d) = src[0, d) in double.
template <class T>
DATAGAUGE_GMM_INLINE void widen_row(double* dst, const T* src, std::int64_t d) {
    if constexpr (sizeof(T) == sizeof(double)) {
        gmm::copy_row(dst, reinterpret_cast<const double*>(src), d);
    } else {
        for (std::int64_t j = 0; j < d; ++j) dst[j] = static_cast<double>(src[j]);
    }
}

// Squared distances of the rows [r0, r1) of X to the centres, a block of gmm::kBlock rows at a
// time: f(b0, nb, xb, dist) gets the block's rows in double (xb: kBlock x dp, zero padded) and
// dist[b * C.mp + c] = ||x_(b0 + b) - centre_c||^2 (exact differences summed in double).
template <class T, int VW, class F>
DATAGAUGE_GMM_INLINE void distance_blocks(const T* X, std::int64_t r0, std::int64_t r1, const Centres& C, F&& f) {
    const gmm::FlushSubnormals ftz;
    const std::int64_t d = C.d, dp = C.dp;
    std::vector<double> xb(static_cast<std::size_t>(gmm::kBlock * dp), 0.0);
    std::vector<double> dist(static_cast<std::size_t>(gmm::kBlock * C.mp), 0.0);
    for (std::int64_t b0 = r0; b0 < r1; b0 += gmm::kBlock) {
        const std::int64_t nb = std::min<std::int64_t>(gmm::kBlock, r1 - b0);
        for (std::int64_t b = 0; b < nb; ++b) widen_row(xb.data() + b * dp, X + (b0 + b) * d, d);
        if (nb < gmm::kBlock) std::fill(xb.begin() + nb * dp, xb.end(), 0.0);
        gmm::diag_tiles<double, true, VW>(xb.data(), C.t.data(), C.ones.data(), dp, d, C.mp, dist.data());
        f(b0, nb, static_cast<const double*>(xb.data()), static_cast<const double*>(dist.data()));
    }
}

// Lloyd's assignment step on rows [s, e): labels, each row's squared distance to its centre,
// and the partial sums (K x dp, added to) and counts (K, added to) of each centre's rows.
template <class T>
struct AssignRows {
    const T* X;
    std::int64_t s, e;
    const Centres& C;
    std::int64_t* labels;
    double *own, *sums, *counts;
    template <int VW>
    DATAGAUGE_GMM_INLINE void run() const {
        if constexpr (VW == 64) {  // up to 4 centres fill one 32-byte vector already
            if (C.mp % 8 != 0) return run<32>();
        }
        const std::int64_t m = C.m, mp = C.mp, dp = C.dp;
        distance_blocks<T, VW>(X, s, e, C, [&](std::int64_t b0, std::int64_t nb, const double* xb, const double* dist) {
            for (std::int64_t b = 0; b < nb; ++b) {
                const double* db = dist + b * mp;
                std::int64_t arg = 0;
                double best = db[0];
                for (std::int64_t k = 1; k < m; ++k)
                    if (db[k] < best) {
                        best = db[k];
                        arg = k;
                    }
                labels[b0 + b] = arg;
                own[b0 + b] = best;
                counts[arg] += 1.0;
                double* sk = sums + arg * dp;
                const double* xr = xb + b * dp;
                for (std::int64_t j = 0; j < dp; ++j) sk[j] += xr[j];
            }
        });
    }
};

// Lloyd's assignment step on rows [s, e) with Hamerly's bounds (G. Hamerly, "Making k-means
// even faster", SDM 2010): upper[i] bounds the distance from row i to its centre, lower[i] the
// distance to every other centre. A row whose upper bound is below max(lower bound, half the
// gap from its centre to the nearest other centre) keeps its label without a distance; else
// its own distance is recomputed, and if the test still fails, its distances to all centres
// (in blocks of gmm::kBlock gathered rows, exact differences as above). The tests keep a
// relative margin of 1e-9, far above the rounding of the bounds, so every label equals the
// nearest centre's (first on ties) as a full pass would find it.
//   full: first pass (no bounds yet): every row gets all distances.
//   Otherwise the bounds are first moved by the centres' last moves: upper += move[label],
//   lower -= the largest move of another centre (move_max, or move_second for the row whose
//   centre moved most, centre arg_max).
// Then the chunk's rows are added to sums (K x dp) and counts (K), in row order.
template <class T>
struct BoundedAssignRows {
    const T* X;
    std::int64_t s, e;
    const Centres& C;
    const double* centres;   // K x d, row-major
    const double* half_gap;  // K
    const double* move;      // K
    double move_max, move_second;
    std::int64_t arg_max;
    bool full;
    std::int64_t* labels;
    double *upper, *lower, *sums, *counts;
    template <int VW>
    DATAGAUGE_GMM_INLINE void run() const {
        if constexpr (VW == 64) {
            if (C.mp % 8 != 0) return run<32>();
        }
        constexpr double kMargin = 1.0 - 1e-9;
        const gmm::FlushSubnormals ftz;
        const std::int64_t m = C.m, mp = C.mp, d = C.d, dp = C.dp;
        std::vector<double> xb(static_cast<std::size_t>(gmm::kBlock * dp), 0.0);
        std::vector<double> dist(static_cast<std::size_t>(gmm::kBlock * mp), 0.0);
        std::int64_t idx[gmm::kBlock];
        std::int64_t cnt = 0;
        auto flush = [&]() {
            gmm::diag_tiles<double, true, VW>(xb.data(), C.t.data(), C.ones.data(), dp, d, mp, dist.data());
            for (std::int64_t b = 0; b < cnt; ++b) {
                const double* db = dist.data() + b * mp;
                std::int64_t arg = 0;
                double best = db[0], second = std::numeric_limits<double>::infinity();
                for (std::int64_t k = 1; k < m; ++k) {
                    if (db[k] < best) {
                        second = best;
                        best = db[k];
                        arg = k;
                    } else if (db[k] < second) {
                        second = db[k];
                    }
                }
                const std::int64_t i = idx[b];
                labels[i] = arg;
                upper[i] = std::sqrt(best);
                lower[i] = std::sqrt(second);
            }
            cnt = 0;
        };
        for (std::int64_t i = s; i < e; ++i) {
            const T* xi = X + i * d;
            if (!full) {
                const std::int64_t a = labels[i];
                upper[i] += move[a];
                lower[i] -= a == arg_max ? move_second : move_max;
                const double bound = std::max(half_gap[a], lower[i]);
                if (upper[i] < bound * kMargin) continue;
                const double* ca = centres + a * d;
                double dd = 0;
                for (std::int64_t j = 0; j < d; ++j) {
                    const double t = static_cast<double>(xi[j]) - ca[j];
                    dd += t * t;
                }
                upper[i] = std::sqrt(dd);
                if (upper[i] < bound * kMargin) continue;
            }
            widen_row(xb.data() + cnt * dp, xi, d);
            idx[cnt++] = i;
            if (cnt == gmm::kBlock) flush();
        }
        if (cnt > 0) flush();
        for (std::int64_t i = s; i < e; ++i) {
            const std::int64_t a = labels[i];
            counts[a] += 1.0;
            double* sk = sums + a * dp;
            const T* xi = X + i * d;
            for (std::int64_t j = 0; j < d; ++j) sk[j] += static_cast<double>(xi[j]);
        }
    }
};

// One k-means++ step on rows [s, e): dd[(i - s) * m + t] = min(closest[i], ||x_i - cand_t||^2)
// and part[t] = the sum of these over the rows (in row order).
template <class T>
struct TrialRows {
    const T* X;
    std::int64_t s, e;
    const Centres& C;
    const double* closest;
    double *dd, *part;
    template <int VW>
    DATAGAUGE_GMM_INLINE void run() const {
        if constexpr (VW == 64) {
            if (C.mp % 8 != 0) return run<32>();
        }
        const std::int64_t m = C.m, mp = C.mp;
        for (std::int64_t t = 0; t < m; ++t) part[t] = 0;
        distance_blocks<T, VW>(X, s, e, C, [&](std::int64_t b0, std::int64_t nb, const double*, const double* dist) {
            for (std::int64_t b = 0; b < nb; ++b) {
                const double c = closest[b0 + b];
                double* out = dd + (b0 - s + b) * m;
                for (std::int64_t t = 0; t < m; ++t) {
                    const double v = std::min(dist[b * mp + t], c);
                    out[t] = v;
                    part[t] += v;
                }
            }
        });
    }
};

// out[i - s] = ||x_i - centre_0||^2 for one centre (the first k-means++ seed).
template <class T>
struct FirstRows {
    const T* X;
    std::int64_t s, e;
    const Centres& C;
    double* out;
    template <int VW>
    DATAGAUGE_GMM_INLINE void run() const {
        distance_blocks<T, 32>(X, s, e, C, [&](std::int64_t b0, std::int64_t nb, const double*, const double* dist) {
            for (std::int64_t b = 0; b < nb; ++b) out[b0 - s + b] = dist[b * C.mp];
        });
    }
};

template <class T>
void copy_row(const T* X, std::int64_t d, std::int64_t i, double* dst) {
    for (std::int64_t j = 0; j < d; ++j) dst[j] = static_cast<double>(X[i * d + j]);
}

// Greedy k-means++ on X (n x d). first: index of the first centre; u: (K - 1) x trials uniform
// draws in [0, 1). Writes centres (K x d) and their row indices (K). `check` is called between
// centres (interrupts).
template <class T, class Check>
void plusplus(const T* X, std::int64_t n, std::int64_t d, std::int64_t K, std::int64_t first, const double* u,
              std::int64_t trials, int n_threads, double* centres, std::int64_t* chosen, Check&& check) {
    if (K < 1 || K > n) throw std::invalid_argument("k-means++ needs 1 <= n_clusters <= n_samples");
    if (first < 0 || first >= n) throw std::invalid_argument("the first centre must be a row of X");
    const std::size_t N = static_cast<std::size_t>(n);
    const std::int64_t n_chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> closest(N), cum(N), dist(N * static_cast<std::size_t>(trials));
    std::vector<double> part(static_cast<std::size_t>(n_chunks * trials));
    copy_row(X, d, first, centres);
    chosen[0] = first;
    {
        const Centres C(centres, 1, d);
        parallel_for(N, n_threads, static_cast<std::size_t>(kChunk), [&](std::size_t s, std::size_t e) {
            gmm::dispatch(FirstRows<T>{X, static_cast<std::int64_t>(s), static_cast<std::int64_t>(e), C, closest.data() + s});
        });
    }
    std::vector<std::int64_t> cand(static_cast<std::size_t>(trials));
    std::vector<double> cc(static_cast<std::size_t>(trials * d));
    for (std::int64_t c = 1; c < K; ++c) {
        check();
        double total = 0;
        for (std::size_t i = 0; i < N; ++i) {
            total += closest[i];
            cum[i] = total;
        }
        for (std::int64_t t = 0; t < trials; ++t) {
            const double v = u[(c - 1) * trials + t];
            std::int64_t idx;
            if (total > 0) {  // first i with cum[i] >= v * total (numpy's searchsorted)
                idx = std::lower_bound(cum.begin(), cum.end(), v * total) - cum.begin();
            } else {  // every row coincides with a centre: any row will do
                idx = static_cast<std::int64_t>(v * static_cast<double>(n));
            }
            cand[t] = std::min<std::int64_t>(std::max<std::int64_t>(idx, 0), n - 1);
            copy_row(X, d, cand[t], cc.data() + t * d);
        }
        const Centres C(cc.data(), trials, d);
        parallel_for(N, n_threads, static_cast<std::size_t>(kChunk), [&](std::size_t s, std::size_t e) {
            double* dd = dist.data() + s * static_cast<std::size_t>(trials);
            double* p = part.data() + (s / static_cast<std::size_t>(kChunk)) * static_cast<std::size_t>(trials);
            gmm::dispatch(TrialRows<T>{X, static_cast<std::int64_t>(s), static_cast<std::int64_t>(e), C, closest.data(), dd, p});
        });
        std::int64_t best = 0;
        double best_pot = 0;
        for (std::int64_t t = 0; t < trials; ++t) {
            double pot = 0;
            for (std::int64_t ch = 0; ch < n_chunks; ++ch) pot += part[static_cast<std::size_t>(ch * trials + t)];
            if (t == 0 || pot < best_pot) {
                best = t;
                best_pot = pot;
            }
        }
        for (std::size_t i = 0; i < N; ++i)
            closest[i] = dist[i * static_cast<std::size_t>(trials) + static_cast<std::size_t>(best)];
        std::copy(cc.begin() + best * d, cc.begin() + (best + 1) * d, centres + c * d);
        chosen[c] = cand[best];
    }
}

// Mean over the features of each feature's variance (ddof 0) of X (n x d), in double.
template <class T>
double mean_variance(const T* X, std::int64_t n, std::int64_t d) {
    std::vector<double> mean(static_cast<std::size_t>(d), 0.0), var(static_cast<std::size_t>(d), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < d; ++j) mean[j] += static_cast<double>(X[i * d + j]);
    for (std::int64_t j = 0; j < d; ++j) mean[j] /= static_cast<double>(n);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < d; ++j) {
            const double t = static_cast<double>(X[i * d + j]) - mean[j];
            var[j] += t * t;
        }
    double s = 0;
    for (std::int64_t j = 0; j < d; ++j) s += var[j] / static_cast<double>(n);
    return s / static_cast<double>(d);
}

// Lloyd iterations from `centres` (K x d, updated in place), at most max_iter, until the
// centres move by at most tol_rel * mean_variance(X) (sum of squared moves). Returns the number
// of iterations run. Assignments use Hamerly's bounds (BoundedAssignRows): the same labels as
// full passes, most rows without a distance once the centres settle. An iteration that leaves
// a cluster empty is redone as a full pass (AssignRows), whose distances choose the rows that
// move to the empty clusters (scikit-learn's relocation); the next one starts fresh bounds.
template <class T, class Check>
std::int64_t lloyd(const T* X, std::int64_t n, std::int64_t d, std::int64_t K, double* centres, std::int64_t max_iter,
                   double tol_rel, int n_threads, Check&& check) {
    if (K < 1 || K > n) throw std::invalid_argument("k-means needs 1 <= n_clusters <= n_samples");
    const double tol = tol_rel * mean_variance(X, n, d);
    const std::int64_t dp = gmm::padded(d);
    const std::size_t N = static_cast<std::size_t>(n), Kd = static_cast<std::size_t>(K * d);
    const std::size_t Kdp = static_cast<std::size_t>(K * dp);
    const std::int64_t n_chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> psum(static_cast<std::size_t>(n_chunks) * Kdp), pcnt(static_cast<std::size_t>(n_chunks * K));
    std::vector<std::int64_t> labels(N);
    std::vector<double> own(N), upper(N), lower(N), sums(Kd), counts(static_cast<std::size_t>(K)), next(Kd);
    std::vector<double> half_gap(static_cast<std::size_t>(K)), move(static_cast<std::size_t>(K), 0.0);
    double move_max = 0, move_second = 0;
    std::int64_t arg_max = 0;
    bool full = true;
    auto merge = [&]() {
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(counts.begin(), counts.end(), 0.0);
        for (std::int64_t ch = 0; ch < n_chunks; ++ch) {
            for (std::int64_t k = 0; k < K; ++k)
                for (std::int64_t j = 0; j < d; ++j)
                    sums[static_cast<std::size_t>(k * d + j)] +=
                        psum[static_cast<std::size_t>(ch) * Kdp + static_cast<std::size_t>(k * dp + j)];
            for (std::int64_t k = 0; k < K; ++k) counts[k] += pcnt[static_cast<std::size_t>(ch * K + k)];
        }
    };
    // One assignment kernel (make(s, e, sums, counts)) per fixed chunk of rows, each into its
    // own zeroed partial sums, then merged in chunk order.
    auto assign_chunks = [&](auto make) {
        parallel_for(N, n_threads, static_cast<std::size_t>(kChunk), [&](std::size_t s, std::size_t e) {
            const std::size_t ch = s / static_cast<std::size_t>(kChunk);
            double* ps = psum.data() + ch * Kdp;
            double* pc = pcnt.data() + ch * static_cast<std::size_t>(K);
            std::fill(ps, ps + Kdp, 0.0);
            std::fill(pc, pc + K, 0.0);
            gmm::dispatch(make(static_cast<std::int64_t>(s), static_cast<std::int64_t>(e), ps, pc));
        });
        merge();
    };
    std::int64_t it = 0;
    while (it < max_iter) {
        check();
        ++it;
        const Centres C(centres, K, d);
        for (std::int64_t k = 0; k < K; ++k) {  // half the distance to the nearest other centre
            double g = std::numeric_limits<double>::infinity();
            for (std::int64_t q = 0; q < K; ++q) {
                if (q == k) continue;
                double dd = 0;
                for (std::int64_t j = 0; j < d; ++j) {
                    const double t = centres[k * d + j] - centres[q * d + j];
                    dd += t * t;
                }
                g = std::min(g, dd);
            }
            half_gap[k] = 0.5 * std::sqrt(g);
        }
        assign_chunks([&](std::int64_t s, std::int64_t e, double* ps, double* pc) {
            return BoundedAssignRows<T>{X, s, e, C, centres, half_gap.data(), move.data(), move_max, move_second,
                                        arg_max, full, labels.data(), upper.data(), lower.data(), ps, pc};
        });
        full = false;
        std::vector<std::int64_t> empty;
        for (std::int64_t k = 0; k < K; ++k)
            if (counts[k] == 0) empty.push_back(k);
        if (!empty.empty()) {  // the farthest rows (from their centres) become the empty clusters
            assign_chunks([&](std::int64_t s, std::int64_t e, double* ps, double* pc) {
                return AssignRows<T>{X, s, e, C, labels.data(), own.data(), ps, pc};
            });
            full = true;
            std::vector<std::int64_t> order(N);
            std::iota(order.begin(), order.end(), 0);
            const std::size_t ne = std::min(empty.size(), N);
            std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(ne), order.end(),
                              [&](std::int64_t a, std::int64_t b) { return own[a] > own[b] || (own[a] == own[b] && a < b); });
            for (std::size_t e = 0; e < ne; ++e) {
                const std::int64_t far = order[e], old = labels[static_cast<std::size_t>(far)], k = empty[e];
                for (std::int64_t j = 0; j < d; ++j) {
                    const double v = static_cast<double>(X[far * d + j]);
                    sums[old * d + j] -= v;
                    sums[k * d + j] = v;
                }
                counts[old] -= 1.0;
                counts[k] = 1.0;
            }
        }
        double shift = 0;
        move_max = move_second = 0;
        arg_max = 0;
        for (std::int64_t k = 0; k < K; ++k) {
            double mk = 0;
            for (std::int64_t j = 0; j < d; ++j) {
                const double v = counts[k] > 0 ? sums[k * d + j] / counts[k] : sums[k * d + j];
                const double m = v - centres[k * d + j];
                mk += m * m;
                next[k * d + j] = v;
            }
            shift += mk;
            move[k] = std::sqrt(mk);
            if (move[k] > move_max) {
                move_second = move_max;
                move_max = move[k];
                arg_max = k;
            } else if (move[k] > move_second) {
                move_second = move[k];
            }
        }
        std::copy(next.begin(), next.end(), centres);
        if (shift <= tol) break;
    }
    return it;
}

}  // namespace datagauge::kmeans

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
