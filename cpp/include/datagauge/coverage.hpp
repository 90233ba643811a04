// Coverage: choosing the uncovered points from every point's critical radius.
//
// Order used throughout: most isolated first, i.e. by radius descending, ties by index
// descending (the order of a stable ascending sort, reversed, as DataEval's adaptive coverage
// returns it).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace datagauge {

inline bool more_isolated(const float* radii, std::int64_t a, std::int64_t b) {
    const float ra = radii[a], rb = radii[b];
    if (ra > rb) return true;
    if (rb > ra) return false;
    return a > b;
}

// Adaptive coverage: the `selection` points with the largest radii (most isolated first),
// and the radius halfway between the selection-th and (selection+1)-th largest radii
// (the selection-th alone when selection == n).
struct AdaptiveCoverage {
    std::vector<std::int64_t> uncovered;
    double radius;
};

inline AdaptiveCoverage coverage_adaptive(const float* radii, std::int64_t n, std::int64_t selection) {
    if (n < 1) throw std::invalid_argument("coverage needs at least one radius");
    if (selection < 1 || selection > n) throw std::invalid_argument("selection must be in [1, n]");
    for (std::int64_t i = 0; i < n; ++i)
        if (!std::isfinite(radii[i])) throw std::invalid_argument("radii must be finite");
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    const std::int64_t keep = std::min(selection + 1, n);
    auto cmp = [radii](std::int64_t a, std::int64_t b) { return more_isolated(radii, a, b); };
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), cmp);
    AdaptiveCoverage out;
    const double r_sel = radii[order[static_cast<std::size_t>(selection - 1)]];
    out.radius = keep > selection ? 0.5 * (r_sel + radii[order[static_cast<std::size_t>(selection)]]) : r_sel;
    out.uncovered.assign(order.begin(), order.begin() + selection);
    return out;
}

// Naive coverage: every point whose radius is strictly greater than `radius`, most isolated first.
inline std::vector<std::int64_t> coverage_threshold(const float* radii, std::int64_t n, double radius) {
    std::vector<std::int64_t> out;
    for (std::int64_t i = 0; i < n; ++i)
        if (static_cast<double>(radii[i]) > radius) out.push_back(i);
    std::sort(out.begin(), out.end(), [radii](std::int64_t a, std::int64_t b) { return more_isolated(radii, a, b); });
    return out;
}

}  // namespace datagauge
