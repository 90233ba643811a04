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
// subgroup_search enumerates combinations level by level (size 1, 2, ...) with support
// pruning: a combination with support < min_support is neither emitted nor extended (support
// is anti-monotone, so no superset could reach min_support). Work is split over prefixes (the
// combinations of the previous level) across threads; for each block of words the AND of a
// prefix is formed once in a small buffer and every extension of it costs one AND + popcount
// pass over the block, so rows stay in cache and nothing of size n x combinations is built.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
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

// Counts of x[w] = a[w] & b[w] over words [0, len), stored to out[w] when Store. Callers pass
// every pointer already offset to the first word of their range (values: to its first sample),
// so v[64 * w + bit] is the value of the sample of bit `bit` of word w.
template <bool Store, bool Pos, bool Val>
DATAGAUGE_INLINE GroupCounts and_count_impl(const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p,
                                            const double* v, std::uint64_t* out, std::int64_t len) {
    std::int64_t sup = 0, pos = 0;
    double s = 0.0, ss = 0.0;
    for (std::int64_t w = 0; w < len; ++w) {
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
        if (p) return v ? and_count_impl<true, true, true>(a, b, p, v, out, len)           \
                        : and_count_impl<true, true, false>(a, b, p, v, out, len);         \
        return v ? and_count_impl<true, false, true>(a, b, p, v, out, len)                 \
                 : and_count_impl<true, false, false>(a, b, p, v, out, len);               \
    }                                                                                         \
    if (p) return v ? and_count_impl<false, true, true>(a, b, p, v, out, len)              \
                    : and_count_impl<false, true, false>(a, b, p, v, out, len);            \
    return v ? and_count_impl<false, false, true>(a, b, p, v, out, len)                    \
             : and_count_impl<false, false, false>(a, b, p, v, out, len);

using AndCountFn = GroupCounts (*)(const std::uint64_t*, const std::uint64_t*, const std::uint64_t*,
                                   const double*, std::uint64_t*, std::int64_t);

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
// Same loops compiled with the POPCNT instruction; chosen at run time when the CPU has it, so
// the build itself stays portable (no -march flags).
__attribute__((target("popcnt"))) inline GroupCounts and_count_popcnt(
    const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p, const double* v,
    std::uint64_t* out, std::int64_t len) {
    DATAGAUGE_AND_COUNT_BODY
}
inline GroupCounts and_count_default(const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p,
                                     const double* v, std::uint64_t* out, std::int64_t len) {
    DATAGAUGE_AND_COUNT_BODY
}
inline AndCountFn select_and_count() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt") ? &and_count_popcnt : &and_count_default;
}
#else
inline GroupCounts and_count_default(const std::uint64_t* a, const std::uint64_t* b, const std::uint64_t* p,
                                     const double* v, std::uint64_t* out, std::int64_t len) {
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

inline GroupCounts& operator+=(GroupCounts& a, const GroupCounts& b) {
    a.support += b.support;
    a.positives += b.positives;
    a.sum += b.sum;
    a.sumsq += b.sumsq;
    return a;
}

namespace detail {
// Pointers of a PackedTags offset to word w0 (values to sample 64 * w0).
struct Range {
    const std::uint64_t* p;
    const double* v;
};
inline Range range_at(const PackedTags& in, std::int64_t w0) {
    return {in.positives ? in.positives + w0 : nullptr, in.values ? in.values + 64 * w0 : nullptr};
}
}  // namespace detail

// Pack the columns of a row-major (n, t) 0/1 byte matrix: out (t, ceil(n / 64)) words, bit b of
// word w of row j = x[64 w + b, j] != 0. Parallel over words (64 samples each).
inline void pack_columns(const std::uint8_t* x, std::int64_t n, std::int64_t t, std::uint64_t* out, int n_threads) {
    const std::int64_t W = (n + 63) / 64;
    parallel_for(static_cast<std::size_t>(W), n_threads, 64, [&](std::size_t s, std::size_t e) {
        std::vector<std::uint64_t> acc(static_cast<std::size_t>(t));
        for (std::size_t w = s; w < e; ++w) {
            std::fill(acc.begin(), acc.end(), 0);
            const std::int64_t i0 = static_cast<std::int64_t>(w) * 64;
            const std::int64_t i1 = std::min(n, i0 + 64);
            for (std::int64_t i = i0; i < i1; ++i) {
                const std::uint8_t* row = x + i * t;
                const int bit = static_cast<int>(i - i0);
                for (std::int64_t j = 0; j < t; ++j)
                    acc[static_cast<std::size_t>(j)] |= static_cast<std::uint64_t>(row[j] != 0) << bit;
            }
            for (std::int64_t j = 0; j < t; ++j) out[j * W + static_cast<std::int64_t>(w)] = acc[static_cast<std::size_t>(j)];
        }
    });
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
        std::vector<std::uint64_t> buf(static_cast<std::size_t>(std::max<std::int64_t>(w1 - w0, 1)));
        for (std::size_t r = s; r < e; ++r) {
            const std::int32_t* row = combos + r * static_cast<std::size_t>(width);
            std::vector<std::int32_t> ids;
            for (int k = 0; k < width; ++k)
                if (row[k] >= 0) ids.push_back(row[k]);
            const detail::Range rg = detail::range_at(in, w0);
            const std::int64_t len = w1 - w0;
            if (ids.empty()) {
                out[r] = kernel(all + w0, nullptr, rg.p, rg.v, nullptr, len);
                continue;
            }
            const std::uint64_t* cur = in.tags + static_cast<std::int64_t>(ids[0]) * in.W + w0;
            for (std::size_t k = 1; k + 1 < ids.size(); ++k) {
                kernel(cur, in.tags + static_cast<std::int64_t>(ids[k]) * in.W + w0, nullptr, nullptr, buf.data(), len);
                cur = buf.data();
            }
            const std::uint64_t* last =
                ids.size() > 1 ? in.tags + static_cast<std::int64_t>(ids.back()) * in.W + w0 : nullptr;
            out[r] = kernel(cur, last, rg.p, rg.v, nullptr, len);
        }
    });
    return out;
}

