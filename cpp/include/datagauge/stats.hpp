// Two-sample tests for subgroup comparisons, one call per table (vectorised by the caller).
//
// - fisher_two_sided: Fisher's exact test on a 2x2 table, the p-value exactly as
//   scipy.stats.fisher_exact(alternative="two-sided") defines it (tables whose probability is
//   at most (1 + 1e-14) times the observed one, found by scipy's binary search on the far side
//   of the mode). The hypergeometric pmf is Loader's saddle-point form (as R's dhyper), in log
//   space; tails are summed from the term nearest the mode outward with the exact ratio
//   recurrence and stop once terms no longer change the sum.
// - two_proportion_z: pooled two-proportion z-test, two-sided normal p-value.
// - welch_t: Welch's unequal-variance t-test, two-sided p from the t distribution through the
//   regularized incomplete beta function (continued fraction).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace datagauge::stats {

constexpr double kLnSqrt2Pi = 0.918938533204672741780329736406;  // log(sqrt(2 pi))
constexpr double kLn2Pi = 1.837877066409345483560659472811;      // log(2 pi)

// log(x!) - log(sqrt(2 pi x) (x / e)^x), Stirling's error term (Loader 2000).
inline double stirlerr(double n) {
    constexpr double S0 = 1.0 / 12, S1 = 1.0 / 360, S2 = 1.0 / 1260, S3 = 1.0 / 1680, S4 = 1.0 / 1188;
    if (n <= 0) return 0.0;
    if (n <= 15.0) return std::lgamma(n + 1.0) - (n + 0.5) * std::log(n) + n - kLnSqrt2Pi;
    const double nn = n * n;
    if (n > 500) return (S0 - S1 / nn) / n;
    if (n > 80) return (S0 - (S1 - S2 / nn) / nn) / n;
    if (n > 35) return (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n;
    return (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n;
}

// x log(x / np) + np - x, accurately when x is close to np (Loader 2000).
inline double bd0(double x, double np) {
    if (std::fabs(x - np) < 0.1 * (x + np)) {
        double v = (x - np) / (x + np);
        double s = (x - np) * v;
        if (std::fabs(s) < std::numeric_limits<double>::min()) return s;
        double ej = 2 * x * v;
        v = v * v;
        for (int j = 1; j < 1000; ++j) {
            ej *= v;
            const double s1 = s + ej / ((j << 1) + 1);
            if (s1 == s) return s1;
            s = s1;
        }
    }
    return x * std::log(x / np) + np - x;
}

// log of the binomial pmf at x of (n, p), q = 1 - p (R's dbinom_raw, log scale).
inline double log_dbinom_raw(double x, double n, double p, double q) {
    const double ninf = -std::numeric_limits<double>::infinity();
    if (p == 0) return x == 0 ? 0.0 : ninf;
    if (q == 0) return x == n ? 0.0 : ninf;
    if (x == 0) {
        if (n == 0) return 0.0;
        return p < 0.1 ? -bd0(n, n * q) - n * p : n * std::log(q);
    }
    if (x == n) return q < 0.1 ? -bd0(n, n * p) - n * q : n * std::log(p);
    if (x < 0 || x > n) return ninf;
    const double lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q);
    const double lf = kLn2Pi + std::log(x) + std::log1p(-x / n);
    return lc - 0.5 * lf;
}

// Hypergeometric distribution: M objects, A of them marked, D drawn; X = marked among drawn.
struct Hypergeom {
    std::int64_t M, A, D;
    std::int64_t lo() const { return std::max<std::int64_t>(0, D - (M - A)); }
    std::int64_t hi() const { return std::min(A, D); }
    // log P(X = x) (R's dhyper in log space); -inf outside the support.
    double logpmf(std::int64_t x) const {
        if (x < lo() || x > hi()) return -std::numeric_limits<double>::infinity();
        if (D == 0) return 0.0;
        // Symmetric distributions (2D = M: P(x) = P(A - x); 2A = M: P(x) = P(D - x)) are
        // evaluated at one canonical point of each mirror pair, so exact ties stay exact and
        // the two-sided test counts mirror tables as scipy does.
        if (2 * D == M && x > A - x) x = A - x;
        if (2 * A == M && x > D - x) x = D - x;
        const double p = static_cast<double>(D) / static_cast<double>(M);
        const double q = static_cast<double>(M - D) / static_cast<double>(M);
        return log_dbinom_raw(static_cast<double>(x), static_cast<double>(A), p, q) +
               log_dbinom_raw(static_cast<double>(D - x), static_cast<double>(M - A), p, q) -
               log_dbinom_raw(static_cast<double>(D), static_cast<double>(M), p, q);
    }
    double pmf(std::int64_t x) const { return std::exp(logpmf(x)); }
    // P(X = x + 1) / P(X = x)
    double up_ratio(std::int64_t x) const {
        return (static_cast<double>(A - x) * static_cast<double>(D - x)) /
               (static_cast<double>(x + 1) * static_cast<double>(M - A - D + x + 1));
    }
    std::int64_t mode() const {
        // floor((D + 1)(A + 1) / (M + 2)), as scipy computes it for fisher_exact
        return static_cast<std::int64_t>(static_cast<double>(D + 1) * static_cast<double>(A + 1) /
                                         static_cast<double>(M + 2));
    }
    // sum of P(X = k) for k in [a, b], from the largest term outward.
    double range_sum(std::int64_t a, std::int64_t b) const {
        a = std::max(a, lo());
        b = std::min(b, hi());
        if (a > b) return 0.0;
        const std::int64_t m = std::min(std::max(mode(), a), b);
        const double lp = logpmf(m);
        if (!std::isfinite(lp)) return 0.0;
        constexpr double tiny = 1e-17;
        double total = 1.0, term = 1.0;
        for (std::int64_t k = m; k < b; ++k) {  // upward
            term *= up_ratio(k);
            total += term;
            if (term < tiny * total) break;
        }
        term = 1.0;
        for (std::int64_t k = m; k > a; --k) {  // downward: P(k-1)/P(k) = 1 / up_ratio(k-1)
            term /= up_ratio(k - 1);
            total += term;
            if (term < tiny * total) break;
        }
        return std::exp(lp) * total;
    }
    double cdf(std::int64_t x) const { return range_sum(lo(), x); }
    double sf(std::int64_t x) const { return range_sum(x + 1, hi()); }
};

// scipy.stats._stats_py._binary_search_for_binom_tst: i in [lo, hi] with a(i) <= d < a(i + 1)
// for a function ascending on [lo, hi].
template <class Fn>
std::int64_t binary_search_ascending(Fn a, double d, std::int64_t lo, std::int64_t hi) {
    while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        const double midval = a(mid);
        if (midval < d)
            lo = mid + 1;
        else if (midval > d)
            hi = mid - 1;
        else
            return mid;
    }
    return a(lo) <= d ? lo : lo - 1;
}

