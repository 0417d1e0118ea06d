// The Python module `pneumo` (apps/python/python.md): `import pneumo` from <build>/python or
// from where `cmake --install` put it. Every pneumo::Error becomes pneumo.Error (a RuntimeError)
// with the same one-line message.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "apps/python/bindings.h"
#include "engine/build_info.h"
#include "engine/check.h"

PYBIND11_MODULE(pneumo, module) {
  namespace py = pybind11;
  module.doc() =
      "pneumo: the engine that trains the RSNA pneumonia notebook's network, on numpy arrays "
      "(float32, NHWC). See apps/python/python.md.";
#if defined(__x86_64__)
  // As `pneumo` (apps/main.cpp): the engine's FMA-contracted files need AVX2 and FMA; refuse to
  // load, saying why, rather than stop on an illegal instruction later.
  const std::vector<std::string> features = pneumo::cpu_features();
  for (const char* needed : {"avx2", "fma"})
    if (std::find(features.begin(), features.end(), needed) == features.end())
      throw py::import_error(std::string("pneumo: this CPU lacks ") + needed +
                             ", which the engine's training and data code is compiled for");
#endif
  py::register_exception<pneumo::Error>(module, "Error", PyExc_RuntimeError);
  module.attr("__version__") = pneumo::version();
  pneumo::python::bind_network(module);
  pneumo::python::bind_layers(module);
  pneumo::python::bind_training(module);
  pneumo::python::bind_data(module);
}