// Every combination of 1..max_tags tags with support >= min_support, ordered by size, then
// lexicographically. Level by level: the candidates of size L are the size-(L-1) results
// extended by a later tag that has the support itself (support pruning: a combination below
// min_support is never extended). Counts are accumulated over blocks of kBlockWords words, so
// the rows of a block stay in cache while every candidate of a group of prefixes is counted;
// each block's counts are partial sums that add up (mergeable).
// Throws std::length_error when more than max_results combinations qualify.
constexpr std::int64_t kBlockWords = 512;

// `checkpoint`, when set, is called on the calling thread between batches of work (so that a
// caller can check for interruption; whatever it throws propagates).
inline SubgroupTable subgroup_search(const PackedTags& in, int max_tags, std::int64_t min_support,
                                     std::int64_t max_results, int n_threads,
                                     const std::function<void()>& checkpoint = {}) {
    check_packed(in);
    if (max_tags < 1 || max_tags > kMaxSubgroupTags)
        throw std::invalid_argument("max_tags must be in 1.." + std::to_string(kMaxSubgroupTags));
    if (in.t > kMaxTagColumns)
        throw std::invalid_argument("at most " + std::to_string(kMaxTagColumns) + " tag columns are supported");
    if (min_support < 1) throw std::invalid_argument("min_support must be >= 1");
    const detail::AndCountFn kernel = detail::select_and_count();
    const std::int64_t t = in.t, W = in.W;
    auto row_of = [&](std::int32_t j) { return in.tags + static_cast<std::int64_t>(j) * W; };

    SubgroupTable table;
    table.max_tags = max_tags;
    std::atomic<std::int64_t> emitted{0};
    auto count_emitted = [&](std::int64_t k) {
        if (emitted.fetch_add(k, std::memory_order_relaxed) + k > max_results)
            throw std::length_error("more than " + std::to_string(max_results) + " combinations reach min_support");
    };

    // Level 1: singles, whole rows.
    std::vector<GroupCounts> single(static_cast<std::size_t>(t));
    parallel_for(static_cast<std::size_t>(t), n_threads, 1, [&](std::size_t s, std::size_t e) {
        const detail::Range rg = detail::range_at(in, 0);
        for (std::size_t j = s; j < e; ++j)
            single[j] = kernel(row_of(static_cast<std::int32_t>(j)), nullptr, rg.p, rg.v, nullptr, W);
    });
    std::vector<std::int32_t> alive;
    for (std::int64_t j = 0; j < t; ++j)
        if (single[static_cast<std::size_t>(j)].support >= min_support) alive.push_back(static_cast<std::int32_t>(j));
    count_emitted(static_cast<std::int64_t>(alive.size()));
    for (std::int32_t j : alive) {
        table.combos.push_back(j);
        for (int k = 1; k < max_tags; ++k) table.combos.push_back(-1);
        table.counts.push_back(single[static_cast<std::size_t>(j)]);
    }
    // first position in `alive` of a tag id > j
    std::vector<std::size_t> after(static_cast<std::size_t>(t) + 1, alive.size());
    for (std::int64_t j = t - 1, a = static_cast<std::int64_t>(alive.size()); j >= 0; --j) {
        while (a > 0 && alive[static_cast<std::size_t>(a - 1)] > j) --a;
        after[static_cast<std::size_t>(j)] = static_cast<std::size_t>(a);
    }

    std::vector<std::int32_t> prefixes(alive.begin(), alive.end());  // rows of width L - 1
    for (int L = 2; L <= max_tags && !prefixes.empty(); ++L) {
        const int pw = L - 1;
        const std::size_t n_pre = prefixes.size() / static_cast<std::size_t>(pw);
        // Group prefixes so that a group has a few thousand candidates.
        const std::size_t per_prefix = std::max<std::size_t>(alive.size() / 2, 1);
        const std::size_t group = std::clamp<std::size_t>(4096 / per_prefix, 1, 64);
        const std::size_t n_groups = (n_pre + group - 1) / group;
        struct Local {
            std::vector<std::int32_t> combos;
            std::vector<GroupCounts> counts;
        };
        std::vector<Local> locals(n_groups);
        const std::size_t batch = group * 64;  // prefixes between checkpoints
        for (std::size_t b0 = 0; b0 < n_pre; b0 += batch) {
        parallel_for(std::min(batch, n_pre - b0), n_threads, group, [&](std::size_t s0, std::size_t e0) {
            const std::size_t s = b0 + s0, e = b0 + e0;
            Local& loc = locals[s / group];
            std::vector<std::size_t> first(e - s), offset(e - s + 1, 0);
            for (std::size_t q = s; q < e; ++q) {
                const std::int32_t last = prefixes[q * static_cast<std::size_t>(pw) + static_cast<std::size_t>(pw - 1)];
                first[q - s] = after[static_cast<std::size_t>(last)];
                offset[q - s + 1] = offset[q - s] + (alive.size() - first[q - s]);
            }
            std::vector<GroupCounts> acc(offset.back());
            std::vector<std::uint64_t> buf(static_cast<std::size_t>(kBlockWords));
            for (std::int64_t w0 = 0; w0 < W; w0 += kBlockWords) {
                const std::int64_t len = std::min(kBlockWords, W - w0);
                const detail::Range rg = detail::range_at(in, w0);
                for (std::size_t q = s; q < e; ++q) {
                    const std::int32_t* pre = &prefixes[q * static_cast<std::size_t>(pw)];
                    const std::uint64_t* a = row_of(pre[0]) + w0;
                    if (pw >= 2) {
                        kernel(a, row_of(pre[1]) + w0, nullptr, nullptr, buf.data(), len);
                        for (int k = 2; k < pw; ++k) kernel(buf.data(), row_of(pre[k]) + w0, nullptr, nullptr, buf.data(), len);
                        a = buf.data();
                    }
                    GroupCounts* out = acc.data() + offset[q - s];
                    for (std::size_t c = first[q - s]; c < alive.size(); ++c)
                        *out++ += kernel(a, row_of(alive[c]) + w0, rg.p, rg.v, nullptr, len);
                }
            }
            std::int64_t kept = 0;
            for (std::size_t q = s; q < e; ++q) {
                const std::int32_t* pre = &prefixes[q * static_cast<std::size_t>(pw)];
                for (std::size_t c = first[q - s]; c < alive.size(); ++c) {
                    const GroupCounts& g = acc[offset[q - s] + (c - first[q - s])];
                    if (g.support < min_support) continue;
                    loc.combos.insert(loc.combos.end(), pre, pre + pw);
                    loc.combos.push_back(alive[c]);
                    loc.counts.push_back(g);
                    ++kept;
                }
            }
            count_emitted(kept);
        });
        if (checkpoint) checkpoint();
        }
        std::vector<std::int32_t> next;
        for (Local& l : locals) {
            const std::size_t m = l.counts.size();
            for (std::size_t r = 0; r < m; ++r) {
                const std::int32_t* ids = &l.combos[r * static_cast<std::size_t>(L)];
                table.combos.insert(table.combos.end(), ids, ids + L);
                for (int k = L; k < max_tags; ++k) table.combos.push_back(-1);
                table.counts.push_back(l.counts[r]);
            }
            if (L < max_tags) next.insert(next.end(), l.combos.begin(), l.combos.end());
            std::vector<std::int32_t>().swap(l.combos);
            std::vector<GroupCounts>().swap(l.counts);
        }
        prefixes.swap(next);
    }
    return table;
}

}  // namespace datagauge
