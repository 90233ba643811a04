#include "common.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "datagauge compiled core: k-NN search, top-k merging and coverage selection, subgroup (bias) search.";
    datagauge::bindings::register_neighbors(m);
    datagauge::bindings::register_coverage(m);
    datagauge::bindings::register_bias(m);
}
