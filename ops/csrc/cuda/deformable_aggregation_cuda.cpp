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
    const at::Tensor& sampling_location, const at::Tensor& weights, bool float32_accumulation) {
  const c10::cuda::CUDAGuard guard(unaligned_features.device());
  const at::Tensor grad_output = vector_aligned(unaligned_grad_output);
  const at::Tensor features = vector_aligned(unaligned_features);
  const auto dtype = kernel_dtype(features);
  const auto shape = kernel_shape(features, spatial_shape, sampling_location, weights);
  check_channels(dtype, shape, features.data_ptr());
  const auto acc_options =
      features.options().dtype(features.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  // Gradients accumulate in fp32 (fp64 for fp64 inputs) and are cast once at the end; the
  // feature gradient of a 2-byte input in its own format unless asked otherwise (its fp32
  // copy, cleared and cast, made the half backward slower than fp32's).
  const bool half_features_in_own_format =
      !float32_accumulation && element_size_is_two(features.scalar_type());
  auto grad_features =
      at::zeros(features.sizes(), half_features_in_own_format ? features.options() : acc_options);
  auto grad_location = at::zeros(sampling_location.sizes(), acc_options);
  auto grad_weights = at::zeros(weights.sizes(), acc_options);
  const cudaError_t status = cuda::launch_msda_backward(
      dtype, shape, kernel_meta(spatial_shape, scale_start_index), grad_output.data_ptr(),
      features.data_ptr(), sampling_location.data_ptr(), weights.data_ptr(),
      grad_features.data_ptr(), grad_location.data_ptr(), grad_weights.data_ptr(),
      half_features_in_own_format, at::cuda::getCurrentCUDAStream());
  C10_CUDA_CHECK(status);
  const auto out_dtype = features.scalar_type();
  return {grad_features.to(out_dtype), grad_location.to(out_dtype), grad_weights.to(out_dtype)};
}

}  // namespace mmsparse4d
