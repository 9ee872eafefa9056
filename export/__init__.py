"""Export: quantize a trained model, write TFLite and ONNX files, verify each against Keras.

`python -m export RUN_DIR_OR_MODEL.keras` (see `export.__main__`). Modules:

- `export.formats`: the format table (`FORMATS`: name, suffix, runtime, options, tolerance).
- `export.source`: `load_source(path)`: the model and what its run recorded.
- `export.data`: calibration and test images through the training data pipeline.
- `export.tflite_export`, `export.onnx_export`: the writers and their embedded metadata.
- `export.tfmot_process`: QAT and pruning in a tf_keras subprocess (`export._tfmot_worker`).
- `export.verify`: running every file in LiteRT / ONNX Runtime and the parity checks.
- `export.report`: `report.md` / `report.json`; `export.profile`: layer latency profile.
- `export.rewrite`: deployment graph rewrite (few-channel convolutions as space-to-depth
  convolutions, the `tflite_int8_s2d` format: same integer math, ~5x faster int8 LeNet-5
  under XNNPACK, larger file).
- `export.exporter`: `export_model(source, ExportOptions(...))`, the whole pipeline.

This package imports nothing at import time: `export._tfmot_worker` must set
`TF_USE_LEGACY_KERAS=1` before TensorFlow is first imported.
"""
