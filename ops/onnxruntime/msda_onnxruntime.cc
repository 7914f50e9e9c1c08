// ONNX Runtime custom-op library implementing `nv::MSDA` (the node our ONNX export emits)
// on the CPU execution provider with the op's own CPU kernels (../csrc/cpu).
//
// Load it with SessionOptions.register_custom_ops_library(path). Inputs, in order:
// features [B, F, C], spatial_shape [N, L, 2], scale_start_index [N, L] (int32 or int64),
// sampling_location [B, A, P, N, 2], weights [B, A, P, N, L, G] (float32, float64 or
// float16; fp32 accumulation); output [B, A, C].
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../csrc/cpu/msda_cpu_kernels.h"

namespace mmsparse4d {
namespace {

constexpr const char* kDomain = "nv";
constexpr const char* kOpName = "MSDA";

[[noreturn]] void fail(const std::string& message) {
  ORT_CXX_API_THROW(std::string(kDomain) + "::" + kOpName + ": " + message, ORT_INVALID_ARGUMENT);
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

struct Input {
  Ort::ConstValue value;
  std::vector<int64_t> shape;
  ONNXTensorElementDataType type;
  const char* name;
};

Input read_input(Ort::KernelContext& context, size_t index, const char* name, size_t rank,
                 const char* layout) {
  Ort::ConstValue value = context.GetInput(index);
  const auto info = value.GetTensorTypeAndShapeInfo();
  Input input{value, info.GetShape(), info.GetElementType(), name};
  if (input.shape.size() != rank) {
    fail(std::string("input '") + name + "' must have shape " + layout + ", got " +
         shape_string(input.shape));
  }
  return input;
}

void expect_size(const Input& input, size_t dim, int64_t expected, const char* what) {
  if (input.shape[dim] != expected) {
    fail(std::string("input '") + input.name + "' has " + std::to_string(input.shape[dim]) +
         " in dim " + std::to_string(dim) + " (" + what + ") but " + std::to_string(expected) +
         " was expected; got shape " + shape_string(input.shape));
  }
}

// Serial chunks: ONNX Runtime already runs independent nodes and requests in parallel.
const auto serial_for = [](int64_t begin, int64_t end, int64_t, const auto& fn) {
  if (begin < end) fn(begin, end);
};

struct MsdaKernel {
  void Compute(OrtKernelContext* raw_context) {
    Ort::KernelContext context(raw_context);
    const Input features = read_input(context, 0, "features", 3, "[B, F, C]");
    const Input shape = read_input(context, 1, "spatial_shape", 3, "[N, L, 2]");
    const Input start = read_input(context, 2, "scale_start_index", 2, "[N, L]");
    const Input location = read_input(context, 3, "sampling_location", 5, "[B, A, P, N, 2]");
    const Input weights = read_input(context, 4, "weights", 6, "[B, A, P, N, L, G]");

    cpu::Geometry geo;
    geo.batch = features.shape[0];
    geo.pixels = features.shape[1];
    geo.channels = features.shape[2];
    geo.cams = shape.shape[0];
    geo.levels = shape.shape[1];
    geo.anchors = location.shape[1];
    geo.points = location.shape[2];
    geo.groups = weights.shape[5];
    expect_size(shape, 2, 2, "(H, W)");
    expect_size(start, 0, geo.cams, "cameras");
    expect_size(start, 1, geo.levels, "levels");
    expect_size(location, 0, geo.batch, "batch");
    expect_size(location, 3, geo.cams, "cameras");
    expect_size(location, 4, 2, "(x, y)");
    expect_size(weights, 0, geo.batch, "batch");
    expect_size(weights, 1, geo.anchors, "anchors");
    expect_size(weights, 2, geo.points, "points");
    expect_size(weights, 3, geo.cams, "cameras");
    expect_size(weights, 4, geo.levels, "levels");
    if (geo.channels <= 0) fail("'features' has no channels (its last dimension is 0)");
    if (geo.groups <= 0 || geo.channels % geo.groups != 0) {
      fail("the channels of 'features' (" + std::to_string(geo.channels) +
           ") must be divisible by the groups of 'weights' (" + std::to_string(geo.groups) + ")");
    }
    if (location.type != features.type || weights.type != features.type) {
      fail("'sampling_location' and 'weights' must have the element type of 'features'");
    }
    if (shape.type != start.type) {
      fail("'spatial_shape' and 'scale_start_index' must share one integer type");
    }
    std::string error;
    if (shape.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
      error = cpu::read_level_blocks(geo, shape.value.GetTensorData<int64_t>(),
                                     start.value.GetTensorData<int64_t>());
    } else if (shape.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32) {
      error = cpu::read_level_blocks(geo, shape.value.GetTensorData<int32_t>(),
                                     start.value.GetTensorData<int32_t>());
    } else {
      error = "'spatial_shape' and 'scale_start_index' must be int32 or int64";
    }
    if (!error.empty()) fail(error);

    Ort::UnownedValue output = context.GetOutput(0, {geo.batch, geo.anchors, geo.channels});
    switch (features.type) {
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
        run<float, float>(geo, features, location, weights, output);
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
        run<double, double>(geo, features, location, weights, output);
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
        run<Ort::Float16_t, float>(geo, features, location, weights, output);
        break;
      default:
        fail("'features' must be float32, float64 or float16 on the CPU");
    }
  }

  template <typename scalar_t, typename acc_t>
  static void run(const cpu::Geometry& geo, const Input& features, const Input& location,
                  const Input& weights, Ort::UnownedValue& output) {
    cpu::forward<scalar_t, acc_t>(geo, features.value.GetTensorData<scalar_t>(),
                                  location.value.GetTensorData<scalar_t>(),
                                  weights.value.GetTensorData<scalar_t>(),
                                  output.GetTensorMutableData<scalar_t>(), serial_for);
  }
};

// One registration per floating type (same name and domain; ONNX Runtime picks by type):
// the metadata inputs accept int32 or int64, checked at run time.
template <ONNXTensorElementDataType kFloatType>
struct MsdaOp : Ort::CustomOpBase<MsdaOp<kFloatType>, MsdaKernel> {
  void* CreateKernel(const OrtApi&, const OrtKernelInfo*) const { return new MsdaKernel(); }
  const char* GetName() const { return kOpName; }
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return 5; }
  ONNXTensorElementDataType GetInputType(size_t index) const {
    return index == 1 || index == 2 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED : kFloatType;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return kFloatType; }
};

// Domains must outlive every session that uses them.
std::mutex domains_mutex;
std::vector<std::unique_ptr<Ort::CustomOpDomain>> domains;

}  // namespace
}  // namespace mmsparse4d

extern "C" OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                     const OrtApiBase* api_base) {
  Ort::InitApi(api_base->GetApi(ORT_API_VERSION));
  static mmsparse4d::MsdaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT> op_float;
  static mmsparse4d::MsdaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE> op_double;
  static mmsparse4d::MsdaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16> op_half;
  try {
    auto domain = std::make_unique<Ort::CustomOpDomain>(mmsparse4d::kDomain);
    domain->Add(&op_float);
    domain->Add(&op_double);
    domain->Add(&op_half);
    Ort::UnownedSessionOptions(options).Add(*domain);
    const std::lock_guard<std::mutex> lock(mmsparse4d::domains_mutex);
    mmsparse4d::domains.push_back(std::move(domain));
  } catch (const Ort::Exception& error) {
    return Ort::Status(error).release();
  }
  return nullptr;
}
