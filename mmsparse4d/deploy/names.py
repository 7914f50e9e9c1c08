"""The names the deployment tools accept on their command lines, importable without torch
or the model, so that a tool checks its arguments before it imports either."""

# The back ends of the tracking frame (mmsparse4d.deploy.backends).
BACKENDS = ('pytorch', 'cudagraph', 'onnxruntime', 'tensorrt')
# The precisions a frame runs in (mmsparse4d.deploy.cuda_graph.PRECISIONS: their dtypes).
PRECISION_NAMES = ('fp32', 'fp16', 'bf16')
