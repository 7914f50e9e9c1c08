// Multi-scale deformable aggregation (MSDA): the interface shared by the torch operator,
// the device kernels and (later) the ONNX Runtime op and the TensorRT plugin.
//
// Shapes (B batch, F packed pixels, C channels, N cameras, L levels, A anchors,
// P points, G weight groups):
//   features           [B, F, C]           channel-last, cameras then levels then pixels
//   spatial_shape      [N, L, 2]           (H, W) of each camera's level, int32 or int64
//   scale_start_index  [N, L]              first row of each (camera, level) block in F
//   sampling_location  [B, A, P, N, 2]     normalised (x = width, y = height) in (0, 1)
//   weights            [B, A, P, N, L, G]  channel c uses group c / (C / G)
//   output             [B, A, C]
#pragma once

#include <torch/types.h>

#include <tuple>

namespace mmsparse4d {

// Validates every argument (dims, sizes, dtypes, devices, contiguity) and throws a
// c10::Error that names the offending argument.
void check_deformable_aggregation_inputs(const at::Tensor& features,
                                         const at::Tensor& spatial_shape,
                                         const at::Tensor& scale_start_index,
                                         const at::Tensor& sampling_location,
                                         const at::Tensor& weights);

at::Tensor deformable_aggregation_forward(const at::Tensor& features,
                                          const at::Tensor& spatial_shape,
                                          const at::Tensor& scale_start_index,
                                          const at::Tensor& sampling_location,
                                          const at::Tensor& weights);

// How the CUDA backward sums the feature gradient (the CPU kernel always sums per pixel in
// fp32, fp64 for fp64 inputs, and casts once):
//   kByDestination: each pixel's contributions listed, then summed in registers in fp32
//     (fp64) and written once in the input's dtype: no buffer to clear or cast, no atomics
//     on the features;
//   kAtomicAccumulate: atomics into an fp32 (fp64) buffer, cleared first and cast at the end;
//   kAtomicOwnFormat: atomics in the input's own format for fp16 and bf16 (each addition
//     rounds to it, as torch's own half grid_sample backward does); kAtomicAccumulate for
//     the other dtypes.
enum class FeatureGradient : int64_t {
  kByDestination = 0,
  kAtomicAccumulate = 1,
  kAtomicOwnFormat = 2
};

// Returns (grad_features, grad_sampling_location, grad_weights). The location and weight
// gradients are summed in fp32 (fp64 for fp64 inputs) and cast once; the feature gradient
// as `feature_gradient` (a FeatureGradient) says.
std::tuple<at::Tensor, at::Tensor, at::Tensor> deformable_aggregation_backward(
    const at::Tensor& grad_output, const at::Tensor& features, const at::Tensor& spatial_shape,
    const at::Tensor& scale_start_index, const at::Tensor& sampling_location,
    const at::Tensor& weights, int64_t feature_gradient);

// Device implementations. Inputs are already validated by the entry points above.
at::Tensor deformable_aggregation_forward_cpu(const at::Tensor& features,
                                              const at::Tensor& spatial_shape,
                                              const at::Tensor& scale_start_index,
                                              const at::Tensor& sampling_location,
                                              const at::Tensor& weights);

std::tuple<at::Tensor, at::Tensor, at::Tensor> deformable_aggregation_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& features, const at::Tensor& spatial_shape,
    const at::Tensor& scale_start_index, const at::Tensor& sampling_location,
    const at::Tensor& weights);

#ifdef WITH_CUDA
// CUDA kernels live in cuda/*.cu behind these two functions.
at::Tensor deformable_aggregation_forward_cuda(const at::Tensor& features,
                                               const at::Tensor& spatial_shape,
                                               const at::Tensor& scale_start_index,
                                               const at::Tensor& sampling_location,
                                               const at::Tensor& weights);

std::tuple<at::Tensor, at::Tensor, at::Tensor> deformable_aggregation_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& features, const at::Tensor& spatial_shape,
    const at::Tensor& scale_start_index, const at::Tensor& sampling_location,
    const at::Tensor& weights, FeatureGradient feature_gradient);
#endif

}  // namespace mmsparse4d
