// Exact self k-NN screened in int8 (AVX-512 VNNI), re-ranked and proven in float32.
//
// The schedule is the brute-force engine's (brute.hpp): blocks of points, every pair of blocks
// once in a round-robin tournament, a GEMM-like register micro-tile per 8 rows x 32 columns
// whose entries leave the registers only where they beat a candidate list's bound. The inner
// products are computed on 8-bit integers with vpdpbusd (64 multiply-adds per instruction, four
// times the float32 FMA tile's), so the screening distances are exact integers
// D(a, b) = |qa - qb|^2 of quantised points:
//
// - pixel data, whose every value is within 1e-3 of a grid k / G (G = 1: integers, or
//   G = 255: pixels / 255 as image loaders give them) and whose every feature spans at most
//   255 grid steps: q = round(x G) - min of the feature, s = G; lossless for integers (D is
//   then the exact squared distance), a residual of rounding size for pixels / 255;
// - otherwise q = round((x - mean) * s) with one scale s = 127 / max |x - mean|.
//
// The quantisation residual r = x - (q + shift) / s is kept per point as its norm E = |r|.
//
// Either way |a - b| >= sqrt(D) / s - E_a - E_b (triangle inequality), a rigorous bound
// (the residual norms are computed in double and padded for their own rounding). Each point
// keeps the kc points of smallest D; they are re-ranked with exact float32 distances
// (refine.hpp, the same arithmetic as every engine) and the list is proven complete when every
// point outside it, whose D is at least the list's kc-th D_kc, has a float32 distance above
// the k-th: (sqrt(D_kc) / s - E_a - E_max)^2 (1 - (d + 4) u) > k-th exact distance, with
// u = 2^-24 the float32 rounding unit of the exact distance's d-term sum. Points that fail
// (exact ties, duplicates, data whose dynamic range defeats 8 bits) are searched again
// exactly by the caller. The answer is therefore bit-identical to the float32 engines'.
//
// The VNNI kernel is compiled with a per-function target attribute and runs only where
// simd::level() is avx512; the caller falls back to BruteSelfKnn (float32 tiles) elsewhere.
#pragma once

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "datagauge/brute.hpp"
#include "datagauge/parallel.hpp"
#include "datagauge/refine.hpp"
#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define DATAGAUGE_SCREEN_VNNI 1
#else
#define DATAGAUGE_SCREEN_VNNI 0
#endif

namespace datagauge {

// std::nearbyint(v) in the default rounding mode (to nearest, ties to even; -0 may come back
// as +0), without the library call the baseline x86-64 build makes for it: adding and
// subtracting 1.5 * 2^52 rounds |v| < 2^51 exactly so (IEEE arithmetic: the compiler may not
// fold it away without -ffast-math, which this project never uses).
inline double round_even(double v) {
    constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52
    if (!(std::fabs(v) < 2251799813685248.0)) return std::nearbyint(v);  // |v| >= 2^51, NaN
    return (v + kShift) - kShift;
}

// A residual norm from its squared sum `res` and the squared norm `mag` of the values it was
// taken from, padded for the rounding of the steps and sums (all in double: relative error far
// below 1e-12 of |c|); exactly 0 when every step was exact.
inline double padded_residual(double res, double mag) {
    return res == 0.0 ? 0.0 : std::sqrt(res) * (1.0 + 1e-12) + 1e-12 * std::sqrt(mag);
}

// The quantisation of one row x (d features) away from a pixel grid: q = round((x - mean) s)
// clamped to [-127, 127]; writes q and returns the residual norm |x - mean - q / s| with its
// rounding pad (see Int8SelfKnn::pack). The one definition the engine and its planner share.
inline double quantise_row(const float* x, const double* mean, double s, std::int64_t d, std::int32_t* q) {
    const double inv = 1.0 / s;
    double res = 0.0, mag = 0.0;
    for (std::int64_t j = 0; j < d; ++j) {
        const double c = static_cast<double>(x[j]) - mean[j];
        const std::int64_t v = std::clamp<std::int64_t>(static_cast<std::int64_t>(round_even(c * s)), -127, 127);
        const double r = c - static_cast<double>(v) * inv;
        res += r * r;
        mag += c * c;
        q[j] = static_cast<std::int32_t>(v);
    }
    return padded_residual(res, mag);
}

// Residual norms (n,) of quantise_row for every row of x (n, d), on n_threads threads.
inline std::vector<double> quantisation_residuals(const float* x, std::int64_t n, std::int64_t d, const double* mean,
                                                  double s, int n_threads) {
    if (!(s > 0.0) || !std::isfinite(s)) throw std::invalid_argument("scale must be positive and finite");
    std::vector<double> out(static_cast<std::size_t>(n));
    parallel_for(static_cast<std::size_t>(n), n_threads, 2048, [&](std::size_t b, std::size_t e) {
        std::vector<std::int32_t> q(static_cast<std::size_t>(d));
        for (std::size_t i = b; i < e; ++i) out[i] = quantise_row(x + i * static_cast<std::size_t>(d), mean, s, d, q.data());
    });
    return out;
}

class Int8SelfKnn : public SymmetricTiles<Int8SelfKnn, std::int32_t> {
    friend class SymmetricTiles<Int8SelfKnn, std::int32_t>;

