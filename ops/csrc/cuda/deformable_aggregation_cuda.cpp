// torch glue of the CUDA kernels: device guard, current stream, output allocation,
// launch check. Arguments are validated by the entry points in ../deformable_aggregation.cpp.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "../deformable_aggregation.h"
#include "msda_kernels.h"

namespace mmsparse4d {
namespace {

cuda::ScalarType kernel_dtype(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return cuda::ScalarType::kFloat32;
    case at::kHalf:
      return cuda::ScalarType::kFloat16;
    case at::kBFloat16:
      return cuda::ScalarType::kBFloat16;
    case at::kDouble:
      return cuda::ScalarType::kFloat64;
    default:
      TORCH_CHECK(false, "deformable_aggregation: CUDA supports float32, float16, bfloat16 and ",
                  "float64 inputs, got ", t.scalar_type());
  }
}

cuda::MsdaShape kernel_shape(const at::Tensor& features, const at::Tensor& spatial_shape,
                             const at::Tensor& sampling_location, const at::Tensor& weights) {
  cuda::MsdaShape shape;
  shape.batch = features.size(0);
  shape.pixels = features.size(1);
  shape.channels = features.size(2);
  shape.cams = spatial_shape.size(0);
  shape.levels = spatial_shape.size(1);
  shape.anchors = sampling_location.size(1);
  shape.points = sampling_location.size(2);
  shape.groups = weights.size(5);
  TORCH_CHECK(shape.batch * shape.anchors < (int64_t(1) << 31),
              "deformable_aggregation: B * A = ", shape.batch * shape.anchors,
              " exceeds the CUDA grid (2^31 - 1 blocks)");
  // The kernels index a pixel inside its level in 32 bits.
  TORCH_CHECK(shape.pixels < (int64_t(1) << 31), "deformable_aggregation: CUDA supports at most ",
              "2^31 - 1 feature pixels per sample (every camera and level), got ", shape.pixels);
  return shape;
}

cuda::MsdaMeta kernel_meta(const at::Tensor& spatial_shape, const at::Tensor& scale_start_index) {
  // Both metadata tensors are read in the dtype of spatial_shape: make them agree.
  TORCH_CHECK(spatial_shape.scalar_type() == scale_start_index.scalar_type(),
              "deformable_aggregation: 'spatial_shape' (", spatial_shape.scalar_type(),
              ") and 'scale_start_index' (", scale_start_index.scalar_type(),
              ") must share one integer dtype on CUDA");
  return {spatial_shape.data_ptr(), scale_start_index.data_ptr(),
          spatial_shape.scalar_type() == at::kLong};
}

bool element_size_is_two(at::ScalarType dtype) {
  return dtype == at::kHalf || dtype == at::kBFloat16;
}

void check_channels(cuda::ScalarType dtype, const cuda::MsdaShape& shape, const void* probe) {
  const int64_t most = cuda::msda_max_channels(dtype, shape.channels, shape.groups, probe);
  TORCH_CHECK(shape.channels <= most, "deformable_aggregation: CUDA supports at most ", most,
              " channels for this dtype and group size, got ", shape.channels);
}

// The kernels load vectors only from data aligned to the vector's width and fall back to
// narrower loads otherwise (and to one atomic per lane for the weight gradient). A view that
// starts at an odd offset of its buffer (a slice of a flat buffer) is therefore copied to a
// fresh allocation (the caching allocator aligns blocks to 512 bytes) first: the same
// values, at the cost of one copy.
constexpr uintptr_t kVectorAlignmentBytes = 16;

at::Tensor vector_aligned(const at::Tensor& t) {
  if (reinterpret_cast<uintptr_t>(t.data_ptr()) % kVectorAlignmentBytes == 0) return t;
  return t.clone(at::MemoryFormat::Contiguous);
}

}  // namespace

