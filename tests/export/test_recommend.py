"""report.md's "What to ship": one pick per target, only among files that kept the quality."""

from export.recommend import recommendations
from export.verify import FileReport


def _report(fmt, runtime, latency, size_kb, drop=0.0, agreement=100.0, **fields):
    return FileReport(
        format=fmt, file=f"m{fmt}", runtime=runtime, size_bytes=int(size_kb * 1024),
        tolerance="", accuracy=90.0 - drop, accuracy_drop_pp=drop, agreement=agreement,
        latency_us=latency, **fields,
    )  # fmt: skip


TFLM_NOTES = {"tflm_arena_bytes": 11136, "tflm_flash_bytes": 71234}


def _pick(lines, target):
    return next(line for line in lines if line.startswith(f"- {target}"))


def test_each_target_gets_the_best_file_that_kept_the_quality():
    reports = [
        _report("tflite_fp32", "tflite", 60.0, 240),
        _report("tflite_fp16", "tflite", 58.0, 120),
        _report("tflite_int8", "tflite", 9.6, 70, drop=0.1, agreement=99.7, ops=["CONV_2D"]),
        # faster, but it broke the quality bound: never recommended
        _report("tflite_int8_s2d", "tflite", 8.0, 75, drop=0.9, agreement=98.0, ops=["CONV_2D"]),
        _report("onnx_fp32", "onnx", 250.0, 245),
        _report("onnx_int8", "onnx", 120.0, 80, drop=0.2, agreement=99.6),
        _report("tflm", "tflm", None, 70, notes=TFLM_NOTES),
    ]  # fmt: skip
    lines = recommendations(reports, "classification")
    assert len(lines) == 4
    assert "mtflite_int8: 9.6 us per image, 70 KB, drop +0.10 pp" in _pick(lines, "phone CPU")
    accelerator = _pick(lines, "phone NPU")
    assert "NPU: mtflite_int8" in accelerator and "GPU delegate: mtflite_fp16" in accelerator
    assert "arena 11136 B, flash 71234 B" in _pick(lines, "microcontroller")
    assert "monnx_int8: 120.0 us" in _pick(lines, "server")


def test_failed_files_and_float_ops_are_not_recommended():
    reports = [
        _report("tflite_fp32", "tflite", 60.0, 240, passed=False, status="failed"),
        _report("tflite_int8", "tflite", 9.6, 70, ops=["CONV_2D", "DEQUANTIZE"], float_ops=["X"]),
    ]
    lines = recommendations(reports, "classification")
    assert "mtflite_int8" in _pick(lines, "phone CPU")
    assert "no integer-only int8 file kept the quality bound" in _pick(lines, "phone NPU")
    assert "no integer-only file" in _pick(lines, "microcontroller")
    assert "no such file in this export (--formats onnx_fp32,onnx_int8)" in _pick(lines, "server")


def test_reconstruction_models_are_judged_by_psnr():
    kept = _report("tflite_fp16", "tflite", 50.0, 500, psnr_drop_db=0.01)
    lost = _report("tflite_int8", "tflite", 20.0, 260, psnr_drop_db=1.5, ops=["CONV_2D"])
    lines = recommendations([kept, lost], "reconstruction")
    assert "mtflite_fp16" in _pick(lines, "phone CPU") and "PSNR drop +0.01 dB" in lines[0]