   public:
    static constexpr std::int64_t kMR = 8, kNR = 32;  // micro-tile: rows x columns
    static constexpr std::int64_t kAlign = 64;         // blocks are multiples of this
    static constexpr std::int64_t kMaxDim = 32768;     // |qa - qb|^2 <= d 255^2 fits int32
    static constexpr std::int32_t kNoBound = INT32_MAX;

    // Whether the int8 kernel can run here (CPU and DATAGAUGE_SIMD) for d features.
    static bool available(std::int64_t d) {
#if DATAGAUGE_SCREEN_VNNI
        return simd::level() == simd::Level::avx512 && d >= 1 && d <= kMaxDim;
#else
        (void)d;
        return false;
#endif
    }

    // x: (n, d) float32 row-major, finite. kc: candidates kept per point (> k). block: rows
    // per block (rounded up to a multiple of 64). Throws std::invalid_argument where the
    // kernel is unavailable (check available() first).
    // The packing (quantisation, residual norms) runs on n_threads threads.
    Int8SelfKnn(const float* x, std::int64_t n, std::int64_t d, int kc, std::int64_t block, int n_threads = 1)
        : SymmetricTiles(x, n, d, kc, block, kAlign, kNoBound) {
        if (!available(d)) throw std::invalid_argument("the int8 screening kernel is not available here");
        d4_ = (d + 3) / 4;
        pack(n_threads);
    }

    // True when the data were quantised on a pixel grid (see find_grid).
    bool on_grid() const { return grid_; }

   private:
    std::int64_t d4_ = 0;
    bool grid_ = false;
    double inv_scale_ = 1.0;  // 1 / s
    double err_max_ = 0.0;    // max over points of E
    std::vector<std::uint8_t> apack_;  // row panels: [group of 4 features][row of 8][4 bytes] u8
    std::vector<std::int8_t> bpack_;   // column panels: [group][column of 32][4 bytes] s8
    std::vector<std::int32_t> rconst_, cconst_;  // D = rconst[a] + cconst[b] - 2 acc (mod 2^32)
    std::vector<double> err_;                    // E per point

    std::int64_t tile_rows() const { return kMR; }
    std::int64_t tile_cols() const { return kNR; }

    // The grid of a "pixel" quantisation: all x G within kGridTol of an integer and every
    // feature spanning at most 255 grid steps (G = 1: integer pixels; G = 255: pixels / 255,
    // as image loaders give them). 0 when no grid fits.
    static constexpr double kGrids[2] = {1.0, 255.0};
    static constexpr double kGridTol = 1e-3;

    // lo, hi: per-feature minimum and maximum of x.
    double find_grid(const std::vector<double>& lo, const std::vector<double>& hi, int n_threads) const {
        const std::size_t dd = static_cast<std::size_t>(d_);
        for (const double g : kGrids) {
            // x -> nearbyint(x G) is monotonic, so the features' spans in grid steps come from
            // their extremes; then every value must lie on the grid.
            bool ok = true;
            for (std::size_t j = 0; j < dd && ok; ++j)
                ok = std::nearbyint(hi[j] * g) - std::nearbyint(lo[j] * g) <= 255.0;
            if (!ok) continue;
            std::atomic<bool> off{false};
            parallel_for(static_cast<std::size_t>(n_), n_threads, 4096, [&](std::size_t b, std::size_t e) {
                for (std::size_t i = b; i < e && !off.load(std::memory_order_relaxed); ++i)
                    for (std::size_t j = 0; j < dd; ++j) {
                        const double v = static_cast<double>(x_[i * dd + j]) * g;
                        if (!(std::fabs(v - round_even(v)) <= kGridTol)) {
                            off.store(true, std::memory_order_relaxed);
                            break;
                        }
                    }
            });
            if (!off.load()) return g;
        }
        return 0.0;
    }

