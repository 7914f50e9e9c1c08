// TensorRT IPluginV3 for nv::MSDA. See msda_plugin.h.
#include "msda_plugin.h"

#include <cstdio>

#include "../csrc/cuda/msda_kernels.h"

namespace mmsparse4d {
namespace tensorrt {
namespace {

using nvinfer1::DataType;
using nvinfer1::TensorFormat;

constexpr int32_t kInputs = 5;
constexpr int32_t kFeatures = 0, kSpatialShape = 1, kStartIndex = 2, kLocation = 3, kWeights = 4;

bool is_float(DataType type) { return type == DataType::kFLOAT || type == DataType::kHALF; }
bool is_index(DataType type) { return type == DataType::kINT32 || type == DataType::kINT64; }

void report(char const* message) { std::fprintf(stderr, "nv::MSDA plugin: %s\n", message); }

}  // namespace

MsdaPlugin::MsdaPlugin(std::string plugin_namespace) : namespace_(std::move(plugin_namespace)) {}

nvinfer1::IPluginCapability* MsdaPlugin::getCapabilityInterface(
    nvinfer1::PluginCapabilityType type) noexcept {
  switch (type) {
    case nvinfer1::PluginCapabilityType::kBUILD:
      return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME:
      return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    case nvinfer1::PluginCapabilityType::kCORE:
      return static_cast<nvinfer1::IPluginV3OneCore*>(this);
  }
  return nullptr;
}

nvinfer1::IPluginV3* MsdaPlugin::clone() noexcept {
  try {
    return new MsdaPlugin(namespace_);
  } catch (...) {
    report("clone failed");
    return nullptr;
  }
}

int32_t MsdaPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const*, int32_t nb_inputs,
                                    nvinfer1::DynamicPluginTensorDesc const*,
                                    int32_t nb_outputs) noexcept {
  return nb_inputs == kInputs && nb_outputs == 1 ? 0 : -1;
}

int32_t MsdaPlugin::getOutputDataTypes(DataType* output_types, int32_t nb_outputs,
                                       DataType const* input_types,
                                       int32_t nb_inputs) const noexcept {
  if (nb_inputs != kInputs || nb_outputs != 1) return -1;
  output_types[0] = input_types[kFeatures];
  return 0;
}

int32_t MsdaPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs,
                                    nvinfer1::DimsExprs const*, int32_t,
                                    nvinfer1::DimsExprs* outputs, int32_t nb_outputs,
                                    nvinfer1::IExprBuilder&) noexcept {
  if (nb_inputs != kInputs || nb_outputs != 1) return -1;
  if (inputs[kFeatures].nbDims != 3 || inputs[kLocation].nbDims != 5) {
    report("features must be [B, F, C] and sampling_location [B, A, P, N, 2]");
    return -1;
  }
  outputs[0].nbDims = 3;
  outputs[0].d[0] = inputs[kLocation].d[0];
  outputs[0].d[1] = inputs[kLocation].d[1];
  outputs[0].d[2] = inputs[kFeatures].d[2];
  return 0;
}

bool MsdaPlugin::supportsFormatCombination(int32_t pos,
                                           nvinfer1::DynamicPluginTensorDesc const* in_out,
                                           int32_t nb_inputs, int32_t nb_outputs) noexcept {
  if (nb_inputs != kInputs || nb_outputs != 1 || pos < 0 || pos > kInputs) return false;
  nvinfer1::PluginTensorDesc const& desc = in_out[pos].desc;
  if (desc.format != TensorFormat::kLINEAR) return false;
  switch (pos) {
    case kFeatures:
      return is_float(desc.type);
    case kSpatialShape:
      return is_index(desc.type);
    case kStartIndex:
      return desc.type == in_out[kSpatialShape].desc.type;
    default:  // sampling_location, weights and the output share the features' type
      return desc.type == in_out[kFeatures].desc.type;
  }
}

int32_t MsdaPlugin::onShapeChange(nvinfer1::PluginTensorDesc const*, int32_t nb_inputs,
                                  nvinfer1::PluginTensorDesc const*, int32_t nb_outputs) noexcept {
  return nb_inputs == kInputs && nb_outputs == 1 ? 0 : -1;
}

int32_t MsdaPlugin::enqueue(nvinfer1::PluginTensorDesc const* input_desc,
                            nvinfer1::PluginTensorDesc const*, void const* const* inputs,
                            void* const* outputs, void*, cudaStream_t stream) noexcept {
  nvinfer1::Dims const& features = input_desc[kFeatures].dims;
  nvinfer1::Dims const& spatial = input_desc[kSpatialShape].dims;
  nvinfer1::Dims const& location = input_desc[kLocation].dims;
  nvinfer1::Dims const& weights = input_desc[kWeights].dims;
  cuda::MsdaShape shape;
  shape.batch = features.d[0];
  shape.pixels = features.d[1];
  shape.channels = features.d[2];
  shape.cams = spatial.d[0];
  shape.levels = spatial.d[1];
  shape.anchors = location.d[1];
  shape.points = location.d[2];
  shape.groups = weights.d[5];
  if (shape.groups <= 0 || shape.channels % shape.groups != 0) {
    report("the channels of features must be divisible by the groups of weights");
    return -1;
  }
  cuda::MsdaMeta meta{inputs[kSpatialShape], inputs[kStartIndex],
                      input_desc[kSpatialShape].type == DataType::kINT64};
  const auto dtype = input_desc[kFeatures].type == DataType::kHALF ? cuda::ScalarType::kFloat16
                                                                   : cuda::ScalarType::kFloat32;
  const cudaError_t status =
      cuda::launch_msda_forward(dtype, shape, meta, inputs[kFeatures], inputs[kLocation],
                                inputs[kWeights], outputs[0], stream);
  if (status != cudaSuccess) {
    report(cudaGetErrorString(status));
    return -1;
  }
  return 0;
}

nvinfer1::IPluginV3* MsdaPlugin::attachToContext(nvinfer1::IPluginResourceContext*) noexcept {
  return clone();
}

nvinfer1::PluginFieldCollection const* MsdaPlugin::getFieldsToSerialize() noexcept {
  return &no_fields_;  // no attributes: the node carries none
}

nvinfer1::IPluginV3* MsdaPluginCreator::createPlugin(char const*,
                                                     nvinfer1::PluginFieldCollection const*,
                                                     nvinfer1::TensorRTPhase) noexcept {
  try {
    return new MsdaPlugin(namespace_);
  } catch (...) {
    report("createPlugin failed");
    return nullptr;
  }
}

}  // namespace tensorrt
}  // namespace mmsparse4d

// Entry point of a TensorRT plugin library (IPluginRegistry::loadLibrary, trtexec
// --dynamicPlugins): the creators it provides.
extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nb_creators) {
  static mmsparse4d::tensorrt::MsdaPluginCreator creator;
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
  nb_creators = 1;
  return creators;
}
