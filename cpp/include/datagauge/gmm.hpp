// Gaussian mixture EM as mergeable sufficient statistics over blocks of rows.
//
// accumulate(): E-step (log-probabilities, log-sum-exp, responsibilities) over a block plus the
// statistics the M-step needs, per component k:
//     N_k = sum_i r_ik,  S_k = sum_i r_ik (x_i - c_k),  Q_k = sum_i r_ik (x_i - c_k)(x_i - c_k)^T
// (diag/spherical keep only the diagonal of Q_k; tied keeps one Q = sum_i (x_i - c)(x_i - c)^T),
// with a shift c_k (the current means) so that no E[xx^T] - mu mu^T cancellation occurs on data
// far from the origin. Statistics of blocks with the same shift add (merge), so the same code
// runs in one block, chunked, out of core or on several machines.
// m_step(): merged statistics -> weights, means, covariances (+ reg_covar) and the Cholesky
// factors of the precisions, exactly as scikit-learn's GaussianMixture computes them.
// score(): per-sample log-likelihood and optionally the responsibilities.
//
// Hot loops work on blocks of rows with zero-padded feature dimensions and register tiles
// (a fixed RB x CB accumulator), written so that GCC vectorises them; float input is computed
// in float and summed into double statistics, double input is computed in double. One pass
// over a block does the E-step (log-densities, log-sum-exp, responsibilities) and adds the
// block's statistics while its rows are in L1. process_rows() runs the kernels of the family
// chosen at run time (dispatch(): AVX-512 with 64-byte vectors of double, AVX2+FMA, or the
// baseline build; the CPU's best capped by DATAGAUGE_SIMD, never a host-CPU build flag), and
// flushes subnormals (see FlushSubnormals) while it runs. Statistics go into padded double
// accumulators per call and are added to the Stats at its end.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include "simd.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DATAGAUGE_GMM_ISA 1  // x86-64-v3 / v4 kernels beside the baseline ones, chosen at run time
#endif

// Helpers of the per-instruction-set kernels must be inlined into them to get that instruction set.
#if defined(__GNUC__)
#define DATAGAUGE_GMM_INLINE __attribute__((always_inline)) inline
#else
#define DATAGAUGE_GMM_INLINE inline
#endif

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // vector helpers are inline: no ABI boundary is crossed
#endif

namespace datagauge::gmm {

// Flushes subnormal results and inputs to zero on this thread while alive (x86 MXCSR FTZ and
// DAZ bits), restoring the caller's mode after. Responsibilities of far components reach
// 1e-300 and below; products with them are subnormal, which costs ~100 cycles each on x86
// (an EM step on well-separated data ran 10x slower). Values below 2.2e-308 (double) /
// 1.2e-38 (float) then count as 0: far below anything the statistics can resolve.
struct FlushSubnormals {
#if defined(__x86_64__) || defined(_M_X64)
    unsigned int saved;
    FlushSubnormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
    ~FlushSubnormals() { _mm_setcsr(saved); }
#endif
    FlushSubnormals(const FlushSubnormals&) = delete;
    FlushSubnormals& operator=(const FlushSubnormals&) = delete;
};

enum class Cov { full, tied, diag, spherical };

inline Cov parse_cov(const std::string& s) {
    if (s == "full") return Cov::full;
    if (s == "tied") return Cov::tied;
    if (s == "diag") return Cov::diag;
    if (s == "spherical") return Cov::spherical;
    throw std::invalid_argument("covariance_type must be 'full', 'tied', 'diag' or 'spherical', got '" + s + "'");
}

inline const char* cov_name(Cov c) {
    switch (c) {
        case Cov::full: return "full";
        case Cov::tied: return "tied";
        case Cov::diag: return "diag";
        default: return "spherical";
    }
}

constexpr std::int64_t kCB = 8;  // tile columns
constexpr std::int64_t kBlock = 32;  // rows per block (multiple of the row tile)

inline std::int64_t padded(std::int64_t d) { return (d + kCB - 1) / kCB * kCB; }

// Number of precision-Cholesky values per covariance type.
inline std::int64_t prec_size(Cov cov, std::int64_t K, std::int64_t d) {
    switch (cov) {
        case Cov::full: return K * d * d;
        case Cov::tied: return d * d;
        case Cov::diag: return K * d;
        default: return K;
    }
}

// Second-moment values per covariance type (upper triangles stored as full padded squares).
inline std::int64_t q_size(Cov cov, std::int64_t K, std::int64_t d) {
    switch (cov) {
        case Cov::full: return K * d * d;
        case Cov::tied: return d * d;
        default: return K * d;
    }
}

// Mergeable sufficient statistics (double). Q for full/tied is a d x d row-major square of
// which the upper triangle (j >= i) is accumulated; m_step mirrors it.
struct Stats {
    Cov cov = Cov::diag;
    std::int64_t K = 0, d = 0;
    double n = 0;        // rows seen
    double loglik = 0;   // sum of per-row log-likelihoods (0 when responsibilities were given)
    std::vector<double> shift;  // K x d (tied: every row equal; row 0 is used)
    std::vector<double> nk;     // K
    std::vector<double> s;      // K x d
    std::vector<double> q;      // see q_size

    Stats() = default;
    Stats(Cov c, std::int64_t K_, std::int64_t d_, std::vector<double> shift_)
        : cov(c), K(K_), d(d_), shift(std::move(shift_)), nk(static_cast<std::size_t>(K_), 0.0),
          s(static_cast<std::size_t>(K_ * d_), 0.0), q(static_cast<std::size_t>(q_size(c, K_, d_)), 0.0) {}

