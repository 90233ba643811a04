// Exhaustive subgroup (tag combination) counting over bit-packed tags.
//
// Layout: tag j of t is a row of W = ceil(n / 64) uint64 words; bit b of word w is sample
// 64 * w + b. Bits past n must be zero. The outcome is an optional packed bitmask of
// "positive" samples (W words) and/or an optional float64 value per sample.
//
// For every combination T of 1..max_tags distinct tags (ids ascending) the kernel computes
//   support   = |{i : i has every tag of T}|            (AND of the rows, popcount)
//   positives = |{i in T : positive[i]}|                 (AND with the outcome, popcount)
//   sum, sumsq of value[i] over the samples of T         (ctz loop over the set bits)
// These are mergeable partials: the counts of a block of words add across blocks.
//
// subgroup_search enumerates combinations depth-first in lexicographic order with support
// pruning: a combination with support < min_support is neither emitted nor extended (support
// is anti-monotone, so no superset could reach min_support). The AND of a prefix is kept in a
// per-depth buffer, so each combination costs one pass over W words.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "datagauge/parallel.hpp"

namespace datagauge {

constexpr int kMaxSubgroupTags = 4;          // longest combination
constexpr std::int64_t kMaxTagColumns = 4096;  // most tag columns the search accepts

struct PackedTags {
    const std::uint64_t* tags = nullptr;       // t x W
    std::int64_t t = 0, n = 0, W = 0;
    const std::uint64_t* positives = nullptr;  // W words, or nullptr
    const double* values = nullptr;            // n values, or nullptr
};

struct GroupCounts {
    std::int64_t support = 0, positives = 0;
    double sum = 0.0, sumsq = 0.0;
};

namespace detail {

inline int popcount64_generic(std::uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
#endif
}

inline int ctz64(std::uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int c = 0;
    while ((x & 1) == 0) { x >>= 1; ++c; }
    return c;
#endif
}

#if defined(__GNUC__) || defined(__clang__)
#define DATAGAUGE_POPCNT(x) __builtin_popcountll(x)
#define DATAGAUGE_INLINE __attribute__((always_inline)) inline
#else
#define DATAGAUGE_POPCNT(x) popcount64_generic(x)
#define DATAGAUGE_INLINE inline
#endif

// Counts of x[w] = a[w] & b[w] over words [w0, w1), stored to out[w] when Store. Values are
// indexed by sample (64 * w + bit).
template <bool Store, bool Pos, bool Val>
DATAGAUGE_INLINE GroupCounts and_count_impl(const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p,
                                            const double* v, std::uint64_t* out, std::int64_t w0, std::int64_t w1) {
    std::int64_t sup = 0, pos = 0;
    double s = 0.0, ss = 0.0;
    for (std::int64_t w = w0; w < w1; ++w) {
        const std::uint64_t x = a[w] & b[w];
        if constexpr (Store) out[w] = x;
        sup += DATAGAUGE_POPCNT(x);
        if constexpr (Pos) pos += DATAGAUGE_POPCNT(x & p[w]);
        if constexpr (Val) {
            std::uint64_t y = x;
            const double* vw = v + 64 * w;
            while (y) {
                const double z = vw[ctz64(y)];
                s += z;
                ss += z * z;
                y &= y - 1;
            }
        }
    }
    GroupCounts c;
    c.support = sup;
    c.positives = pos;
    c.sum = s;
    c.sumsq = ss;
    return c;
}

// b == nullptr means "a alone" (a & a); out, p, v may be null.
#define DATAGAUGE_AND_COUNT_BODY                                                              \
    if (!b) b = a;                                                                            \
    if (out) {                                                                                \
        if (p) return v ? and_count_impl<true, true, true>(a, b, p, v, out, w0, w1)           \
                        : and_count_impl<true, true, false>(a, b, p, v, out, w0, w1);         \
        return v ? and_count_impl<true, false, true>(a, b, p, v, out, w0, w1)                 \
                 : and_count_impl<true, false, false>(a, b, p, v, out, w0, w1);               \
    }                                                                                         \
    if (p) return v ? and_count_impl<false, true, true>(a, b, p, v, out, w0, w1)              \
                    : and_count_impl<false, true, false>(a, b, p, v, out, w0, w1);            \
    return v ? and_count_impl<false, false, true>(a, b, p, v, out, w0, w1)                    \
             : and_count_impl<false, false, false>(a, b, p, v, out, w0, w1);

using AndCountFn = GroupCounts (*)(const std::uint64_t*, const std::uint64_t*, const std::uint64_t*,
                                   const double*, std::uint64_t*, std::int64_t, std::int64_t);

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
// Same loops compiled with the POPCNT instruction; chosen at run time when the CPU has it, so
// the build itself stays portable (no -march flags).
__attribute__((target("popcnt"))) inline GroupCounts and_count_popcnt(
    const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p, const double* v,
    std::uint64_t* out, std::int64_t w0, std::int64_t w1) {
    DATAGAUGE_AND_COUNT_BODY
}
inline GroupCounts and_count_default(const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p,
                                     const double* v, std::uint64_t* out, std::int64_t w0, std::int64_t w1) {
    DATAGAUGE_AND_COUNT_BODY
}
inline AndCountFn select_and_count() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt") ? &and_count_popcnt : &and_count_default;
}
#else
inline GroupCounts and_count_default(const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p,
                                     const double* v, std::uint64_t* out, std::int64_t w0, std::int64_t w1) {
    DATAGAUGE_AND_COUNT_BODY
}
inline AndCountFn select_and_count() { return &and_count_default; }
#endif
#undef DATAGAUGE_AND_COUNT_BODY
#undef DATAGAUGE_POPCNT
#undef DATAGAUGE_INLINE

}  // namespace detail

