// Python module of the compiled extension. Importing it runs the TORCH_LIBRARY
// registrations of every operator compiled into the same shared object.
#include <torch/extension.h>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmsparse4d compiled operators (registered under torch.ops.mmsparse4d)";
#ifdef WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