    void merge(const Stats& o) {
        if (o.cov != cov || o.K != K || o.d != d)
            throw std::invalid_argument("cannot merge statistics of different models (covariance type, "
                                        "n_components or n_features differ)");
        if (o.shift != shift)
            throw std::invalid_argument("cannot merge statistics accumulated with different shifts; "
                                        "accumulate every block with the same model parameters");
        n += o.n;
        loglik += o.loglik;
        for (std::size_t i = 0; i < nk.size(); ++i) nk[i] += o.nk[i];
        for (std::size_t i = 0; i < s.size(); ++i) s[i] += o.s[i];
        for (std::size_t i = 0; i < q.size(); ++i) q[i] += o.q[i];
    }
};

// Model parameters (double), as scikit-learn stores them.
struct Params {
    Cov cov = Cov::diag;
    std::int64_t K = 0, d = 0;
    std::vector<double> weights;     // K
    std::vector<double> means;       // K x d
    std::vector<double> covariances; // full K x d x d, tied d x d, diag K x d, spherical K
    std::vector<double> prec_chol;   // same shapes; full/tied upper triangular
};

// Parameters laid out for the kernels in compute type T, padded to dp columns.
template <class T>
struct Prepared {
    Cov cov;
    std::int64_t K, d, dp;
    std::vector<double> log_const;  // log w_k + log det(prec_chol_k) - d/2 log(2 pi)
    std::vector<T> means;           // K x dp
    std::vector<T> prec;            // full K x dp x dp, tied dp x dp (upper, zero padded); diag K x dp
                                    // (squared); spherical K (squared)
    std::vector<T> tied_c;          // dp: centre for tied
    std::vector<T> tied_m;          // K x dp: (mu_k - c) P
    std::vector<T> shift;           // K x dp (statistics shift)
    std::int64_t Kp = 0;            // K padded to the SIMD width (diag, spherical)
    std::vector<T> means_t;         // dp x Kp: means transposed (diag, spherical)
    std::vector<T> prec_t;          // dp x Kp: squared precision per feature (spherical: repeated)
    // Hard assignment (set_nearest): every row's responsibility is 1 for its nearest centre
    // (squared Euclidean distance, first on ties), 0 elsewhere; no log-likelihood.
    bool nearest = false;
    std::int64_t Kn = 0;            // K padded to the SIMD width
    std::vector<T> near_t, ones_t;  // dp x Kn: centres transposed; unit weights

    void set_nearest(const double* centres) {
        constexpr std::int64_t L = 8;
        nearest = true;
        Kn = (K + L - 1) / L * L;
        near_t.assign(static_cast<std::size_t>(dp * Kn), T(0));
        ones_t.assign(near_t.size(), T(1));
        for (std::int64_t k = 0; k < K; ++k)
            for (std::int64_t j = 0; j < d; ++j)
                near_t[static_cast<std::size_t>(j * Kn + k)] = static_cast<T>(centres[k * d + j]);
    }