// Two-sided Fisher exact p-value of [[c00, c01], [c10, c11]] (scipy's definition).
inline double fisher_two_sided(std::int64_t c00, std::int64_t c01, std::int64_t c10, std::int64_t c11) {
    if (c00 < 0 || c01 < 0 || c10 < 0 || c11 < 0) return std::numeric_limits<double>::quiet_NaN();
    const std::int64_t n1 = c00 + c01, n2 = c10 + c11, n = c00 + c10;
    if (n1 == 0 || n2 == 0 || n == 0 || c01 + c11 == 0) return 1.0;
    const Hypergeom h{n1 + n2, n1, n};
    const std::int64_t mode = h.mode();
    const double pexact = h.pmf(c00), pmode = h.pmf(mode);
    constexpr double epsilon = 1e-14;
    constexpr double gamma = 1 + epsilon;
    if (std::fabs(pexact - pmode) / std::max(pexact, pmode) <= epsilon) return 1.0;
    double p;
    if (c00 < mode) {
        const double plower = h.cdf(c00);
        if (h.pmf(n) > pexact * gamma) return std::min(plower, 1.0);
        const std::int64_t guess =
            binary_search_ascending([&](std::int64_t x) { return -h.pmf(x); }, -pexact * gamma, mode, n);
        p = plower + h.sf(guess);
    } else {
        const double pupper = h.sf(c00 - 1);
        if (h.pmf(0) > pexact * gamma) return std::min(pupper, 1.0);
        const std::int64_t guess =
            binary_search_ascending([&](std::int64_t x) { return h.pmf(x); }, pexact * gamma, 0, mode);
        p = pupper + h.cdf(guess);
    }
    return std::min(p, 1.0);
}

struct TestResult {
    double statistic, df, p;
};