    void pack(int n_threads) {
        const std::size_t dd = static_cast<std::size_t>(d_);
        std::vector<double> lo, hi, mean;
        column_extremes_and_sums(x_, n_, d_, n_threads, lo, hi, mean);
        const double grid = find_grid(lo, hi, n_threads);
        grid_ = grid > 0.0;
        // Grid: q = round(x G) - min of the feature, in [0, 255]; u = q, v = q - 128.
        // Otherwise q = round((x - mean) s) in [-127, 127], u = q + 128, v = q.
        // Either way x = (q + shift) / s + r with r the residual, shift a per-feature constant.
        double s = grid;
        std::vector<double> qmin(dd, 0.0);
        if (grid_) {
            for (std::size_t j = 0; j < dd; ++j) {
                qmin[j] = std::nearbyint(lo[j] * grid);
                mean[j] = 0.0;
            }
        } else {
            double amax = 0.0;
            for (std::size_t j = 0; j < dd; ++j) {
                mean[j] /= static_cast<double>(n_);
                amax = std::max({amax, hi[j] - mean[j], mean[j] - lo[j]});
            }
            s = amax > 0.0 ? 127.0 / amax : 1.0;
        }
        inv_scale_ = 1.0 / s;
        const std::int64_t oa = grid_ ? 0 : 128, ob = grid_ ? 128 : 0;
        apack_.assign(static_cast<std::size_t>(n_pad_ * d4_ * 4), 0);
        bpack_.assign(static_cast<std::size_t>(n_pad_ * d4_ * 4), 0);
        rconst_.assign(static_cast<std::size_t>(n_pad_), 0);
        cconst_.assign(static_cast<std::size_t>(n_pad_), 0);
        err_.assign(static_cast<std::size_t>(n_), 0.0);
        parallel_for(static_cast<std::size_t>(n_), n_threads, 2048, [&](std::size_t rb, std::size_t re) {
            std::vector<std::int32_t> qrow(dd);
            for (std::int64_t i = static_cast<std::int64_t>(rb); i < static_cast<std::int64_t>(re); ++i) {
                const float* xi = x_ + static_cast<std::size_t>(i) * dd;
                if (grid_) {
                    // q = round(x G) - min of the feature, in [0, 255]; the residual of rounding
                    // size for pixels / 255, exactly 0 for integers on G = 1 (every step exact).
                    double res = 0.0, mag = 0.0;
                    for (std::size_t j = 0; j < dd; ++j) {
                        const double v = xi[j], qd = round_even(v * s);
                        qrow[j] = static_cast<std::int32_t>(std::clamp<std::int64_t>(
                            static_cast<std::int64_t>(qd - qmin[j]), 0, 255));
                        const double r = v - qd * inv_scale_;
                        res += r * r;
                        mag += v * v;
                    }
                    err_[static_cast<std::size_t>(i)] = padded_residual(res, mag);
                } else {
                    err_[static_cast<std::size_t>(i)] = quantise_row(xi, mean.data(), s, d_, qrow.data());
                }
                std::uint8_t* a = apack_.data() + ((i / kMR) * d4_ * kMR + i % kMR) * 4;
                std::int8_t* b = bpack_.data() + ((i / kNR) * d4_ * kNR + i % kNR) * 4;
                std::int64_t norm = 0, sum = 0;
                for (std::int64_t j = 0; j < d_; ++j) {
                    const std::int64_t q = qrow[static_cast<std::size_t>(j)];
                    norm += q * q;
                    sum += q;
                    const std::int64_t g = j / 4, lane = j % 4;
                    a[g * kMR * 4 + lane] = static_cast<std::uint8_t>(q + oa);
                    b[g * kNR * 4 + lane] = static_cast<std::int8_t>(q - ob);
                }
                // acc = sum (q_a + oa)(q_b - ob) = qa.qb - ob S_a + oa S_b - oa ob d, so
                // D = |qa|^2 + |qb|^2 - 2 qa.qb = rconst[a] + cconst[b] - 2 acc, in exact integers;
                // the int32 arithmetic wraps but D itself fits, so the wrapped result is D.
                const std::int64_t rc = norm - 2 * ob * sum - oa * ob * d_;
                const std::int64_t cc = norm + 2 * oa * sum - oa * ob * d_;
                rconst_[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(static_cast<std::uint32_t>(rc));
                cconst_[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(static_cast<std::uint32_t>(cc));
            }
        });
        err_max_ = *std::max_element(err_.begin(), err_.end());
    }

    bool complete(std::int64_t i, std::int32_t bound, float kth_exact) const {
        // Every point outside the list has D >= bound, hence true distance >= lower.
        const double dist = std::sqrt(static_cast<double>(bound)) * inv_scale_ * (1.0 - 1e-15) -
                            err_[static_cast<std::size_t>(i)] - err_max_;
        if (!(dist > 0.0)) return false;
        const double lower = dist * dist * (1.0 - static_cast<double>(d_ + 4) * std::ldexp(1.0, -24)) * (1.0 - 1e-12);
        return std::isfinite(lower) && lower > static_cast<double>(kth_exact);
    }

    bool tile(std::int64_t ir, std::int64_t jc, std::int32_t* out, std::uint32_t* masks) const {
        return micro_tile(apack_.data() + ir * d4_ * 4, bpack_.data() + jc * d4_ * 4, rconst_.data() + ir,
                          cconst_.data() + jc, bound_.data() + ir, bound_.data() + jc, d4_, out, masks);
    }

#if DATAGAUGE_SCREEN_VNNI
    // D of an 8 x 32 micro-tile into `tile`, and masks[r] bit c set where entry (r, c) beats
    // its row's or its column's bound; false (tile not written) when no bit is set.
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static bool micro_tile(
        const std::uint8_t* ap, const std::int8_t* bp, const std::int32_t* rc, const std::int32_t* cc,
        const std::int32_t* rb, const std::int32_t* cb, std::int64_t d4, std::int32_t* tile, std::uint32_t* masks) {
        __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        for (std::int64_t g = 0; g < d4; ++g) {
            const __m512i b0 = _mm512_loadu_si512(bp + g * kNR * 4);
            const __m512i b1 = _mm512_loadu_si512(bp + g * kNR * 4 + 64);
            const std::uint8_t* a = ap + g * kMR * 4;
#define DG_ROW(r)                                                    \
    {                                                                \
        std::int32_t w;                                              \
        std::memcpy(&w, a + 4 * r, 4);                               \
        const __m512i v = _mm512_set1_epi32(w);                      \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, v, b0);               \
        c##r##1 = _mm512_dpbusd_epi32(c##r##1, v, b1);               \
    }
            DG_ROW(0) DG_ROW(1) DG_ROW(2) DG_ROW(3) DG_ROW(4) DG_ROW(5) DG_ROW(6) DG_ROW(7)
#undef DG_ROW
        }
        const __m512i acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                                     {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
        const __m512i cc0 = _mm512_loadu_si512(cc), cc1 = _mm512_loadu_si512(cc + 16);
        const __m512i cb0 = _mm512_loadu_si512(cb), cb1 = _mm512_loadu_si512(cb + 16);
        __m512i dv[kMR][2];
        std::uint32_t any = 0;
        for (int r = 0; r < kMR; ++r) {
            const __m512i rcv = _mm512_set1_epi32(rc[r]), rbv = _mm512_set1_epi32(rb[r]);
            dv[r][0] = _mm512_sub_epi32(_mm512_add_epi32(rcv, cc0), _mm512_slli_epi32(acc[r][0], 1));
            dv[r][1] = _mm512_sub_epi32(_mm512_add_epi32(rcv, cc1), _mm512_slli_epi32(acc[r][1], 1));
            const __mmask16 lo = _mm512_cmplt_epi32_mask(dv[r][0], _mm512_max_epi32(rbv, cb0));
            const __mmask16 hi = _mm512_cmplt_epi32_mask(dv[r][1], _mm512_max_epi32(rbv, cb1));
            masks[r] = static_cast<std::uint32_t>(lo) | (static_cast<std::uint32_t>(hi) << 16);
            any |= masks[r];
        }
        if (any == 0) return false;
        for (int r = 0; r < kMR; ++r) {
            _mm512_storeu_si512(tile + r * kNR, dv[r][0]);
            _mm512_storeu_si512(tile + r * kNR + 16, dv[r][1]);
        }
        return true;
    }
#else
    static bool micro_tile(const std::uint8_t*, const std::int8_t*, const std::int32_t*, const std::int32_t*,
                           const std::int32_t*, const std::int32_t*, std::int64_t, std::int32_t*, std::uint32_t*) {
        throw std::logic_error("int8 screening kernel not compiled");
    }
#endif
};

}  // namespace datagauge
