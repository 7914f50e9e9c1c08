// torch glue of the CPU kernels (msda_cpu_kernels.h): metadata checks, output
// allocation, dtype dispatch with fp32 (fp64) accumulation, at::parallel_for.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "../deformable_aggregation.h"
#include "msda_cpu_kernels.h"

namespace mmsparse4d {
namespace {

cpu::Geometry read_geometry(const at::Tensor& features, const at::Tensor& spatial_shape,
                            const at::Tensor& scale_start_index,
                            const at::Tensor& sampling_location, const at::Tensor& weights) {
  cpu::Geometry geo;
  geo.batch = features.size(0);
  geo.pixels = features.size(1);
  geo.channels = features.size(2);
  geo.cams = spatial_shape.size(0);
  geo.levels = spatial_shape.size(1);
  geo.anchors = sampling_location.size(1);
  geo.points = sampling_location.size(2);
  geo.groups = weights.size(5);
  const auto shape = spatial_shape.to(at::kLong).contiguous();
  const auto start = scale_start_index.to(at::kLong).contiguous();
  const std::string error =
      cpu::read_level_blocks(geo, shape.data_ptr<int64_t>(), start.data_ptr<int64_t>());
  TORCH_CHECK(error.empty(), "deformable_aggregation: ", error);
  return geo;
}

const auto torch_parallel_for = [](int64_t begin, int64_t end, int64_t grain, const auto& fn) {
  at::parallel_for(begin, end, grain, fn);
};

}  // namespace

at::Tensor deformable_aggregation_forward_cpu(const at::Tensor& features,
                                              const at::Tensor& spatial_shape,
                                              const at::Tensor& scale_start_index,
                                              const at::Tensor& sampling_location,
                                              const at::Tensor& weights) {
  const cpu::Geometry geo =
      read_geometry(features, spatial_shape, scale_start_index, sampling_location, weights);
  auto output = at::empty({geo.batch, geo.anchors, geo.channels}, features.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, features.scalar_type(), "deformable_aggregation_cpu", [&] {
        cpu::forward<scalar_t, at::opmath_type<scalar_t>>(
            geo, features.const_data_ptr<scalar_t>(), sampling_location.const_data_ptr<scalar_t>(),
            weights.const_data_ptr<scalar_t>(), output.mutable_data_ptr<scalar_t>(),
            torch_parallel_for);
      });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> deformable_aggregation_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& features, const at::Tensor& spatial_shape,
    const at::Tensor& scale_start_index, const at::Tensor& sampling_location,
    const at::Tensor& weights) {
  const cpu::Geometry geo =
      read_geometry(features, spatial_shape, scale_start_index, sampling_location, weights);
  const auto acc_options = features.options().dtype(at::toOpMathType(features.scalar_type()));
  auto grad_features = at::zeros(features.sizes(), acc_options);
  auto grad_location_per_group =
      at::zeros({geo.groups, geo.batch, geo.anchors, geo.points, geo.cams, 2}, acc_options);
  // Every element of grad_weights is written exactly once, by the task owning its group.
  auto grad_weights = at::zeros(weights.sizes(), acc_options);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, features.scalar_type(), "deformable_aggregation_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        cpu::backward<scalar_t, acc_t>(
            geo, grad_output.const_data_ptr<scalar_t>(), features.const_data_ptr<scalar_t>(),
            sampling_location.const_data_ptr<scalar_t>(), weights.const_data_ptr<scalar_t>(),
            grad_features.mutable_data_ptr<acc_t>(),
            grad_location_per_group.mutable_data_ptr<acc_t>(),
            grad_weights.mutable_data_ptr<acc_t>(), torch_parallel_for);
      });
  const auto dtype = features.scalar_type();
  return {grad_features.to(dtype), grad_location_per_group.sum(0).to(dtype),
          grad_weights.to(dtype)};
}

}  // namespace mmsparse4d