// Pooled two-proportion z-test of x1 / n1 against x2 / n2; p = erfc(|z| / sqrt 2).
// Degenerate tables (an empty side, or a pooled proportion of 0 or 1) give z = 0, p = 1.
inline TestResult two_proportion_z(std::int64_t x1, std::int64_t n1, std::int64_t x2, std::int64_t n2) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (n1 <= 0 || n2 <= 0) return {0.0, nan, 1.0};
    const double p1 = static_cast<double>(x1) / static_cast<double>(n1);
    const double p2 = static_cast<double>(x2) / static_cast<double>(n2);
    const double pp = static_cast<double>(x1 + x2) / static_cast<double>(n1 + n2);
    const double var = pp * (1 - pp) * (1.0 / static_cast<double>(n1) + 1.0 / static_cast<double>(n2));
    if (!(var > 0)) return {0.0, nan, 1.0};
    const double z = (p1 - p2) / std::sqrt(var);
    return {z, nan, std::erfc(std::fabs(z) / std::sqrt(2.0))};
}

// log Gamma(a) - log Gamma(a + b), without cancellation for large a.
inline double lgamma_ratio(double a, double b) {
    if (a < 15 || a + b < 15) return std::lgamma(a) - std::lgamma(a + b);
    // lgamma(x) = (x - 1/2) log x - x + log sqrt(2 pi) + stirlerr(x)
    return -(a - 0.5) * std::log1p(b / a) - b * std::log(a + b) + b + stirlerr(a) - stirlerr(a + b);
}

// Continued fraction of the incomplete beta function (modified Lentz).
inline double betacf(double a, double b, double x) {
    constexpr double fpmin = 1e-300, eps = 1e-16;
    const double qab = a + b, qap = a + 1, qam = a - 1;
    double c = 1, d = 1 - qab * x / qap;
    if (std::fabs(d) < fpmin) d = fpmin;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 200000; ++m) {
        const int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (std::fabs(d) < fpmin) d = fpmin;
        c = 1 + aa / c;
        if (std::fabs(c) < fpmin) c = fpmin;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (std::fabs(d) < fpmin) d = fpmin;
        c = 1 + aa / c;
        if (std::fabs(c) < fpmin) c = fpmin;
        d = 1 / d;
        const double del = d * c;
        h *= del;
        if (std::fabs(del - 1) < eps) break;
    }
    return h;
}

// Regularized incomplete beta I_x(a, b), given x and y = 1 - x separately (for accuracy).
inline double betainc(double a, double b, double x, double y) {
    if (x <= 0) return 0.0;
    if (y <= 0) return 1.0;
    // log of x^a y^b / B(a, b)
    auto front = [&](double aa, double bb, double xx, double yy) {
        const double lbeta = aa >= bb ? lgamma_ratio(aa, bb) + std::lgamma(bb) : lgamma_ratio(bb, aa) + std::lgamma(aa);
        return aa * std::log(xx) + bb * std::log(yy) - lbeta;
    };
    if (x < (a + 1) / (a + b + 2)) return std::exp(front(a, b, x, y)) * betacf(a, b, x) / a;
    return 1.0 - std::exp(front(b, a, y, x)) * betacf(b, a, y) / b;
}

// Two-sided p-value of Student's t with df degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2).
inline double t_two_sided(double t, double df) {
    if (std::isnan(t) || !(df > 0)) return std::numeric_limits<double>::quiet_NaN();
    if (std::isinf(t)) return 0.0;
    const double t2 = t * t;
    const double x = df / (df + t2), y = t2 / (df + t2);
    return std::min(1.0, betainc(df / 2, 0.5, x, y));
}

// Welch's t-test from summary statistics (sample variances with ddof = 1).
// Sides with fewer than 2 samples give p = 1 and NaN statistics; two constant sides give
// t = 0, p = 1 when their means are equal, and t = +-inf, p = 0 otherwise.
inline TestResult welch_t(double m1, double v1, std::int64_t n1, double m2, double v2, std::int64_t n2) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (n1 < 2 || n2 < 2) return {nan, nan, 1.0};
    const double a = std::max(v1, 0.0) / static_cast<double>(n1), b = std::max(v2, 0.0) / static_cast<double>(n2);
    const double se2 = a + b;
    if (!(se2 > 0)) {
        if (m1 == m2) return {0.0, nan, 1.0};
        return {m1 > m2 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity(), nan,
                0.0};
    }
    const double t = (m1 - m2) / std::sqrt(se2);
    const double df = se2 * se2 / (a * a / static_cast<double>(n1 - 1) + b * b / static_cast<double>(n2 - 1));
    return {t, df, t_two_sided(t, df)};
}

}  // namespace datagauge::stats
