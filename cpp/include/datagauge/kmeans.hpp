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
// centre (scikit-learn's relocation).
//
// Distances are exact differences summed in double (rows of float input are widened), in
// register tiles of the GMM kernels. Rows are split into fixed chunks whose partial sums merge
// in chunk order: the result does not depend on the thread count.
#pragma once

#include <algorithm>
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

// out[(i - r0) * C.m + c] = ||x_i - centre_c||^2 (double) for the rows [r0, r1) of X (n x d).
template <class T, int VW>
DATAGAUGE_GMM_INLINE void sqdist_rows_body(const T* X, std::int64_t r0, std::int64_t r1, const Centres& C,
                                           double* out) {
    const gmm::FlushSubnormals ftz;
    const std::int64_t d = C.d, dp = C.dp, mp = C.mp, m = C.m;
    std::vector<double> xb(static_cast<std::size_t>(gmm::kBlock * dp), 0.0);
    std::vector<double> dist(static_cast<std::size_t>(gmm::kBlock * mp), 0.0);
    for (std::int64_t b0 = r0; b0 < r1; b0 += gmm::kBlock) {
        const std::int64_t nb = std::min<std::int64_t>(gmm::kBlock, r1 - b0);
        for (std::int64_t b = 0; b < nb; ++b)
            for (std::int64_t j = 0; j < d; ++j) xb[static_cast<std::size_t>(b * dp + j)] = static_cast<double>(X[(b0 + b) * d + j]);
        for (std::int64_t b = nb; b < gmm::kBlock; ++b)
            for (std::int64_t j = 0; j < d; ++j) xb[static_cast<std::size_t>(b * dp + j)] = 0.0;
        gmm::diag_tiles<double, true, VW>(xb.data(), C.t.data(), C.ones.data(), dp, d, mp, dist.data());
        for (std::int64_t b = 0; b < nb; ++b)
            for (std::int64_t k = 0; k < m; ++k) out[(b0 - r0 + b) * m + k] = dist[static_cast<std::size_t>(b * mp + k)];
    }
}

template <class T>
DATAGAUGE_GMM_CLONES void sqdist_rows_v3(const T* X, std::int64_t r0, std::int64_t r1, const Centres& C, double* out) {
    sqdist_rows_body<T, 32>(X, r0, r1, C, out);
}

#if defined(DATAGAUGE_GMM_V4)
template <class T>
__attribute__((target("arch=x86-64-v4"))) void sqdist_rows_v4(const T* X, std::int64_t r0, std::int64_t r1,
                                                               const Centres& C, double* out) {
    sqdist_rows_body<T, 64>(X, r0, r1, C, out);
}
#endif

// The widest kernel the CPU runs (as gmm::process_rows).
template <class T>
void sqdist_rows(const T* X, std::int64_t r0, std::int64_t r1, const Centres& C, double* out) {
#if defined(DATAGAUGE_GMM_V4)
    if (C.mp % 8 == 0 && gmm::cpu_has_v4()) {  // up to 4 centres fill one AVX2 vector already
        sqdist_rows_v4<T>(X, r0, r1, C, out);
        return;
    }
#endif
    sqdist_rows_v3<T>(X, r0, r1, C, out);
}

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
            sqdist_rows<T>(X, static_cast<std::int64_t>(s), static_cast<std::int64_t>(e), C, closest.data() + s);
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
            sqdist_rows<T>(X, static_cast<std::int64_t>(s), static_cast<std::int64_t>(e), C, dd);
            double* p = part.data() + (s / static_cast<std::size_t>(kChunk)) * static_cast<std::size_t>(trials);
            for (std::int64_t t = 0; t < trials; ++t) p[t] = 0;
            for (std::size_t i = s; i < e; ++i)
                for (std::int64_t t = 0; t < trials; ++t) {
                    double& v = dd[(i - s) * static_cast<std::size_t>(trials) + static_cast<std::size_t>(t)];
                    v = std::min(v, closest[i]);
                    p[t] += v;
                }
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
// of iterations run.
template <class T, class Check>
std::int64_t lloyd(const T* X, std::int64_t n, std::int64_t d, std::int64_t K, double* centres, std::int64_t max_iter,
                   double tol_rel, int n_threads, Check&& check) {
    if (K < 1 || K > n) throw std::invalid_argument("k-means needs 1 <= n_clusters <= n_samples");
    const double tol = tol_rel * mean_variance(X, n, d);
    const std::size_t N = static_cast<std::size_t>(n), Kd = static_cast<std::size_t>(K * d);
    const std::int64_t n_chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> psum(static_cast<std::size_t>(n_chunks) * Kd), pcnt(static_cast<std::size_t>(n_chunks * K));
    std::vector<std::int64_t> labels(N);
    std::vector<double> own(N), sums(Kd), counts(static_cast<std::size_t>(K)), next(Kd);
    std::int64_t it = 0;
    while (it < max_iter) {
        check();
        ++it;
        const Centres C(centres, K, d);
        parallel_for(N, n_threads, static_cast<std::size_t>(kChunk), [&](std::size_t s, std::size_t e) {
            std::vector<double> dist((e - s) * static_cast<std::size_t>(K));
            sqdist_rows<T>(X, static_cast<std::int64_t>(s), static_cast<std::int64_t>(e), C, dist.data());
            const std::size_t ch = s / static_cast<std::size_t>(kChunk);
            double* ps = psum.data() + ch * Kd;
            double* pc = pcnt.data() + ch * static_cast<std::size_t>(K);
            std::fill(ps, ps + Kd, 0.0);
            std::fill(pc, pc + K, 0.0);
            for (std::size_t i = s; i < e; ++i) {
                const double* di = dist.data() + (i - s) * static_cast<std::size_t>(K);
                std::int64_t arg = 0;
                for (std::int64_t k = 1; k < K; ++k)
                    if (di[k] < di[arg]) arg = k;
                labels[i] = arg;
                own[i] = di[arg];
                pc[arg] += 1.0;
                double* sk = ps + arg * d;
                for (std::int64_t j = 0; j < d; ++j) sk[j] += static_cast<double>(X[static_cast<std::int64_t>(i) * d + j]);
            }
        });
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(counts.begin(), counts.end(), 0.0);
        for (std::int64_t ch = 0; ch < n_chunks; ++ch) {
            for (std::size_t q = 0; q < Kd; ++q) sums[q] += psum[static_cast<std::size_t>(ch) * Kd + q];
            for (std::int64_t k = 0; k < K; ++k) counts[k] += pcnt[static_cast<std::size_t>(ch * K + k)];
        }
        std::vector<std::int64_t> empty;
        for (std::int64_t k = 0; k < K; ++k)
            if (counts[k] == 0) empty.push_back(k);
        if (!empty.empty()) {  // the farthest rows (from their centres) become the empty clusters
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
        for (std::int64_t k = 0; k < K; ++k)
            for (std::int64_t j = 0; j < d; ++j) {
                const double v = counts[k] > 0 ? sums[k * d + j] / counts[k] : sums[k * d + j];
                const double m = v - centres[k * d + j];
                shift += m * m;
                next[k * d + j] = v;
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
