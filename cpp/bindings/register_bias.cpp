#include "common.hpp"
#include "datagauge/stats.hpp"
#include "datagauge/subgroups.hpp"

namespace datagauge::bindings {

namespace {

using U64Array = py::array_t<std::uint64_t, py::array::c_style>;
using I32Array = py::array_t<std::int32_t, py::array::c_style>;
using F64Array = py::array_t<double, py::array::c_style>;

PackedTags packed_input(const U64Array& tags, std::int64_t n, const std::optional<U64Array>& positives,
                        const std::optional<F64Array>& values) {
    require_ndim(tags, 2, "tags");
    PackedTags in;
    in.tags = tags.data();
    in.t = tags.shape(0);
    in.W = tags.shape(1);
    in.n = n;
    if (n < 1) throw std::invalid_argument("n must be >= 1");
    if (in.W != (n + 63) / 64)
        throw std::invalid_argument("tags must have ceil(n / 64) = " + std::to_string((n + 63) / 64) +
                                    " words per row, got " + std::to_string(in.W));
    if (positives) {
        require_ndim(*positives, 1, "positives");
        if (positives->shape(0) != in.W) throw std::invalid_argument("positives must have as many words as a tag row");
        in.positives = positives->data();
    }
    if (values) {
        require_ndim(*values, 1, "values");
        if (values->shape(0) != n) throw std::invalid_argument("values must have n entries");
        in.values = values->data();
    }
    return in;
}

py::tuple counts_to_arrays(const std::vector<GroupCounts>& counts) {
    const auto m = static_cast<py::ssize_t>(counts.size());
    IndexArray sup(m), pos(m);
    F64Array s(m), ss(m);
    auto* sp = sup.mutable_data();
    auto* pp = pos.mutable_data();
    auto* s1 = s.mutable_data();
    auto* s2 = ss.mutable_data();
    for (py::ssize_t i = 0; i < m; ++i) {
        sp[i] = counts[static_cast<std::size_t>(i)].support;
        pp[i] = counts[static_cast<std::size_t>(i)].positives;
        s1[i] = counts[static_cast<std::size_t>(i)].sum;
        s2[i] = counts[static_cast<std::size_t>(i)].sumsq;
    }
    return py::make_tuple(sup, pos, s, ss);
}

py::tuple search(const U64Array& tags, std::int64_t n, std::optional<U64Array> positives,
                 std::optional<F64Array> values, int max_tags, std::int64_t min_support, std::int64_t max_results,
                 int n_threads) {
    const PackedTags in = packed_input(tags, n, positives, values);
    if (max_results < 0) throw std::invalid_argument("max_results must be >= 0");
    SubgroupTable table;
    // Between batches of prefixes, take the GIL back briefly so that Ctrl-C interrupts.
    const std::function<void()> check_signals = [] {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    };
    {
        py::gil_scoped_release nogil;
        table = subgroup_search(in, max_tags, min_support, max_results, n_threads, check_signals);
    }
    const auto m = static_cast<py::ssize_t>(table.counts.size());
    I32Array combos({m, static_cast<py::ssize_t>(max_tags)});
    std::copy(table.combos.begin(), table.combos.end(), combos.mutable_data());
    std::vector<std::int32_t>().swap(table.combos);
    py::tuple rest = counts_to_arrays(table.counts);
    return py::make_tuple(combos, rest[0], rest[1], rest[2], rest[3]);
}

py::tuple counts(const U64Array& tags, std::int64_t n, std::optional<U64Array> positives,
                 std::optional<F64Array> values, const I32Array& combos, std::int64_t word_begin,
                 std::int64_t word_end, int n_threads) {
    const PackedTags in = packed_input(tags, n, positives, values);
    require_ndim(combos, 2, "combos");
    const std::int32_t* cp = combos.data();
    const std::int64_t m = combos.shape(0);
    const int width = static_cast<int>(combos.shape(1));
    std::vector<GroupCounts> out;
    {
        py::gil_scoped_release nogil;
        out = subgroup_counts(in, cp, m, width, word_begin, word_end, n_threads);
    }
    return counts_to_arrays(out);
}

void require_same_length(std::initializer_list<const py::array*> arrays) {
    for (const py::array* a : arrays) require_ndim(*a, 1, "test inputs");
    const py::ssize_t m = (*arrays.begin())->shape(0);
    for (const py::array* a : arrays)
        if (a->shape(0) != m) throw std::invalid_argument("all test inputs must have the same length");
}

F64Array fisher(const IndexArray& c00, const IndexArray& c01, const IndexArray& c10, const IndexArray& c11,
                int n_threads) {
    require_same_length({&c00, &c01, &c10, &c11});
    const std::int64_t m = c00.shape(0);
    F64Array p(m);
    const auto *a = c00.data(), *b = c01.data(), *c = c10.data(), *d = c11.data();
    for (std::int64_t i = 0; i < m; ++i)
        if (a[i] < 0 || b[i] < 0 || c[i] < 0 || d[i] < 0)
            throw std::invalid_argument("table cells must be non-negative");
    double* pp = p.mutable_data();
    run_blocks_nogil(m, n_threads, 1 << 16, 64, [&](std::int64_t s, std::int64_t e) {
        for (std::int64_t i = s; i < e; ++i) pp[i] = stats::fisher_two_sided(a[i], b[i], c[i], d[i]);
    });
    return p;
}

py::tuple ztest(const IndexArray& x1, const IndexArray& n1, const IndexArray& x2, const IndexArray& n2,
                int n_threads) {
    require_same_length({&x1, &n1, &x2, &n2});
    const std::int64_t m = x1.shape(0);
    F64Array z(m), p(m);
    const auto *a = x1.data(), *b = n1.data(), *c = x2.data(), *d = n2.data();
    double *zp = z.mutable_data(), *pp = p.mutable_data();
    run_blocks_nogil(m, n_threads, 1 << 18, 1024, [&](std::int64_t s, std::int64_t e) {
        for (std::int64_t i = s; i < e; ++i) {
            const auto r = stats::two_proportion_z(a[i], b[i], c[i], d[i]);
            zp[i] = r.statistic;
            pp[i] = r.p;
        }
    });
    return py::make_tuple(z, p);
}

py::tuple welch(const F64Array& m1, const F64Array& v1, const IndexArray& n1, const F64Array& m2,
                const F64Array& v2, const IndexArray& n2, int n_threads) {
    require_same_length({&m1, &v1, &n1, &m2, &v2, &n2});
    const std::int64_t m = m1.shape(0);
    F64Array t(m), df(m), p(m);
    const double *a = m1.data(), *b = v1.data(), *d = m2.data(), *e2 = v2.data();
    const std::int64_t *c = n1.data(), *f = n2.data();
    double *tp = t.mutable_data(), *dp = df.mutable_data(), *pp = p.mutable_data();
    run_blocks_nogil(m, n_threads, 1 << 16, 64, [&](std::int64_t s, std::int64_t e) {
        for (std::int64_t i = s; i < e; ++i) {
            const auto r = stats::welch_t(a[i], b[i], c[i], d[i], e2[i], f[i]);
            tp[i] = r.statistic;
            dp[i] = r.df;
            pp[i] = r.p;
        }
    });
    return py::make_tuple(t, df, p);
}

U64Array pack(const py::array_t<std::uint8_t, py::array::c_style>& x, int n_threads) {
    require_ndim(x, 2, "x");
    const std::int64_t n = x.shape(0), t = x.shape(1);
    if (n < 1 || t < 1) throw std::invalid_argument("x must be non-empty");
    U64Array out({static_cast<py::ssize_t>(t), static_cast<py::ssize_t>((n + 63) / 64)});
    const std::uint8_t* xp = x.data();
    std::uint64_t* op = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        pack_columns(xp, n, t, op, n_threads);
    }
    return out;
}

}  // namespace