// Results of the search, one entry per emitted combination, in lexicographic order.
struct SubgroupTable {
    int max_tags = 1;
    std::vector<std::int32_t> combos;  // rows of max_tags tag ids, padded with -1
    std::vector<GroupCounts> counts;
};

inline void check_packed(const PackedTags& in) {
    if (in.t < 1 || in.n < 1) throw std::invalid_argument("need at least one tag and one sample");
    if (in.W != (in.n + 63) / 64)
        throw std::invalid_argument("packed tags have " + std::to_string(in.W) + " words per tag, expected ceil(n / 64) = " +
                                    std::to_string((in.n + 63) / 64));
    // Bits past n must be zero, or the value loop would read past the end of the values.
    const int tail = static_cast<int>(in.n % 64);
    if (tail != 0) {
        const std::uint64_t mask = ~((std::uint64_t{1} << tail) - 1);
        for (std::int64_t j = 0; j < in.t; ++j)
            if (in.tags[j * in.W + in.W - 1] & mask)
                throw std::invalid_argument("tag " + std::to_string(j) + " has bits set past sample n - 1");
        if (in.positives && (in.positives[in.W - 1] & mask))
            throw std::invalid_argument("the outcome mask has bits set past sample n - 1");
    }
}

// Counts of explicit combinations (rows of `width` tag ids, -1 = unused; an all -1 row is the
// whole data set) over words [w0, w1): a mergeable partial result.
inline std::vector<GroupCounts> subgroup_counts(const PackedTags& in, const std::int32_t* combos, std::int64_t m,
                                                int width, std::int64_t w0, std::int64_t w1, int n_threads) {
    check_packed(in);
    if (width < 1 || width > kMaxSubgroupTags)
        throw std::invalid_argument("combinations must have 1.." + std::to_string(kMaxSubgroupTags) + " columns");
    if (w0 < 0 || w1 < w0 || w1 > in.W) throw std::invalid_argument("word range outside [0, W]");
    for (std::int64_t i = 0; i < m * width; ++i)
        if (combos[i] < -1 || combos[i] >= in.t)
            throw std::invalid_argument("combination tag id " + std::to_string(combos[i]) + " outside [-1, t)");
    const detail::AndCountFn kernel = detail::select_and_count();
    std::vector<GroupCounts> out(static_cast<std::size_t>(m));
    std::vector<std::uint64_t> ones;
    const std::uint64_t* all = nullptr;
    auto needs_all = [&]() {
        for (std::int64_t i = 0; i < m; ++i)
            if (combos[i * width] < 0) return true;
        return false;
    };
    if (needs_all()) {
        ones.assign(static_cast<std::size_t>(in.W), ~std::uint64_t{0});
        const int tail = static_cast<int>(in.n % 64);
        if (tail != 0) ones.back() = (std::uint64_t{1} << tail) - 1;
        all = ones.data();
    }
    parallel_for(static_cast<std::size_t>(m), n_threads, 16, [&](std::size_t s, std::size_t e) {
        std::vector<std::uint64_t> buf(static_cast<std::size_t>(in.W));
        for (std::size_t r = s; r < e; ++r) {
            const std::int32_t* row = combos + r * static_cast<std::size_t>(width);
            std::vector<std::int32_t> ids;
            for (int k = 0; k < width; ++k)
                if (row[k] >= 0) ids.push_back(row[k]);
            if (ids.empty()) {
                out[r] = kernel(all, nullptr, in.positives, in.values, nullptr, w0, w1);
                continue;
            }
            const std::uint64_t* cur = in.tags + static_cast<std::int64_t>(ids[0]) * in.W;
            for (std::size_t k = 1; k + 1 < ids.size(); ++k) {
                kernel(cur, in.tags + static_cast<std::int64_t>(ids[k]) * in.W, nullptr, nullptr, buf.data(), w0, w1);
                cur = buf.data();
            }
            const std::uint64_t* last = ids.size() > 1 ? in.tags + static_cast<std::int64_t>(ids.back()) * in.W : nullptr;
            out[r] = kernel(cur, last, in.positives, in.values, nullptr, w0, w1);
        }
    });
    return out;
}