at::Tensor deformable_aggregation_forward_cuda(const at::Tensor& unaligned_features,
                                               const at::Tensor& spatial_shape,
                                               const at::Tensor& scale_start_index,
                                               const at::Tensor& sampling_location,
                                               const at::Tensor& weights) {
  const c10::cuda::CUDAGuard guard(unaligned_features.device());
  const at::Tensor features = vector_aligned(unaligned_features);
  const auto dtype = kernel_dtype(features);
  const auto shape = kernel_shape(features, spatial_shape, sampling_location, weights);
  check_channels(dtype, shape, features.data_ptr());
  TORCH_CHECK(cuda::msda_forward_fits(shape),
              "deformable_aggregation: CUDA supports at most 2^32 - 1 feature elements per "
              "sample (pixels x channels), got ",
              shape.pixels, " x ", shape.channels);
  auto output = at::empty({shape.batch, shape.anchors, shape.channels}, features.options());
  const cudaError_t status = cuda::launch_msda_forward(
      dtype, shape, kernel_meta(spatial_shape, scale_start_index), features.data_ptr(),
      sampling_location.data_ptr(), weights.data_ptr(), output.data_ptr(),
      at::cuda::getCurrentCUDAStream());
  C10_CUDA_CHECK(status);
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> deformable_aggregation_backward_cuda(
    const at::Tensor& unaligned_grad_output, const at::Tensor& unaligned_features,
    const at::Tensor& spatial_shape, const at::Tensor& scale_start_index,
    const at::Tensor& sampling_location, const at::Tensor& weights,
    FeatureGradient feature_gradient) {
  const c10::cuda::CUDAGuard guard(unaligned_features.device());
  const at::Tensor grad_output = vector_aligned(unaligned_grad_output);
  const at::Tensor features = vector_aligned(unaligned_features);
  const auto dtype = kernel_dtype(features);
  const auto shape = kernel_shape(features, spatial_shape, sampling_location, weights);
  const auto meta = kernel_meta(spatial_shape, scale_start_index);
  const auto stream = at::cuda::getCurrentCUDAStream();
  check_channels(dtype, shape, features.data_ptr());
  const auto acc_options =
      features.options().dtype(features.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  if (feature_gradient == FeatureGradient::kByDestination &&
      !cuda::msda_feature_gradient_by_destination_fits(shape)) {
    TORCH_WARN_ONCE("deformable_aggregation: B * A * P * N * L = ", cuda::msda_entries(shape),
                    " entries and B * F = ", shape.batch * shape.pixels,
                    " feature rows exceed the int32 corner lists (4 * entries and the pieces "
                    "below 2^31); the feature gradient is summed with atomics in fp32 instead");
    feature_gradient = FeatureGradient::kAtomicAccumulate;
  }
  at::Tensor grad_features;
  void* grad_features_acc = nullptr;
  bool half_features_in_own_format = false;
  if (feature_gradient == FeatureGradient::kByDestination) {
    // Lists sized for the worst case (every corner inside), so that nothing waits for the
    // device and the backward captures into a CUDA graph.
    const auto int_options = features.options().dtype(at::kInt);
    const int64_t rows = shape.batch * shape.pixels;
    auto counts = at::zeros({rows}, int_options);
    C10_CUDA_CHECK(cuda::launch_msda_count_corners(dtype, shape, meta, sampling_location.data_ptr(),
                                                   counts.data_ptr<int>(), stream));
    const auto ends = counts.cumsum(0, at::kInt);
    auto cursors = ends - counts;
    auto keys = at::empty({4 * cuda::msda_entries(shape)}, int_options);
    C10_CUDA_CHECK(cuda::launch_msda_list_corners(dtype, shape, meta, sampling_location.data_ptr(),
                                                  cursors.data_ptr<int>(), keys.data_ptr<int>(),
                                                  stream));
    auto pieces = at::empty({2, rows}, int_options);
    C10_CUDA_CHECK(cuda::launch_msda_count_pieces(shape, counts.data_ptr<int>(),
                                                  pieces.data_ptr<int>(), stream));
    // Two 1-D scans (device-wide); along dim 1 of [2, rows] torch scans with two blocks.
    const auto piece_ends = pieces.select(0, 0).cumsum(0, at::kInt);
    const auto partial_ends = pieces.select(0, 1).cumsum(0, at::kInt);
    auto piece_row = at::empty({cuda::msda_max_pieces(shape)}, int_options);
    C10_CUDA_CHECK(cuda::launch_msda_piece_rows(shape, pieces.data_ptr<int>(),
                                                piece_ends.data_ptr<int>(),
                                                piece_row.data_ptr<int>(), stream));
    auto partials = at::empty({cuda::msda_max_partials(shape), shape.channels}, acc_options);
    grad_features = at::empty(features.sizes(), features.options());
    const cuda::FeatureGradientLists lists{counts.data_ptr<int>(),     ends.data_ptr<int>(),
                                           keys.data_ptr<int>(),       pieces.data_ptr<int>(),
                                           piece_ends.data_ptr<int>(), partial_ends.data_ptr<int>(),
                                           piece_row.data_ptr<int>()};
    C10_CUDA_CHECK(cuda::launch_msda_feature_gradient(
        dtype, shape, meta, lists, grad_output.data_ptr(), sampling_location.data_ptr(),
        weights.data_ptr(), partials.data_ptr(), grad_features.data_ptr(), stream));
  } else {
    // The atomic ways: into an accumulation-type buffer, cast once at the end, or for a
    // 2-byte input if asked in its own format (no buffer to clear and cast).
    half_features_in_own_format = feature_gradient == FeatureGradient::kAtomicOwnFormat &&
                                  element_size_is_two(features.scalar_type());
    grad_features =
        at::zeros(features.sizes(), half_features_in_own_format ? features.options() : acc_options);
    grad_features_acc = grad_features.data_ptr();
  }
  auto grad_location = at::zeros(sampling_location.sizes(), acc_options);
  auto grad_weights = at::zeros(weights.sizes(), acc_options);
  C10_CUDA_CHECK(cuda::launch_msda_backward(
      dtype, shape, meta, grad_output.data_ptr(), features.data_ptr(), sampling_location.data_ptr(),
      weights.data_ptr(), grad_features_acc, grad_location.data_ptr(), grad_weights.data_ptr(),
      half_features_in_own_format, stream));
  const auto out_dtype = features.scalar_type();
  return {grad_features.to(out_dtype), grad_location.to(out_dtype), grad_weights.to(out_dtype)};
}

}  // namespace mmsparse4d