void register_bias(py::module_& m) {
    m.attr("MAX_SUBGROUP_TAGS") = kMaxSubgroupTags;
    m.attr("MAX_TAG_COLUMNS") = kMaxTagColumns;
    m.def("subgroup_search", &search, py::arg("tags").noconvert(), py::arg("n"),
          py::arg("positives").noconvert() = py::none(), py::arg("values").noconvert() = py::none(),
          py::arg("max_tags") = 3, py::arg("min_support") = 1, py::arg("max_results") = 10000000,
          py::arg("n_threads") = 0, R"doc(
Every combination of 1..max_tags tags whose support reaches min_support.

Parameters
----------
tags : ndarray of uint64, shape (t, ceil(n / 64))
    Bit-packed tag columns: bit b of word w of row j is sample 64 * w + b having tag j. Bits
    past n must be zero. t <= MAX_TAG_COLUMNS.
n : int
    Number of samples.
positives : ndarray of uint64, shape (ceil(n / 64),), optional
    Packed outcome mask; `positives` counts its set bits inside each subgroup.
values : ndarray of float64, shape (n,), optional
    Per-sample values; `sum` and `sumsq` are their sum and sum of squares in each subgroup.
max_tags : int
    Longest combination, 1..MAX_SUBGROUP_TAGS.
min_support : int
    Combinations with fewer samples are neither returned nor extended (support pruning).
max_results : int
    ValueError when more combinations than this qualify.
n_threads : int
    Threads; <= 0 for all hardware threads.

Returns
-------
combos : ndarray of int32, shape (m, max_tags)
    Tag ids, ascending, padded with -1; rows by size, then lexicographic.
support, positives : ndarray of int64, shape (m,)
sum, sumsq : ndarray of float64, shape (m,)
)doc");
    m.def("pack_columns", &pack, py::arg("x").noconvert(), py::arg("n_threads") = 0, R"doc(
Bit-pack the columns of a C-contiguous uint8 (n, t) 0/1 matrix (a bool matrix viewed as uint8).

Returns uint64 (t, ceil(n / 64)): bit b of word w of row j is x[64 w + b, j] != 0.
)doc");
    m.def("subgroup_counts", &counts, py::arg("tags").noconvert(), py::arg("n"),
          py::arg("positives").noconvert() = py::none(), py::arg("values").noconvert() = py::none(),
          py::arg("combos").noconvert(), py::arg("word_begin"), py::arg("word_end"), py::arg("n_threads") = 0,
          R"doc(
Counts of given combinations over words [word_begin, word_end): a mergeable partial.

Counts of consecutive word ranges add up to the counts over their union. A row of all -1 is
the whole data set. Returns (support, positives, sum, sumsq) as in subgroup_search.
)doc");
    m.def("fisher_exact_2x2", &fisher, py::arg("c00").noconvert(), py::arg("c01").noconvert(),
          py::arg("c10").noconvert(), py::arg("c11").noconvert(), py::arg("n_threads") = 0, R"doc(
Two-sided Fisher exact p-values of 2x2 tables [[c00, c01], [c10, c11]] (int64 arrays, one
table per entry), as scipy.stats.fisher_exact defines them. Returns float64 (m,).
)doc");
    m.def("two_proportion_ztest", &ztest, py::arg("x1").noconvert(), py::arg("n1").noconvert(),
          py::arg("x2").noconvert(), py::arg("n2").noconvert(), py::arg("n_threads") = 0, R"doc(
Pooled two-proportion z-test of x1 / n1 against x2 / n2 (int64 arrays). Returns (z, p),
float64 (m,); degenerate tables give z = 0, p = 1.
)doc");
    m.def("welch_ttest", &welch, py::arg("mean1").noconvert(), py::arg("var1").noconvert(),
          py::arg("n1").noconvert(), py::arg("mean2").noconvert(), py::arg("var2").noconvert(),
          py::arg("n2").noconvert(), py::arg("n_threads") = 0, R"doc(
Welch's t-test from summary statistics (float64 means and ddof=1 variances, int64 sizes).
Returns (t, df, p), float64 (m,). Sides with < 2 samples give p = 1.
)doc");
}

}  // namespace datagauge::bindings