// Every combination of 1..max_tags tags with support >= min_support, lexicographic order.
// Throws std::length_error when more than max_results combinations qualify.
inline SubgroupTable subgroup_search(const PackedTags& in, int max_tags, std::int64_t min_support,
                                     std::int64_t max_results, int n_threads, std::int64_t first_begin,
                                     std::int64_t first_end) {
    check_packed(in);
    if (max_tags < 1 || max_tags > kMaxSubgroupTags)
        throw std::invalid_argument("max_tags must be in 1.." + std::to_string(kMaxSubgroupTags));
    if (in.t > kMaxTagColumns)
        throw std::invalid_argument("at most " + std::to_string(kMaxTagColumns) + " tag columns are supported");
    if (min_support < 1) throw std::invalid_argument("min_support must be >= 1");
    const detail::AndCountFn kernel = detail::select_and_count();
    const std::int64_t t = in.t, W = in.W;

    // Singles first: their support decides which tags can take part at all.
    std::vector<GroupCounts> single(static_cast<std::size_t>(t));
    parallel_for(static_cast<std::size_t>(t), n_threads, 1, [&](std::size_t s, std::size_t e) {
        for (std::size_t j = s; j < e; ++j)
            single[j] = kernel(in.tags + static_cast<std::int64_t>(j) * W, nullptr, in.positives, in.values, nullptr, 0, W);
    });
    std::vector<std::int32_t> alive;
    for (std::int64_t j = 0; j < t; ++j)
        if (single[static_cast<std::size_t>(j)].support >= min_support) alive.push_back(static_cast<std::int32_t>(j));

    struct Local {
        std::vector<std::int32_t> combos;
        std::vector<GroupCounts> counts;
    };
    std::vector<Local> per_first(alive.size());
    std::atomic<std::int64_t> emitted{0};

    first_begin = std::max<std::int64_t>(first_begin, 0);
    first_end = std::min<std::int64_t>(first_end, static_cast<std::int64_t>(alive.size()));
    if (first_end <= first_begin) return SubgroupTable{max_tags, {}, {}};

    parallel_for(static_cast<std::size_t>(first_end - first_begin), n_threads, 1, [&](std::size_t s, std::size_t e) {
        std::vector<std::uint64_t> bufs(static_cast<std::size_t>(std::max(0, max_tags - 2) * W));
        std::int32_t path[kMaxSubgroupTags];
        for (std::size_t fi = s; fi < e; ++fi) {
            const std::size_t a0 = static_cast<std::size_t>(first_begin) + fi;
            Local& loc = per_first[a0];
            auto emit = [&](int depth, const GroupCounts& c) {
                for (int k = 0; k < max_tags; ++k) loc.combos.push_back(k < depth ? path[k] : -1);
                loc.counts.push_back(c);
                if (emitted.fetch_add(1, std::memory_order_relaxed) + 1 > max_results)
                    throw std::length_error("more than " + std::to_string(max_results) +
                                            " combinations reach min_support");
            };
            path[0] = alive[a0];
            emit(1, single[static_cast<std::size_t>(alive[a0])]);
            // Depth-first over extensions; prefix AND of depth d (d >= 2) lives in bufs[d - 2].
            struct Frame {
                const std::uint64_t* prefix;
                std::size_t next;  // position in `alive` of the next candidate
            };
            Frame stack[kMaxSubgroupTags + 1];
            int depth = 1;  // tags in the current prefix
            stack[1] = Frame{in.tags + static_cast<std::int64_t>(alive[a0]) * W, a0 + 1};
            while (depth >= 1) {
                Frame& f = stack[depth];
                if (depth >= max_tags || f.next >= alive.size()) {
                    --depth;
                    continue;
                }
                const std::size_t ai = f.next++;
                const std::int32_t j = alive[ai];
                const std::uint64_t* row = in.tags + static_cast<std::int64_t>(j) * W;
                const bool extend = depth + 1 < max_tags;
                std::uint64_t* out = extend ? bufs.data() + static_cast<std::size_t>(depth - 1) * W : nullptr;
                const GroupCounts c = kernel(f.prefix, row, in.positives, in.values, out, 0, W);
                if (c.support < min_support) continue;
                path[depth] = j;
                emit(depth + 1, c);
                if (extend) {
                    stack[depth + 1] = Frame{out, ai + 1};
                    ++depth;
                }
            }
        }
    });

    SubgroupTable table;
    table.max_tags = max_tags;
    std::size_t total = 0;
    for (const Local& l : per_first) total += l.counts.size();
    table.combos.reserve(total * static_cast<std::size_t>(max_tags));
    table.counts.reserve(total);
    for (Local& l : per_first) {
        table.combos.insert(table.combos.end(), l.combos.begin(), l.combos.end());
        table.counts.insert(table.counts.end(), l.counts.begin(), l.counts.end());
        std::vector<std::int32_t>().swap(l.combos);
        std::vector<GroupCounts>().swap(l.counts);
    }
    return table;
}

}  // namespace datagauge