    Prepared(Cov c, std::int64_t K_, std::int64_t d_, const double* w, const double* mu, const double* pc,
             const double* shift_in)
        : cov(c), K(K_), d(d_), dp(padded(d_)) {
        const auto Kd = static_cast<std::size_t>(K * dp);
        means.assign(Kd, T(0));
        shift.assign(Kd, T(0));
        log_const.assign(static_cast<std::size_t>(K), 0.0);
        for (std::int64_t k = 0; k < K; ++k)
            for (std::int64_t j = 0; j < d; ++j) {
                means[static_cast<std::size_t>(k * dp + j)] = static_cast<T>(mu[k * d + j]);
                if (shift_in) shift[static_cast<std::size_t>(k * dp + j)] = static_cast<T>(shift_in[k * d + j]);
            }
        std::vector<double> logdet(static_cast<std::size_t>(K), 0.0);
        switch (cov) {
            case Cov::full:
                prec.assign(static_cast<std::size_t>(K * dp * dp), T(0));
                for (std::int64_t k = 0; k < K; ++k)
                    for (std::int64_t i = 0; i < d; ++i) {
                        logdet[k] += std::log(pc[(k * d + i) * d + i]);
                        for (std::int64_t j = i; j < d; ++j)
                            prec[static_cast<std::size_t>((k * dp + i) * dp + j)] = static_cast<T>(pc[(k * d + i) * d + j]);
                    }
                break;
            case Cov::tied: {
                prec.assign(static_cast<std::size_t>(dp * dp), T(0));
                double ld = 0;
                for (std::int64_t i = 0; i < d; ++i) {
                    ld += std::log(pc[i * d + i]);
                    for (std::int64_t j = i; j < d; ++j)
                        prec[static_cast<std::size_t>(i * dp + j)] = static_cast<T>(pc[i * d + j]);
                }
                std::fill(logdet.begin(), logdet.end(), ld);
                // centre: the mean of the component means
                std::vector<double> c(static_cast<std::size_t>(d), 0.0);
                for (std::int64_t k = 0; k < K; ++k)
                    for (std::int64_t j = 0; j < d; ++j) c[j] += mu[k * d + j] / static_cast<double>(K);
                tied_c.assign(static_cast<std::size_t>(dp), T(0));
                for (std::int64_t j = 0; j < d; ++j) tied_c[j] = static_cast<T>(c[j]);
                tied_m.assign(Kd, T(0));
                for (std::int64_t k = 0; k < K; ++k)
                    for (std::int64_t j = 0; j < d; ++j) {
                        double acc = 0;
                        for (std::int64_t i = 0; i <= j; ++i) acc += (mu[k * d + i] - c[i]) * pc[i * d + j];
                        tied_m[static_cast<std::size_t>(k * dp + j)] = static_cast<T>(acc);
                    }
                break;
            }
            case Cov::diag:
                prec.assign(Kd, T(0));
                for (std::int64_t k = 0; k < K; ++k)
                    for (std::int64_t j = 0; j < d; ++j) {
                        const double p = pc[k * d + j];
                        logdet[k] += std::log(p);
                        prec[static_cast<std::size_t>(k * dp + j)] = static_cast<T>(p * p);
                    }
                break;
            case Cov::spherical:
                prec.assign(static_cast<std::size_t>(K), T(0));
                for (std::int64_t k = 0; k < K; ++k) {
                    logdet[k] = static_cast<double>(d) * std::log(pc[k]);
                    prec[k] = static_cast<T>(pc[k] * pc[k]);
                }
                break;
        }
        if (cov == Cov::diag || cov == Cov::spherical) {
            constexpr std::int64_t L = 8;  // lanes of the widest vector used (8 doubles, 8 floats)
            Kp = (K + L - 1) / L * L;
            means_t.assign(static_cast<std::size_t>(dp * Kp), T(0));
            prec_t.assign(means_t.size(), T(0));
            for (std::int64_t k = 0; k < K; ++k)
                for (std::int64_t j = 0; j < d; ++j) {
                    means_t[static_cast<std::size_t>(j * Kp + k)] = means[static_cast<std::size_t>(k * dp + j)];
                    prec_t[static_cast<std::size_t>(j * Kp + k)] =
                        cov == Cov::diag ? prec[static_cast<std::size_t>(k * dp + j)] : prec[static_cast<std::size_t>(k)];
                }
        }
        const double half_log2pi = 0.5 * static_cast<double>(d) * std::log(2.0 * 3.14159265358979323846);
        for (std::int64_t k = 0; k < K; ++k) log_const[k] = std::log(w[k]) + logdet[k] - half_log2pi;
    }
};


// A 32-byte SIMD vector of T (GCC/Clang vector extension: one AVX register in the AVX2 clone,
// two SSE registers otherwise); kNV of them span a tile's kCB columns. Vectors are only ever
// local variables (never passed to or returned from functions), so no ABI question arises.
// The AVX-512 kernels (process_rows_v4) use 64-byte vectors of double (8 lanes = kCB).
#if defined(__GNUC__)
template <class T, int VW = 32>
struct Simd {
    typedef T type __attribute__((vector_size(VW)));
    static constexpr std::int64_t kLanes = VW / static_cast<std::int64_t>(sizeof(T));
};
#else
template <class T, int VW = 32>
struct Simd {
    struct type {
        T v[VW / sizeof(T)];
        T operator[](std::int64_t i) const { return v[i]; }
        T& operator[](std::int64_t i) { return v[i]; }
        type& operator+=(const type& o) {
            for (std::size_t c = 0; c < VW / sizeof(T); ++c) v[c] += o.v[c];
            return *this;
        }
    };
    static constexpr std::int64_t kLanes = VW / static_cast<std::int64_t>(sizeof(T));
};
#endif

#if defined(__GNUC__)
#define DG_SPLAT(V, T, a) (V{} + static_cast<T>(a))
#define DG_MUL(a, v) ((a) * (v))
#define DG_SUB(v, a) ((v) - (a))  // vector v - scalar a: a broadcast operand, no add of a zero vector
#else
#define DG_SPLAT(V, T, a) dg_splat<V, T>(a)
#define DG_MUL(a, v) dg_mul(a, v)
#define DG_SUB(v, a) dg_sub(v, a)
template <class V, class T>
inline V dg_splat(T a) {
    V r;
    for (std::size_t c = 0; c < sizeof(V) / sizeof(T); ++c) r[c] = a;
    return r;
}
template <class V, class T>
inline V dg_sub(const V& v, T a) {
    V r;
    for (std::size_t c = 0; c < sizeof(V) / sizeof(T); ++c) r[c] = v[c] - a;
    return r;
}
template <class V, class T>
inline V dg_mul(T a, const V& v) {
    V r;
    for (std::size_t c = 0; c < sizeof(V) / sizeof(T); ++c) r[c] = a * v[c];
    return r;
}
#endif

// Z = D P over a block, or ||Z_b||^2 added to maha[b]; D: kBlock x dp, P: dp x dp upper
// triangular (zero padded). A register tile of kRB rows x one vector (CW columns) accumulates
// over i; only rows i < j0 + CW of P are non-zero in the tile's columns.
constexpr std::int64_t kRB = 8;

template <class T, bool kSquare, int VW = 32>
DATAGAUGE_GMM_INLINE void dp_tiles(const T* D, const T* P, std::int64_t dp, double* maha, T* Z) {
    using V = typename Simd<T, VW>::type;
    constexpr std::int64_t CW = Simd<T, VW>::kLanes;
    for (std::int64_t b0 = 0; b0 < kBlock; b0 += kRB) {
        const T* drow = D + b0 * dp;
        for (std::int64_t j0 = 0; j0 < dp; j0 += CW) {
            V acc[kRB];
            for (std::int64_t r = 0; r < kRB; ++r) acc[r] = DG_SPLAT(V, T, 0);
            const std::int64_t iend = j0 + CW;
            for (std::int64_t i = 0; i < iend; ++i) {
                V p;
                std::memcpy(&p, P + i * dp + j0, sizeof(p));
                for (std::int64_t r = 0; r < kRB; ++r) acc[r] += DG_MUL(drow[r * dp + i], p);
            }
            for (std::int64_t r = 0; r < kRB; ++r) {
                if constexpr (kSquare) {
                    T s = 0;
                    for (std::int64_t c = 0; c < CW; ++c) s += acc[r][c] * acc[r][c];
                    maha[b0 + r] += static_cast<double>(s);
                } else {
                    std::memcpy(Z + (b0 + r) * dp + j0, &acc[r], sizeof(V));
                }
            }
        }
    }
}

// Q (dp x dp, double, upper tiles) += sum_b W_b^T D_b over a block; W = r * D. dp is a
// multiple of kRB, so every tile is full.
template <class T, int VW = 32>
DATAGAUGE_GMM_INLINE void outer_tiles(const T* W, const T* D, std::int64_t dp, double* Q, std::int64_t rows = kBlock) {
    using V = typename Simd<T, VW>::type;
    constexpr std::int64_t CW = Simd<T, VW>::kLanes;
    for (std::int64_t i0 = 0; i0 < dp; i0 += kRB) {
        for (std::int64_t j0 = i0; j0 < dp; j0 += CW) {
            V acc[kRB];
            for (std::int64_t r = 0; r < kRB; ++r) acc[r] = DG_SPLAT(V, T, 0);
            for (std::int64_t b = 0; b < rows; ++b) {
                V dj;
                std::memcpy(&dj, D + b * dp + j0, sizeof(dj));
                const T* wi = W + b * dp + i0;
                for (std::int64_t r = 0; r < kRB; ++r) acc[r] += DG_MUL(wi[r], dj);
            }
            for (std::int64_t r = 0; r < kRB; ++r) {
                double* q = Q + (i0 + r) * dp + j0;
                for (std::int64_t c = 0; c < CW; ++c) q[c] += static_cast<double>(acc[r][c]);
            }
        }
    }
}

// maha[b * Kp + k] = sum_j (x_bj - mu_kj)^2 p_kj for a block, vectorised over components:
// a register tile of kRB rows x one vector of components accumulates over the features.
template <class T, bool kUnit = false, int VW = 32>
DATAGAUGE_GMM_INLINE void diag_tiles(const T* xb, const T* means_t, const T* prec_t, std::int64_t dp,
                                     std::int64_t d, std::int64_t Kp, double* maha) {
    using V = typename Simd<T, VW>::type;
    constexpr std::int64_t CW = Simd<T, VW>::kLanes;
    for (std::int64_t b0 = 0; b0 < kBlock; b0 += kRB) {
        const T* xr = xb + b0 * dp;
        for (std::int64_t k0 = 0; k0 < Kp; k0 += CW) {
            V acc[kRB];
            for (std::int64_t r = 0; r < kRB; ++r) acc[r] = DG_SPLAT(V, T, 0);
            for (std::int64_t j = 0; j < d; ++j) {
                V mu, p;
                std::memcpy(&mu, means_t + j * Kp + k0, sizeof(V));
                std::memcpy(&p, prec_t + j * Kp + k0, sizeof(V));
                for (std::int64_t r = 0; r < kRB; ++r) {
                    const V t = DG_SUB(mu, xr[r * dp + j]);  // only t^2 counts: mu - x broadcasts x from memory
                    if constexpr (kUnit) {
                        acc[r] += t * t;
                    } else {
                        acc[r] += t * t * p;
                    }
                }
            }
            for (std::int64_t r = 0; r < kRB; ++r)
                for (std::int64_t c = 0; c < CW; ++c) maha[(b0 + r) * Kp + k0 + c] = static_cast<double>(acc[r][c]);
        }
    }
}

// s[j] += sum_b r_b (x_bj - c_j) and (kQ) q[j] += sum_b r_b (x_bj - c_j)^2 over the nb rows of a
// block, for all dp (padded) columns of the double accumulators s and q; r_b = resp[b * K].
// Sums run in T over the block, then go into the double totals.
template <class T, bool kQ, int VW = 32>
DATAGAUGE_GMM_INLINE void moment_sums(const T* xb, std::int64_t nb, std::int64_t dp, const T* c, const double* resp,
                                      std::int64_t K, double* s, double* q) {
    using V = typename Simd<T, VW>::type;
    constexpr std::int64_t CW = Simd<T, VW>::kLanes;
    // Four interleaved partial sums per vector (rows b = 0, 1, 2, 3 mod 4): independent add
    // chains, so the loop runs at the adders' throughput, not their latency. Rows past nb
    // (zero padded) get r = 0.
    T r[kBlock];
    for (std::int64_t b = 0; b < nb; ++b) r[b] = static_cast<T>(resp[b * K]);
    for (std::int64_t b = nb; b < kBlock; ++b) r[b] = T(0);
    for (std::int64_t j0 = 0; j0 < dp; j0 += CW) {
        V cs;
        std::memcpy(&cs, c + j0, sizeof(V));
        V sacc[4], qacc[4];
        for (int u = 0; u < 4; ++u) sacc[u] = qacc[u] = DG_SPLAT(V, T, 0);
        for (std::int64_t b = 0; b < kBlock; b += 4) {
            for (int u = 0; u < 4; ++u) {
                V t;
                std::memcpy(&t, xb + (b + u) * dp + j0, sizeof(V));
                t -= cs;
                const V rt = DG_MUL(r[b + u], t);
                sacc[u] += rt;
                if constexpr (kQ) qacc[u] += rt * t;
            }
        }
        const V ssum = (sacc[0] + sacc[1]) + (sacc[2] + sacc[3]);
        const V qsum = (qacc[0] + qacc[1]) + (qacc[2] + qacc[3]);
        for (std::int64_t cc = 0; cc < CW; ++cc) {  // a constant count: vector adds, no scalar tail
            s[j0 + cc] += static_cast<double>(ssum[cc]);
            if constexpr (kQ) q[j0 + cc] += static_cast<double>(qsum[cc]);
        }
    }
}

// dst[0, d) = src[0, d) in whole groups of 8 (fixed-size copies the compiler turns into vector
// moves; a loop over a run-time count of plain copies would become a library call per row).
template <class T>
DATAGAUGE_GMM_INLINE void copy_row(T* dst, const T* src, std::int64_t d) {
    std::int64_t j = 0;
    for (; j + 8 <= d; j += 8) std::memcpy(dst + j, src + j, 8 * sizeof(T));
    for (std::int64_t c = 0; c < 8; ++c)
        if (j + c < d) dst[j + c] = src[j + c];
}

// v[i] = exp(v[i]) for v[i] <= 0 (log-sum-exp terms), four at a time: Cody-Waite reduction by
// ln 2, a degree-13 Taylor polynomial on |r| <= ln(2)/2 (relative error ~1e-16), and 2^n built
// in the exponent bits. Inputs below -708 give exp(-708) ~ 3e-308 instead of 0.
#if defined(__GNUC__)
DATAGAUGE_GMM_INLINE void exp_nonpositive(double* v, std::int64_t n) {
    typedef double V __attribute__((vector_size(32)));
    typedef std::int64_t VI __attribute__((vector_size(32)));
    constexpr double kLog2e = 1.4426950408889634;
    constexpr double kLn2Hi = 0.6931471803691238;
    constexpr double kLn2Lo = 1.9082149292705877e-10;
    constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
    const V lo = V{} - 708.0;
    for (std::int64_t i = 0; i < n; i += 4) {
        const std::int64_t m = std::min<std::int64_t>(4, n - i);
        V x = lo;
        if (m == 4) {  // a constant size: one vector load (a variable memcpy is a library call)
            std::memcpy(&x, v + i, sizeof(x));
        } else {
            for (std::int64_t c = 0; c < m; ++c) x[c] = v[i + c];
        }
        x = x < lo ? lo : x;
        const V y = x * kLog2e + kMagic;
        const V kf = y - kMagic;
        const V r = (x - kf * kLn2Hi) - kf * kLn2Lo;
        V p = V{} + 1.0 / 6227020800.0;
        p = p * r + 1.0 / 479001600.0;
        p = p * r + 1.0 / 39916800.0;
        p = p * r + 1.0 / 3628800.0;
        p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0;
        p = p * r + 1.0 / 5040.0;
        p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        VI bits;
        std::memcpy(&bits, &y, sizeof(bits));
        bits = (bits + 1023) << 52;
        V scale;
        std::memcpy(&scale, &bits, sizeof(scale));
        p *= scale;
        if (m == 4) {
            std::memcpy(v + i, &p, sizeof(p));
        } else {
            for (std::int64_t c = 0; c < m; ++c) v[i + c] = p[c];
        }
    }
}
#else
inline void exp_nonpositive(double* v, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
}
#endif

// Per-block scratch memory.
template <class T>
struct Scratch {
    std::vector<T> x, D, W, Z;
    std::vector<double> maha, logp;
    std::vector<double> qpad;  // full: K x dp x dp, tied: dp x dp (padded accumulators)
    std::vector<double> spad, dpad, nk;  // K x dp: sums and (diag, spherical) squares; K: weights
    Scratch(std::int64_t K, std::int64_t dp)
        : x(static_cast<std::size_t>(kBlock * dp), T(0)), D(x.size(), T(0)), W(x.size(), T(0)), Z(x.size(), T(0)),
          maha(static_cast<std::size_t>(kBlock * (K + 8)), 0.0), logp(static_cast<std::size_t>(kBlock * K), 0.0),
          spad(static_cast<std::size_t>(K * dp), 0.0), dpad(spad.size(), 0.0), nk(static_cast<std::size_t>(K), 0.0) {}
};

// E-step (and optionally statistics) on rows [r0, r1) of X (n x d, row-major).
//   loglik_out: per-row log-likelihood (may be null); resp_out: n x K responsibilities (may be null)
//   resp_in: given responsibilities n x K (skip the E-step; may be null)
//   stats: accumulate into (may be null)
template <class T, int VW>
DATAGAUGE_GMM_INLINE void process_rows_body(const T* X, std::int64_t r0, std::int64_t r1, const Prepared<T>& m,
                                            const double* resp_in, double* loglik_out, double* resp_out,
                                            std::int64_t* label_out, Stats* stats) {
    const FlushSubnormals ftz;
    const std::int64_t K = m.K, d = m.d, dp = m.dp;
    Scratch<T> sc(K, dp);
    if (m.nearest) sc.maha.assign(static_cast<std::size_t>(kBlock * m.Kn), 0.0);
    if (stats && (m.cov == Cov::full || m.cov == Cov::tied))
        sc.qpad.assign(static_cast<std::size_t>((m.cov == Cov::full ? K : 1) * dp * dp), 0.0);
    T* xb = sc.x.data();
    T* D = sc.D.data();
    T* W = sc.W.data();
    double* logp = sc.logp.data();
    std::int64_t near_arg[kBlock] = {};
    for (std::int64_t b0 = r0; b0 < r1; b0 += kBlock) {
        const std::int64_t nb = std::min<std::int64_t>(kBlock, r1 - b0);
        for (std::int64_t b = 0; b < nb; ++b) copy_row(xb + b * dp, X + (b0 + b) * d, d);
        for (std::int64_t b = nb; b < kBlock; ++b)
            for (std::int64_t j = 0; j < dp; ++j) xb[b * dp + j] = T(0);

        // ---- E-step: logp[b * K + k]
        if (resp_in) {
            for (std::int64_t b = 0; b < nb; ++b)
                for (std::int64_t k = 0; k < K; ++k) logp[b * K + k] = resp_in[(b0 + b) * K + k];
        } else if (m.nearest) {
            const std::int64_t Kn = m.Kn;
            diag_tiles<T, true, VW>(xb, m.near_t.data(), m.ones_t.data(), dp, d, Kn, sc.maha.data());
            for (std::int64_t b = 0; b < nb; ++b) {
                const double* dist = sc.maha.data() + b * Kn;
                std::int64_t arg = 0;
                for (std::int64_t k = 1; k < K; ++k)
                    if (dist[k] < dist[arg]) arg = k;
                for (std::int64_t k = 0; k < K; ++k) logp[b * K + k] = k == arg ? 1.0 : 0.0;
                near_arg[b] = arg;
                if (label_out) label_out[b0 + b] = arg;
            }
        } else {
            if (m.cov == Cov::full) {
                for (std::int64_t k = 0; k < K; ++k) {
                    const T* mu = m.means.data() + k * dp;
                    for (std::int64_t b = 0; b < kBlock; ++b)
                        for (std::int64_t j = 0; j < dp; ++j) D[b * dp + j] = xb[b * dp + j] - mu[j];
                    std::fill(sc.maha.begin(), sc.maha.end(), 0.0);
                    dp_tiles<T, true, VW>(D, m.prec.data() + k * dp * dp, dp, sc.maha.data(), nullptr);
                    for (std::int64_t b = 0; b < nb; ++b) logp[b * K + k] = m.log_const[k] - 0.5 * sc.maha[b];
                }
            } else if (m.cov == Cov::tied) {
                T* Z = sc.Z.data();
                const T* c = m.tied_c.data();
                for (std::int64_t b = 0; b < kBlock; ++b)
                    for (std::int64_t j = 0; j < dp; ++j) D[b * dp + j] = xb[b * dp + j] - c[j];
                dp_tiles<T, false, VW>(D, m.prec.data(), dp, nullptr, Z);
                for (std::int64_t b = 0; b < nb; ++b)
                    for (std::int64_t k = 0; k < K; ++k) {
                        const T* mk = m.tied_m.data() + k * dp;
                        const T* z = Z + b * dp;
                        T acc[kCB] = {};
                        for (std::int64_t j0 = 0; j0 < dp; j0 += kCB)
                            for (std::int64_t cc = 0; cc < kCB; ++cc) {
                                const T t = z[j0 + cc] - mk[j0 + cc];
                                acc[cc] += t * t;
                            }
                        double s = 0;
                        for (std::int64_t cc = 0; cc < kCB; ++cc) s += static_cast<double>(acc[cc]);
                        logp[b * K + k] = m.log_const[k] - 0.5 * s;
                    }
            } else {
                diag_tiles<T, false, VW>(xb, m.means_t.data(), m.prec_t.data(), dp, d, m.Kp, sc.maha.data());
                for (std::int64_t b = 0; b < nb; ++b)
                    for (std::int64_t k = 0; k < K; ++k)
                        logp[b * K + k] = m.log_const[k] - 0.5 * sc.maha[b * m.Kp + k];
            }
            // log-sum-exp -> log-likelihood, responsibilities in place; one exp pass over the block
            double mxs[kBlock];
            std::int64_t args[kBlock];
            for (std::int64_t b = 0; b < nb; ++b) {
                double* lp = logp + b * K;
                double mx = lp[0];
                std::int64_t arg = 0;
                for (std::int64_t k = 1; k < K; ++k)
                    if (lp[k] > mx) {
                        mx = lp[k];
                        arg = k;
                    }
                for (std::int64_t k = 0; k < K; ++k) lp[k] -= mx;
                mxs[b] = mx;
                args[b] = arg;
            }
            exp_nonpositive(logp, nb * K);
            for (std::int64_t b = 0; b < nb; ++b) {
                double* lp = logp + b * K;
                const double mx = mxs[b];
                const std::int64_t arg = args[b];
                double sum = 0;
                for (std::int64_t k = 0; k < K; ++k) sum += lp[k];
                const double lse = mx + std::log(sum);
                const double inv = 1.0 / sum;
                for (std::int64_t k = 0; k < K; ++k) lp[k] *= inv;
                if (loglik_out) loglik_out[b0 + b] = lse;
                if (label_out) label_out[b0 + b] = arg;
                if (resp_out)
                    for (std::int64_t k = 0; k < K; ++k) resp_out[(b0 + b) * K + k] = lp[k];
                if (stats) stats->loglik += lse;
            }
        }
        if (!stats) continue;

        // ---- statistics (into the padded scratch accumulators; added to stats at the end)
        stats->n += static_cast<double>(nb);
        double* nka = sc.nk.data();
        if (m.nearest && m.cov != Cov::tied) {  // hard assignment: each row adds to its own component only
            for (std::int64_t b = 0; b < nb; ++b) {
                const std::int64_t k = near_arg[b];
                const T* c = m.shift.data() + k * dp;
                const T* xr = xb + b * dp;
                double* sa = sc.spad.data() + k * dp;
                double* qa = sc.dpad.data() + k * dp;
                nka[k] += 1.0;
                for (std::int64_t j = 0; j < dp; ++j) {
                    const double t = static_cast<double>(xr[j] - c[j]);
                    sa[j] += t;
                    qa[j] += t * t;
                }
            }
            if (m.cov == Cov::full) {  // outer products of each component's own rows
                for (std::int64_t k = 0; k < K; ++k) {
                    const T* c = m.shift.data() + k * dp;
                    std::int64_t cnt = 0;
                    for (std::int64_t b = 0; b < nb; ++b) {
                        if (near_arg[b] != k) continue;
                        for (std::int64_t j = 0; j < dp; ++j) D[cnt * dp + j] = xb[b * dp + j] - c[j];
                        ++cnt;
                    }
                    if (cnt > 0) outer_tiles<T, VW>(D, D, dp, sc.qpad.data() + k * dp * dp, cnt);
                }
            }
            continue;
        }
        for (std::int64_t b = 0; b < nb; ++b)
            for (std::int64_t k = 0; k < K; ++k) nka[k] += logp[b * K + k];
        if (m.cov == Cov::tied) {
            const T* c = m.shift.data();  // row 0
            for (std::int64_t b = 0; b < kBlock; ++b) {
                const T w = b < nb ? T(1) : T(0);
                for (std::int64_t j = 0; j < dp; ++j) {
                    const T t = xb[b * dp + j] - c[j];
                    D[b * dp + j] = t;
                    W[b * dp + j] = w * t;
                }
            }
            outer_tiles<T, VW>(W, D, dp, sc.qpad.data());
            for (std::int64_t k = 0; k < K; ++k)
                moment_sums<T, false, VW>(xb, nb, dp, c, logp + k, K, sc.spad.data() + k * dp, nullptr);
            continue;
        }
        for (std::int64_t k = 0; k < K; ++k) {
            const T* c = m.shift.data() + k * dp;
            double* sa = sc.spad.data() + k * dp;
            if (m.cov == Cov::full) {
                for (std::int64_t b = 0; b < kBlock; ++b) {
                    const T r = b < nb ? static_cast<T>(logp[b * K + k]) : T(0);
                    for (std::int64_t j = 0; j < dp; ++j) {
                        const T t = xb[b * dp + j] - c[j];
                        D[b * dp + j] = t;
                        W[b * dp + j] = r * t;
                    }
                }
                outer_tiles<T, VW>(W, D, dp, sc.qpad.data() + k * dp * dp);
                moment_sums<T, false, VW>(xb, nb, dp, c, logp + k, K, sa, nullptr);
            } else {
                moment_sums<T, true, VW>(xb, nb, dp, c, logp + k, K, sa, sc.dpad.data() + k * dp);
            }
        }
    }
    if (!stats) return;
    for (std::int64_t k = 0; k < K; ++k) {
        stats->nk[k] += sc.nk[k];
        for (std::int64_t j = 0; j < d; ++j) {
            stats->s[static_cast<std::size_t>(k * d + j)] += sc.spad[static_cast<std::size_t>(k * dp + j)];
            if (m.cov == Cov::diag || m.cov == Cov::spherical)
                stats->q[static_cast<std::size_t>(k * d + j)] += sc.dpad[static_cast<std::size_t>(k * dp + j)];
        }
    }
    if (!sc.qpad.empty()) {
        const std::int64_t nq = m.cov == Cov::full ? K : 1;
        for (std::int64_t k = 0; k < nq; ++k)
            for (std::int64_t i = 0; i < d; ++i)
                for (std::int64_t j = i; j < d; ++j)
                    stats->q[static_cast<std::size_t>((k * d + i) * d + j)] +=
                        sc.qpad[static_cast<std::size_t>((k * dp + i) * dp + j)];
    }
}

// Kernel families, chosen at run time (never by a host-CPU build flag): 2 = AVX-512
// (x86-64-v4: 64-byte vectors of double), 1 = AVX2 + FMA (x86-64-v3), 0 = baseline (SSE2 on
// x86-64; plain loops elsewhere). The level is the CPU's, capped by the environment variable
// DATAGAUGE_SIMD (auto|avx512|avx2|scalar, read once, as the k-NN kernels read it; see
// simd.hpp), so DATAGAUGE_SIMD=avx2 or =scalar runs the fallback kernels on any machine.
inline int cpu_kernel_level() {
#if defined(DATAGAUGE_GMM_ISA)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return 2;
    if (__builtin_cpu_supports("x86-64-v3")) return 1;
#endif
    return 0;
}

inline int kernel_level() {
    static const int lv = [] {
        const int cap = static_cast<int>(simd::requested_level());  // scalar 0, avx2 1, avx512 2
        return std::min(cap, cpu_kernel_level());
    }();
    return lv;
}

// Runs f.template run<VW>() compiled for the kernel family in effect; VW is the widest vector
// (bytes) the family has: 64 (v4) or 32 (v3, baseline: two SSE registers). f.run must be
// DATAGAUGE_GMM_INLINE, and so must everything it calls in a hot loop, so that it is compiled
// with the family's instruction set.
#if defined(DATAGAUGE_GMM_ISA)
template <class F>
__attribute__((target("arch=x86-64-v4"))) void run_v4(const F& f) {
    f.template run<64>();
}
template <class F>
__attribute__((target("arch=x86-64-v3"))) void run_v3(const F& f) {
    f.template run<32>();
}
#endif
template <class F>
void run_baseline(const F& f) {
    f.template run<32>();
}

template <class F>
void dispatch(const F& f) {
#if defined(DATAGAUGE_GMM_ISA)
    switch (kernel_level()) {
        case 2: run_v4(f); return;
        case 1: run_v3(f); return;
        default: break;
    }
#endif
    run_baseline(f);
}

// E-step (and optionally statistics) on rows [r0, r1) with the kernels in effect. Double input
// uses the family's widest vectors; float input 32-byte ones (the padded width is a multiple
// of 8).
template <class T>
struct ProcessRows {
    const T* X;
    std::int64_t r0, r1;
    const Prepared<T>& m;
    const double* resp_in;
    double *loglik_out, *resp_out;
    std::int64_t* label_out;
    Stats* stats;
    template <int VW>
    DATAGAUGE_GMM_INLINE void run() const {
        process_rows_body<T, sizeof(T) == 8 ? VW : 32>(X, r0, r1, m, resp_in, loglik_out, resp_out, label_out, stats);
    }
};

template <class T>
void process_rows(const T* X, std::int64_t r0, std::int64_t r1, const Prepared<T>& m, const double* resp_in,
                  double* loglik_out, double* resp_out, std::int64_t* label_out, Stats* stats) {
    dispatch(ProcessRows<T>{X, r0, r1, m, resp_in, loglik_out, resp_out, label_out, stats});
}

// Cholesky of a d x d SPD matrix (row-major, in place: lower triangle L). false if not PD.
inline bool cholesky(std::vector<double>& a, std::int64_t d) {
    for (std::int64_t j = 0; j < d; ++j) {
        double s = a[j * d + j];
        for (std::int64_t p = 0; p < j; ++p) s -= a[j * d + p] * a[j * d + p];
        if (!(s > 0.0) || !std::isfinite(s)) return false;
        const double ljj = std::sqrt(s);
        a[j * d + j] = ljj;
        for (std::int64_t i = j + 1; i < d; ++i) {
            double t = a[i * d + j];
            for (std::int64_t p = 0; p < j; ++p) t -= a[i * d + p] * a[j * d + p];
            a[i * d + j] = t / ljj;
        }
    }
    return true;
}

inline const char* ill_defined_message() {
    return "Fitting the mixture model failed because some components have ill-defined empirical "
           "covariance (for instance caused by singleton or collapsed samples). Try to decrease "
           "the number of components, increase reg_covar, or scale the input data.";
}

// prec_chol = solve(L, I)^T for cov = L L^T; writes the d x d upper triangular result.
inline void precision_cholesky(const double* cov, std::int64_t d, double* out) {
    std::vector<double> a(cov, cov + d * d);
    if (!cholesky(a, d)) throw std::invalid_argument(ill_defined_message());
    // X = L^{-1} (lower), column by column: L x = e_c
    std::vector<double> x(static_cast<std::size_t>(d));
    for (std::int64_t c = 0; c < d; ++c) {
        for (std::int64_t i = 0; i < d; ++i) {
            double t = i == c ? 1.0 : 0.0;
            for (std::int64_t p = c; p < i; ++p) t -= a[i * d + p] * x[p];
            x[i] = i < c ? 0.0 : t / a[i * d + i];
        }
        // out = X^T: out[c][i] = X[i][c]
        for (std::int64_t i = 0; i < d; ++i) out[c * d + i] = x[i];
    }
}

inline Params m_step(const Stats& st, double reg_covar) {
    const std::int64_t K = st.K, d = st.d;
    if (st.n <= 0) throw std::invalid_argument("no samples were accumulated; the M-step needs data");
    Params p;
    p.cov = st.cov;
    p.K = K;
    p.d = d;
    const double eps10 = 10.0 * std::numeric_limits<double>::epsilon();
    std::vector<double> nk(static_cast<std::size_t>(K));
    double total = 0;
    for (std::int64_t k = 0; k < K; ++k) {
        nk[k] = st.nk[k] + eps10;
        total += nk[k];
    }
    p.weights.resize(static_cast<std::size_t>(K));
    for (std::int64_t k = 0; k < K; ++k) p.weights[k] = nk[k] / total;
    // means = c + (S - 10 eps c) / nk ; delta = mean - c
    p.means.resize(static_cast<std::size_t>(K * d));
    std::vector<double> delta(static_cast<std::size_t>(K * d));
    const bool tied = st.cov == Cov::tied;
    for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t j = 0; j < d; ++j) {
            const double c = st.shift[(tied ? 0 : k) * d + j];
            const double del = (st.s[k * d + j] + (st.nk[k] - nk[k]) * c) / nk[k];
            delta[k * d + j] = del;
            p.means[k * d + j] = c + del;
        }
    switch (st.cov) {
        case Cov::full: {
            p.covariances.assign(static_cast<std::size_t>(K * d * d), 0.0);
            p.prec_chol.assign(p.covariances.size(), 0.0);
            for (std::int64_t k = 0; k < K; ++k) {
                double* cv = p.covariances.data() + k * d * d;
                const double* q = st.q.data() + k * d * d;
                const double* s = st.s.data() + k * d;
                const double* dl = delta.data() + k * d;
                for (std::int64_t i = 0; i < d; ++i)
                    for (std::int64_t j = i; j < d; ++j) {
                        const double v =
                            (q[i * d + j] - s[i] * dl[j] - dl[i] * s[j] + st.nk[k] * dl[i] * dl[j]) / nk[k];
                        cv[i * d + j] = v;
                        cv[j * d + i] = v;
                    }
                for (std::int64_t i = 0; i < d; ++i) cv[i * d + i] += reg_covar;
                precision_cholesky(cv, d, p.prec_chol.data() + k * d * d);
            }
            break;
        }
        case Cov::tied: {
            p.covariances.assign(static_cast<std::size_t>(d * d), 0.0);
            p.prec_chol.assign(p.covariances.size(), 0.0);
            double* cv = p.covariances.data();
            for (std::int64_t i = 0; i < d; ++i)
                for (std::int64_t j = i; j < d; ++j) {
                    double v = st.q[i * d + j];
                    for (std::int64_t k = 0; k < K; ++k) {
                        const double* s = st.s.data() + k * d;
                        const double* dl = delta.data() + k * d;
                        v += -s[i] * dl[j] - dl[i] * s[j] + st.nk[k] * dl[i] * dl[j];
                    }
                    v /= total;
                    cv[i * d + j] = v;
                    cv[j * d + i] = v;
                }
            for (std::int64_t i = 0; i < d; ++i) cv[i * d + i] += reg_covar;
            precision_cholesky(cv, d, p.prec_chol.data());
            break;
        }
        case Cov::diag:
        case Cov::spherical: {
            std::vector<double> dg(static_cast<std::size_t>(K * d));
            for (std::int64_t k = 0; k < K; ++k)
                for (std::int64_t j = 0; j < d; ++j) {
                    const double s = st.s[k * d + j], dl = delta[k * d + j];
                    dg[k * d + j] = (st.q[k * d + j] - 2.0 * s * dl + st.nk[k] * dl * dl) / nk[k] + reg_covar;
                }
            if (st.cov == Cov::diag) {
                p.covariances = dg;
            } else {
                p.covariances.assign(static_cast<std::size_t>(K), 0.0);
                for (std::int64_t k = 0; k < K; ++k) {
                    double m = 0;
                    for (std::int64_t j = 0; j < d; ++j) m += dg[k * d + j];
                    p.covariances[k] = m / static_cast<double>(d);
                }
            }
            p.prec_chol.resize(p.covariances.size());
            for (std::size_t i = 0; i < p.covariances.size(); ++i) {
                if (!(p.covariances[i] > 0.0)) throw std::invalid_argument(ill_defined_message());
                p.prec_chol[i] = 1.0 / std::sqrt(p.covariances[i]);
            }
            break;
        }
    }
    return p;
}

}  // namespace datagauge::gmm

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
