#include <cmath>
#include <memory>

#include "common.hpp"
#include "datagauge/gmm.hpp"
#include "datagauge/kmeans.hpp"

namespace datagauge::bindings {

namespace {

using gmm::Cov;
using gmm::Stats;
using DoubleArray = py::array_t<double, py::array::c_style>;

constexpr std::int64_t kPart = 4096;        // rows per partial statistic (fixed: deterministic sums)
constexpr std::int64_t kOuter = kPart * 32;  // rows between interrupt checks

std::vector<double> to_vector(const DoubleArray& a) { return std::vector<double>(a.data(), a.data() + a.size()); }

DoubleArray to_array(const std::vector<double>& v, std::vector<py::ssize_t> shape) {
    DoubleArray out(shape);
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

std::vector<py::ssize_t> prec_shape(Cov cov, std::int64_t K, std::int64_t d) {
    switch (cov) {
        case Cov::full: return {K, d, d};
        case Cov::tied: return {d, d};
        case Cov::diag: return {K, d};
        default: return {K};
    }
}

void require_shape(const py::array& a, const std::vector<py::ssize_t>& shape, const char* name) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(static_cast<py::ssize_t>(i)) == shape[i];
    if (!ok) {
        std::string want = "(";
        for (std::size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
        want += shape.size() == 1 ? ",)" : ")";
        throw std::invalid_argument(std::string(name) + " must have shape " + want);
    }
}

void require_finite(const double* p, std::int64_t n, const char* name) {
    for (std::int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) throw std::invalid_argument(std::string(name) + " holds NaN or infinite values");
}

struct Model {
    Cov cov;
    std::int64_t K, d;
    const double *w, *mu, *pc;
};

Model check_model(std::int64_t d, const DoubleArray& weights, const DoubleArray& means, const DoubleArray& prec_chol,
                  const std::string& cov_type) {
    const Cov cov = gmm::parse_cov(cov_type);
    require_ndim(weights, 1, "weights");
    const std::int64_t K = weights.shape(0);
    if (K < 1) throw std::invalid_argument("the model needs at least one component");
    require_shape(means, {K, d}, "means");
    require_shape(prec_chol, prec_shape(cov, K, d), "precisions_cholesky");
    require_finite(weights.data(), K, "weights");
    require_finite(means.data(), K * d, "means");
    require_finite(prec_chol.data(), prec_chol.size(), "precisions_cholesky");
    for (std::int64_t k = 0; k < K; ++k)
        if (!(weights.data()[k] > 0)) throw std::invalid_argument("weights must be positive");
    const double* pc = prec_chol.data();
    auto positive = [](double v) { return v > 0; };
    bool ok = true;
    switch (cov) {
        case Cov::full:
            for (std::int64_t k = 0; k < K; ++k)
                for (std::int64_t i = 0; i < d; ++i) ok = ok && positive(pc[(k * d + i) * d + i]);
            break;
        case Cov::tied:
            for (std::int64_t i = 0; i < d; ++i) ok = ok && positive(pc[i * d + i]);
            break;
        default:
            for (py::ssize_t i = 0; i < prec_chol.size(); ++i) ok = ok && positive(pc[i]);
    }
    if (!ok) throw std::invalid_argument("precisions_cholesky must have a positive diagonal");
    return {cov, K, d, weights.data(), means.data(), pc};
}

template <class T>
std::int64_t check_x(const py::array_t<T, py::array::c_style>& X) {
    require_ndim(X, 2, "X");
    if (X.shape(0) < 1 || X.shape(1) < 1) throw std::invalid_argument("X is empty");
    return X.shape(1);
}

// The statistics' shift: K x d, finite.
void require_shift(const DoubleArray& shift, std::int64_t K, std::int64_t d) {
    require_shape(shift, {K, d}, "shift");
    require_finite(shift.data(), K * d, "shift");
}

// K centres of d features (2-D, at least one row, finite); returns K.
std::int64_t check_centres(const DoubleArray& centres, std::int64_t d) {
    require_ndim(centres, 2, "centres");
    const std::int64_t K = centres.shape(0);
    if (K < 1) throw std::invalid_argument("centres needs at least one row");
    require_shape(centres, {K, d}, "centres");
    require_finite(centres.data(), K * d, "centres");
    return K;
}

// A model of K unit-precision components with the given means (equal weights): the layout the
// kernels need when the responsibilities come from elsewhere (given, or nearest centre).
template <class T>
gmm::Prepared<T> unit_model(Cov cov, std::int64_t K, std::int64_t d, const DoubleArray& shift) {
    std::vector<double> w(static_cast<std::size_t>(K), 1.0 / static_cast<double>(K));
    std::vector<double> pc(static_cast<std::size_t>(gmm::prec_size(cov, K, d)), 0.0);
    if (cov == Cov::full || cov == Cov::tied) {
        const std::int64_t nm = cov == Cov::full ? K : 1;
        for (std::int64_t k = 0; k < nm; ++k)
            for (std::int64_t i = 0; i < d; ++i) pc[static_cast<std::size_t>((k * d + i) * d + i)] = 1.0;
    } else {
        std::fill(pc.begin(), pc.end(), 1.0);
    }
    return gmm::Prepared<T>(cov, K, d, w.data(), shift.data(), pc.data(), shift.data());
}

// Statistics over all rows, as fixed parts merged in order (same result for any thread count).
template <class T>
Stats accumulate_impl(const T* x, std::int64_t n, const gmm::Prepared<T>& prep, const double* resp, Stats init,
                      int n_threads) {
    Stats total = init;
    for (std::int64_t o0 = 0; o0 < n; o0 += kOuter) {
        const std::int64_t o1 = std::min(n, o0 + kOuter);
        const std::int64_t n_parts = (o1 - o0 + kPart - 1) / kPart;
        std::vector<Stats> parts(static_cast<std::size_t>(n_parts), init);
        {
            py::gil_scoped_release nogil;
            parallel_for(static_cast<std::size_t>(o1 - o0), n_threads, static_cast<std::size_t>(kPart),
                         [&](std::size_t s, std::size_t e) {
                             Stats& st = parts[s / static_cast<std::size_t>(kPart)];
                             gmm::process_rows<T>(x, o0 + static_cast<std::int64_t>(s), o0 + static_cast<std::int64_t>(e),
                                                  prep, resp, nullptr, nullptr, nullptr, &st);
                         });
            for (const Stats& p : parts) total.merge(p);
        }
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
    return total;
}

template <class T>
Stats accumulate(const py::array_t<T, py::array::c_style>& X, const DoubleArray& weights, const DoubleArray& means,
                 const DoubleArray& prec_chol, const std::string& cov_type, const DoubleArray& shift, int n_threads) {
    const std::int64_t d = check_x(X);
    const Model m = check_model(d, weights, means, prec_chol, cov_type);
    require_shift(shift, m.K, d);
    gmm::Prepared<T> prep(m.cov, m.K, d, m.w, m.mu, m.pc, shift.data());
    Stats init(m.cov, m.K, d, to_vector(shift));
    return accumulate_impl<T>(X.data(), X.shape(0), prep, nullptr, std::move(init), n_threads);
}

template <class T>
Stats accumulate_resp(const py::array_t<T, py::array::c_style>& X, const DoubleArray& resp,
                      const std::string& cov_type, const DoubleArray& shift, int n_threads) {
    const std::int64_t d = check_x(X);
    const Cov cov = gmm::parse_cov(cov_type);
    require_ndim(resp, 2, "resp");
    require_rows(resp, X.shape(0), "resp", "X");
    const std::int64_t K = resp.shape(1);
    if (K < 1) throw std::invalid_argument("resp needs at least one column");
    require_shift(shift, K, d);
    require_finite(resp.data(), resp.size(), "resp");
    const gmm::Prepared<T> prep = unit_model<T>(cov, K, d, shift);
    Stats init(cov, K, d, to_vector(shift));
    return accumulate_impl<T>(X.data(), X.shape(0), prep, resp.data(), std::move(init), n_threads);
}

template <class T>
py::tuple score(const py::array_t<T, py::array::c_style>& X, const DoubleArray& weights, const DoubleArray& means,
                const DoubleArray& prec_chol, const std::string& cov_type, bool return_resp, int n_threads) {
    const std::int64_t d = check_x(X);
    const Model m = check_model(d, weights, means, prec_chol, cov_type);
    const std::int64_t n = X.shape(0);
    gmm::Prepared<T> prep(m.cov, m.K, d, m.w, m.mu, m.pc, nullptr);
    DoubleArray loglik(n);
    DoubleArray resp = return_resp ? DoubleArray({n, m.K}) : DoubleArray(0);
    double* ll = loglik.mutable_data();
    double* rp = return_resp ? resp.mutable_data() : nullptr;
    const T* x = X.data();
    run_blocks_nogil(n, n_threads, kOuter, 1024, [&](std::int64_t s, std::int64_t e) {
        gmm::process_rows<T>(x, s, e, prep, nullptr, ll, rp, nullptr, nullptr);
    });
    if (return_resp) return py::make_tuple(loglik, resp);
    return py::make_tuple(loglik, py::none());
}

// Statistics of a hard assignment: every row to its nearest centre (squared Euclidean).
template <class T>
Stats accumulate_nearest(const py::array_t<T, py::array::c_style>& X, const DoubleArray& centres,
                         const std::string& cov_type, const DoubleArray& shift, int n_threads) {
    const std::int64_t d = check_x(X);
    const Cov cov = gmm::parse_cov(cov_type);
    const std::int64_t K = check_centres(centres, d);
    require_shift(shift, K, d);
    gmm::Prepared<T> prep = unit_model<T>(cov, K, d, shift);
    prep.set_nearest(centres.data());
    Stats init(cov, K, d, to_vector(shift));
    return accumulate_impl<T>(X.data(), X.shape(0), prep, nullptr, std::move(init), n_threads);
}

struct Interrupted {};

// Called between steps of the k-means loops (GIL released): Ctrl-C stops them.
inline void check_signals() {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw Interrupted{};
}

// f() without the GIL; a Ctrl-C seen by check_signals becomes Python's KeyboardInterrupt.
template <class F>
void run_interruptible(F&& f) {
    try {
        py::gil_scoped_release nogil;
        f();
    } catch (const Interrupted&) {
        throw py::error_already_set();
    }
}

template <class T>
py::tuple kmeans_plusplus(const py::array_t<T, py::array::c_style>& X, std::int64_t first, const DoubleArray& draws,
                          int n_threads) {
    const std::int64_t d = check_x(X);
    const std::int64_t n = X.shape(0);
    require_ndim(draws, 2, "draws");
    const std::int64_t K = draws.shape(0) + 1, trials = draws.shape(1);
    if (trials < 1) throw std::invalid_argument("draws needs at least one column (one candidate per centre)");
    if (K > n)
        throw std::invalid_argument("k-means++ needs at most n_samples centres: draws has " + std::to_string(K - 1) +
                                    " rows for " + std::to_string(K) + " centres but X has " + std::to_string(n) +
                                    " rows");
    if (first < 0 || first >= n)
        throw std::invalid_argument("first must index a row of X (0 <= first < " + std::to_string(n) + ")");
    const double* u = draws.data();
    for (py::ssize_t i = 0; i < draws.size(); ++i)
        if (!(u[i] >= 0.0 && u[i] < 1.0)) throw std::invalid_argument("draws must be uniform numbers in [0, 1)");
    DoubleArray centres({K, d});
    py::array_t<std::int64_t> idx(K);
    double* c = centres.mutable_data();
    std::int64_t* ix = idx.mutable_data();
    const T* x = X.data();
    run_interruptible([&] { kmeans::plusplus<T>(x, n, d, K, first, u, trials, n_threads, c, ix, check_signals); });
    return py::make_tuple(centres, idx);
}

template <class T>
py::tuple kmeans_lloyd(const py::array_t<T, py::array::c_style>& X, const DoubleArray& centres, std::int64_t max_iter,
                       double tol, int n_threads) {
    const std::int64_t d = check_x(X);
    const std::int64_t n = X.shape(0);
    require_ndim(centres, 2, "centres");
    const std::int64_t K = centres.shape(0);
    if (K < 1 || K > n)
        throw std::invalid_argument("k-means needs 1 to n_samples centres, got " + std::to_string(K) + " for " +
                                    std::to_string(n) + " rows");
    check_centres(centres, d);
    if (max_iter < 1) throw std::invalid_argument("max_iter must be >= 1");
    if (!(tol >= 0) || !std::isfinite(tol)) throw std::invalid_argument("tol must be a finite number >= 0");
    DoubleArray out({K, d});
    double* c = out.mutable_data();
    std::copy(centres.data(), centres.data() + K * d, c);
    const T* x = X.data();
    std::int64_t it = 0;
    run_interruptible([&] { it = kmeans::lloyd<T>(x, n, d, K, c, max_iter, tol, n_threads, check_signals); });
    return py::make_tuple(out, it);
}

py::tuple m_step(const Stats& st, double reg_covar) {
    if (!(reg_covar >= 0) || !std::isfinite(reg_covar))
        throw std::invalid_argument("reg_covar must be a finite number >= 0");
    gmm::Params p;
    {
        py::gil_scoped_release nogil;
        p = gmm::m_step(st, reg_covar);
    }
    const std::int64_t K = p.K, d = p.d;
    return py::make_tuple(to_array(p.weights, {K}), to_array(p.means, {K, d}),
                          to_array(p.covariances, prec_shape(p.cov, K, d)),
                          to_array(p.prec_chol, prec_shape(p.cov, K, d)));
}

std::vector<py::ssize_t> q_shape(Cov cov, std::int64_t K, std::int64_t d) {
    switch (cov) {
        case Cov::full: return {K, d, d};
        case Cov::tied: return {d, d};
        default: return {K, d};
    }
}

Stats make_stats(const std::string& cov_type, double n, double loglik, const DoubleArray& shift, const DoubleArray& nk,
                 const DoubleArray& s, const DoubleArray& q) {
    const Cov cov = gmm::parse_cov(cov_type);
    require_ndim(shift, 2, "shift");
    const std::int64_t K = shift.shape(0), d = shift.shape(1);
    require_shape(nk, {K}, "nk");
    require_shape(s, {K, d}, "s");
    require_shape(q, q_shape(cov, K, d), "q");
    Stats st(cov, K, d, to_vector(shift));
    st.n = n;
    st.loglik = loglik;
    st.nk = to_vector(nk);
    st.s = to_vector(s);
    st.q = to_vector(q);
    return st;
}

}  // namespace

void register_gmm(py::module_& m) {
    py::class_<Stats>(m, "GmmStats", R"doc(
Mergeable sufficient statistics of one Gaussian-mixture EM step over some rows.

Statistics accumulated with the same model parameters (the same shift) add: ``a.merge(b)``.
Pickles, so partial statistics can travel between processes.
)doc")
        .def(py::init(&make_stats), py::arg("covariance_type"), py::arg("n_samples"), py::arg("loglik"),
             py::arg("shift").noconvert(), py::arg("nk").noconvert(), py::arg("s").noconvert(),
             py::arg("q").noconvert())
        .def("merge", &Stats::merge, py::arg("other"), "Add another block's statistics (same model) in place.")
        .def("copy", [](const Stats& s) { return Stats(s); })
        .def_property_readonly("covariance_type", [](const Stats& s) { return std::string(gmm::cov_name(s.cov)); })
        .def_property_readonly("n_components", [](const Stats& s) { return s.K; })
        .def_property_readonly("n_features", [](const Stats& s) { return s.d; })
        .def_property_readonly("n_samples", [](const Stats& s) { return s.n; })
        .def_property_readonly("loglik", [](const Stats& s) { return s.loglik; })
        .def_property_readonly("shift", [](const Stats& s) { return to_array(s.shift, {s.K, s.d}); })
        .def_property_readonly("nk", [](const Stats& s) { return to_array(s.nk, {s.K}); })
        .def_property_readonly("s", [](const Stats& s) { return to_array(s.s, {s.K, s.d}); })
        .def_property_readonly("q", [](const Stats& s) { return to_array(s.q, q_shape(s.cov, s.K, s.d)); })
        .def(py::pickle(
            [](const Stats& s) {
                return py::make_tuple(std::string(gmm::cov_name(s.cov)), s.n, s.loglik, to_array(s.shift, {s.K, s.d}),
                                      to_array(s.nk, {s.K}), to_array(s.s, {s.K, s.d}),
                                      to_array(s.q, q_shape(s.cov, s.K, s.d)));
            },
            [](const py::tuple& t) {
                if (t.size() != 7) throw std::invalid_argument("invalid GmmStats state");
                return make_stats(t[0].cast<std::string>(), t[1].cast<double>(), t[2].cast<double>(),
                                  t[3].cast<DoubleArray>(), t[4].cast<DoubleArray>(), t[5].cast<DoubleArray>(),
                                  t[6].cast<DoubleArray>());
            }));

    const char* acc_doc = R"doc(
E-step over the rows of X and the M-step's sufficient statistics.

Parameters
----------
X : ndarray of float32 or float64, shape (n, d)
weights : ndarray of float64, shape (K,), positive
means : ndarray of float64, shape (K, d)
prec_chol : ndarray of float64; full (K, d, d), tied (d, d), diag (K, d), spherical (K,)
covariance_type : {"full", "tied", "diag", "spherical"}
shift : ndarray of float64, shape (K, d)
    Statistics are taken about these points (the current means); tied uses row 0.
n_threads : int
    0 for every hardware thread.

Returns
-------
GmmStats
)doc";
    m.def("gmm_accumulate", &accumulate<float>, py::arg("X").noconvert(), py::arg("weights").noconvert(),
          py::arg("means").noconvert(), py::arg("prec_chol").noconvert(), py::arg("covariance_type"),
          py::arg("shift").noconvert(), py::arg("n_threads") = 0, acc_doc);
    m.def("gmm_accumulate", &accumulate<double>, py::arg("X").noconvert(), py::arg("weights").noconvert(),
          py::arg("means").noconvert(), py::arg("prec_chol").noconvert(), py::arg("covariance_type"),
          py::arg("shift").noconvert(), py::arg("n_threads") = 0);
    const char* resp_doc = R"doc(
Sufficient statistics for given responsibilities (initialisation from a hard or soft assignment).

Parameters
----------
X : ndarray of float32 or float64, shape (n, d)
resp : ndarray of float64, shape (n, K)
covariance_type : str
shift : ndarray of float64, shape (K, d)
n_threads : int

Returns
-------
GmmStats
    ``loglik`` is 0 (no model was evaluated).
)doc";
    m.def("gmm_accumulate_resp", &accumulate_resp<float>, py::arg("X").noconvert(), py::arg("resp").noconvert(),
          py::arg("covariance_type"), py::arg("shift").noconvert(), py::arg("n_threads") = 0, resp_doc);
    m.def("gmm_accumulate_resp", &accumulate_resp<double>, py::arg("X").noconvert(), py::arg("resp").noconvert(),
          py::arg("covariance_type"), py::arg("shift").noconvert(), py::arg("n_threads") = 0);
    const char* near_doc = R"doc(
Sufficient statistics of the hard assignment of every row to its nearest centre.

Parameters
----------
X : ndarray of float32 or float64, shape (n, d)
centres : ndarray of float64, shape (K, d)
    Each row goes to its nearest centre (squared Euclidean distance, computed in X's dtype;
    the first centre on ties).
covariance_type : str
shift : ndarray of float64, shape (K, d)
n_threads : int

Returns
-------
GmmStats
    ``loglik`` is 0 (no model was evaluated).
)doc";
    m.def("gmm_accumulate_nearest", &accumulate_nearest<float>, py::arg("X").noconvert(),
          py::arg("centres").noconvert(), py::arg("covariance_type"), py::arg("shift").noconvert(),
          py::arg("n_threads") = 0, near_doc);
    m.def("gmm_accumulate_nearest", &accumulate_nearest<double>, py::arg("X").noconvert(),
          py::arg("centres").noconvert(), py::arg("covariance_type"), py::arg("shift").noconvert(),
          py::arg("n_threads") = 0);
    const char* pp_doc = R"doc(
Greedy k-means++ seeding (scikit-learn's kmeans_plusplus) from given random draws.

Parameters
----------
X : ndarray of float32 or float64, shape (n, d)
first : int
    Row of the first centre.
draws : ndarray of float64, shape (K - 1, trials)
    Uniform numbers in [0, 1): row c - 1 draws the candidates of centre c (each with
    probability proportional to its squared distance to the nearest centre so far); the
    candidate leaving the smallest total squared distance wins.
n_threads : int
    0 for every hardware thread; the result does not depend on it.

Returns
-------
centres : ndarray of float64, shape (K, d)
indices : ndarray of int64, shape (K,)
    Rows of X the centres are.
)doc";
    m.def("kmeans_plusplus", &kmeans_plusplus<float>, py::arg("X").noconvert(), py::arg("first"),
          py::arg("draws").noconvert(), py::arg("n_threads") = 0, pp_doc);
    m.def("kmeans_plusplus", &kmeans_plusplus<double>, py::arg("X").noconvert(), py::arg("first"),
          py::arg("draws").noconvert(), py::arg("n_threads") = 0);
    const char* lloyd_doc = R"doc(
Lloyd (k-means) iterations from the given centres, as scikit-learn's KMeans runs them.

Parameters
----------
X : ndarray of float32 or float64, shape (n, d)
centres : ndarray of float64, shape (K, d)
    Starting centres.
max_iter : int
tol : float
    Stop once the squared moves of the centres sum to at most tol times the mean of the
    features' variances (scikit-learn's tolerance).
