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

// Returns (grad_features, grad_sampling_location, grad_weights). Every gradient is summed in
// fp32 (fp64 for fp64 inputs) and cast once, except that on CUDA, for fp16 and bf16 inputs
// and unless `float32_accumulation`, grad_features is summed in the input's own format
// (each addition rounded to it, as torch's own half grid_sample backward does): no fp32
// copy of the feature maps to clear and cast.
std::tuple<at::Tensor, at::Tensor, at::Tensor> deformable_aggregation_backward(
    const at::Tensor& grad_output, const at::Tensor& features, const at::Tensor& spatial_shape,
    const at::Tensor& scale_start_index, const at::Tensor& sampling_location,
    const at::Tensor& weights, bool float32_accumulation);

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
    const at::Tensor& weights, bool float32_accumulation);
#endif

}  // namespace mmsparse4d
