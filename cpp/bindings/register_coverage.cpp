#include "common.hpp"
#include "datagauge/coverage.hpp"

namespace datagauge::bindings {

namespace {

IndexArray to_array(const std::vector<std::int64_t>& v) {
    IndexArray out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

py::tuple adaptive(const FloatArray& radii, std::int64_t selection) {
    require_ndim(radii, 1, "radii");
    const float* r = radii.data();
    const std::int64_t n = radii.shape(0);
    AdaptiveCoverage res;
    {
        py::gil_scoped_release nogil;
        res = coverage_adaptive(r, n, selection);
    }
    return py::make_tuple(to_array(res.uncovered), res.radius);
}

IndexArray threshold(const FloatArray& radii, double radius) {
    require_ndim(radii, 1, "radii");
    const float* r = radii.data();
    const std::int64_t n = radii.shape(0);
    std::vector<std::int64_t> res;
    {
        py::gil_scoped_release nogil;
        res = coverage_threshold(r, n, radius);
    }
    return to_array(res);
}

}  // namespace

void register_coverage(py::module_& m) {
    m.def("coverage_adaptive", &adaptive, py::arg("radii").noconvert(), py::arg("selection"), R"doc(
Adaptive coverage selection.

Parameters
----------
radii : ndarray of float32, shape (n,)
    Critical radius of every point; finite.
selection : int
    Number of points to call uncovered, in [1, n].

Returns
-------
uncovered : ndarray of int64, shape (selection,)
    Most isolated first: radius descending, ties by index descending.
radius : float
    Mean of the selection-th and (selection+1)-th largest radii.
)doc");
    m.def("coverage_threshold", &threshold, py::arg("radii").noconvert(), py::arg("radius"), R"doc(
Points whose radius is strictly greater than `radius`.

Parameters
----------
radii : ndarray of float32, shape (n,)
radius : float

Returns
-------
ndarray of int64
    Most isolated first: radius descending, ties by index descending.
)doc");
}

}  // namespace datagauge::bindings