n_threads : int
    0 for every hardware thread; the result does not depend on it.

Returns
-------
centres : ndarray of float64, shape (K, d)
n_iter : int
)doc";
    m.def("kmeans_lloyd", &kmeans_lloyd<float>, py::arg("X").noconvert(), py::arg("centres").noconvert(),
          py::arg("max_iter"), py::arg("tol") = 1e-4, py::arg("n_threads") = 0, lloyd_doc);
    m.def("kmeans_lloyd", &kmeans_lloyd<double>, py::arg("X").noconvert(), py::arg("centres").noconvert(),
          py::arg("max_iter"), py::arg("tol") = 1e-4, py::arg("n_threads") = 0);
    const char* score_doc = R"doc(
Per-sample log-likelihood under a Gaussian mixture, and optionally the responsibilities.

Returns
-------
loglik : ndarray of float64, shape (n,)
resp : ndarray of float64, shape (n, K), or None
)doc";
    m.def("gmm_score", &score<float>, py::arg("X").noconvert(), py::arg("weights").noconvert(),
          py::arg("means").noconvert(), py::arg("prec_chol").noconvert(), py::arg("covariance_type"),
          py::arg("return_resp") = false, py::arg("n_threads") = 0, score_doc);
    m.def("gmm_score", &score<double>, py::arg("X").noconvert(), py::arg("weights").noconvert(),
          py::arg("means").noconvert(), py::arg("prec_chol").noconvert(), py::arg("covariance_type"),
          py::arg("return_resp") = false, py::arg("n_threads") = 0);
    m.def(
        "gmm_kernel_level", [] { return std::string(simd::level_name(static_cast<simd::Level>(gmm::kernel_level()))); },
        R"doc(
Instruction set of the mixture and k-means kernels in effect: "avx512" (x86-64-v4), "avx2"
(x86-64-v3: AVX2 + FMA) or "scalar" (the baseline build). The CPU's best, capped by the
environment variable DATAGAUGE_SIMD (read once; ValueError if it is invalid).
)doc");
    m.def("gmm_m_step", &m_step, py::arg("stats"), py::arg("reg_covar"), R"doc(
M-step: merged statistics to (weights, means, covariances, precisions_cholesky), as scikit-learn.

Raises ValueError when a covariance is not positive definite.
)doc");
}

}  // namespace datagauge::bindings
