// Entry points of the MSDA operator: argument checks, device dispatch and registration of
// `mmsparse4d::deformable_aggregation` (+ its backward) with torch.library. Autograd and
// the fake (meta) kernels are registered from Python (mmsparse4d/ops).
#include "deformable_aggregation.h"

#include <torch/library.h>

namespace mmsparse4d {
namespace {

constexpr const char* kOp = "deformable_aggregation";

void check_floating(const at::Tensor& t, const char* name) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), kOp, ": argument '", name,
              "' must be a floating-point tensor, got ", t.scalar_type());
}

void check_integral(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kInt || t.scalar_type() == at::kLong, kOp, ": argument '",
              name, "' must be an int32 or int64 tensor, got ", t.scalar_type());
}

void check_contiguous(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_contiguous(), kOp, ": argument '", name,
              "' must be contiguous (call .contiguous() on it), got strides ", t.strides());
}

void check_dim(const at::Tensor& t, int64_t dim, const char* name, const char* layout) {
  TORCH_CHECK(t.dim() == dim, kOp, ": argument '", name, "' must have shape ", layout, ", got ",
              t.sizes());
}

void check_size(const at::Tensor& t, int64_t dim, int64_t expected, const char* name,
                const char* what) {
  TORCH_CHECK(t.size(dim) == expected, kOp, ": argument '", name, "' has ", t.size(dim), " in dim ",
              dim, " (", what, ") but ", expected, " was expected; got shape ", t.sizes());
}

}  // namespace

void check_deformable_aggregation_inputs(const at::Tensor& features,
                                         const at::Tensor& spatial_shape,
                                         const at::Tensor& scale_start_index,
                                         const at::Tensor& sampling_location,
                                         const at::Tensor& weights) {
  check_dim(features, 3, "features", "[B, F, C]");
  check_dim(spatial_shape, 3, "spatial_shape", "[N, L, 2]");
  check_dim(scale_start_index, 2, "scale_start_index", "[N, L]");
  check_dim(sampling_location, 5, "sampling_location", "[B, A, P, N, 2]");
  check_dim(weights, 6, "weights", "[B, A, P, N, L, G]");

  const int64_t batch = features.size(0);
  const int64_t channels = features.size(2);
  const int64_t cams = spatial_shape.size(0);
  const int64_t levels = spatial_shape.size(1);
  check_size(spatial_shape, 2, 2, "spatial_shape", "(H, W)");
  check_size(scale_start_index, 0, cams, "scale_start_index", "cameras");
  check_size(scale_start_index, 1, levels, "scale_start_index", "levels");
  check_size(sampling_location, 0, batch, "sampling_location", "batch");
  check_size(sampling_location, 3, cams, "sampling_location", "cameras");
  check_size(sampling_location, 4, 2, "sampling_location", "(x, y)");
  check_size(weights, 0, batch, "weights", "batch");
  check_size(weights, 1, sampling_location.size(1), "weights", "anchors");
  check_size(weights, 2, sampling_location.size(2), "weights", "points");
  check_size(weights, 3, cams, "weights", "cameras");
  check_size(weights, 4, levels, "weights", "levels");
  const int64_t groups = weights.size(5);
  TORCH_CHECK(channels > 0, kOp, ": 'features' has no channels (its last dimension is 0)");
  TORCH_CHECK(groups > 0 && channels % groups == 0, kOp, ": the channels of 'features' (", channels,
              ") must be divisible by the groups of 'weights' (", groups, ")");

  check_floating(features, "features");
  check_floating(sampling_location, "sampling_location");
  check_floating(weights, "weights");
  check_integral(spatial_shape, "spatial_shape");
  check_integral(scale_start_index, "scale_start_index");
  TORCH_CHECK(sampling_location.scalar_type() == features.scalar_type(), kOp,
              ": argument 'sampling_location' has dtype ", sampling_location.scalar_type(),
              " but 'features' has ", features.scalar_type(), "; they must match");
  TORCH_CHECK(weights.scalar_type() == features.scalar_type(), kOp,
              ": argument 'weights' has dtype ", weights.scalar_type(), " but 'features' has ",
              features.scalar_type(), "; they must match");

  const auto device = features.device();
  const std::pair<const at::Tensor*, const char*> others[] = {
      {&spatial_shape, "spatial_shape"},
      {&scale_start_index, "scale_start_index"},
      {&sampling_location, "sampling_location"},
      {&weights, "weights"}};
  for (const auto& [tensor, name] : others) {
    TORCH_CHECK(tensor->device() == device, kOp, ": argument '", name, "' is on ", tensor->device(),
                " but 'features' is on ", device);
  }
  check_contiguous(features, "features");
  for (const auto& [tensor, name] : others) check_contiguous(*tensor, name);
}

at::Tensor deformable_aggregation_forward(const at::Tensor& features,
                                          const at::Tensor& spatial_shape,
                                          const at::Tensor& scale_start_index,
                                          const at::Tensor& sampling_location,
                                          const at::Tensor& weights) {
  check_deformable_aggregation_inputs(features, spatial_shape, scale_start_index, sampling_location,
                                      weights);
  if (features.is_cuda()) {
#ifdef WITH_CUDA
    return deformable_aggregation_forward_cuda(features, spatial_shape, scale_start_index,
                                               sampling_location, weights);
#else
    TORCH_CHECK(false, kOp,
                ": mmsparse4d was built without CUDA; rebuild it with nvcc and "
                "a CUDA build of torch present (see README, 'Building the extension')");
#endif
  }
  return deformable_aggregation_forward_cpu(features, spatial_shape, scale_start_index,
                                            sampling_location, weights);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> deformable_aggregation_backward(
    const at::Tensor& grad_output, const at::Tensor& features, const at::Tensor& spatial_shape,
    const at::Tensor& scale_start_index, const at::Tensor& sampling_location,
    const at::Tensor& weights, int64_t feature_gradient) {
  check_deformable_aggregation_inputs(features, spatial_shape, scale_start_index, sampling_location,
                                      weights);
  check_dim(grad_output, 3, "grad_output", "[B, A, C]");
  check_size(grad_output, 0, features.size(0), "grad_output", "batch");
  check_size(grad_output, 1, sampling_location.size(1), "grad_output", "anchors");
  check_size(grad_output, 2, features.size(2), "grad_output", "channels");
  TORCH_CHECK(grad_output.scalar_type() == features.scalar_type(), kOp,
              ": argument 'grad_output' has dtype ", grad_output.scalar_type(),
              " but 'features' has ", features.scalar_type());
  TORCH_CHECK(grad_output.device() == features.device(), kOp, ": argument 'grad_output' is on ",
              grad_output.device(), " but 'features' is on ", features.device());
  check_contiguous(grad_output, "grad_output");
  TORCH_CHECK(feature_gradient >= 0 && feature_gradient <= 2, kOp,
              ": argument 'feature_gradient' must be 0 (by destination), 1 (atomic, accumulation "
              "type) or 2 (atomic, own format), got ",
              feature_gradient);
  if (features.is_cuda()) {
#ifdef WITH_CUDA
    return deformable_aggregation_backward_cuda(grad_output, features, spatial_shape,
                                                scale_start_index, sampling_location, weights,
                                                static_cast<FeatureGradient>(feature_gradient));
#else
    TORCH_CHECK(false, kOp, ": mmsparse4d was built without CUDA");
#endif
  }
  return deformable_aggregation_backward_cpu(grad_output, features, spatial_shape,
                                             scale_start_index, sampling_location, weights);
}

TORCH_LIBRARY(mmsparse4d, m) {
  m.def(
      "deformable_aggregation(Tensor features, Tensor spatial_shape, "
      "Tensor scale_start_index, Tensor sampling_location, Tensor weights) -> Tensor");
  m.def(
      "deformable_aggregation_backward(Tensor grad_output, Tensor features, "
      "Tensor spatial_shape, Tensor scale_start_index, Tensor sampling_location, "
      "Tensor weights, int feature_gradient=0) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmsparse4d, CPU, m) {
  m.impl("deformable_aggregation", &deformable_aggregation_forward);
  m.impl("deformable_aggregation_backward", &deformable_aggregation_backward);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(mmsparse4d, CUDA, m) {
  m.impl("deformable_aggregation", &deformable_aggregation_forward);
  m.impl("deformable_aggregation_backward", &deformable_aggregation_backward);
}
#endif

}  // namespace mmsparse4d
