"""Export benchmark: size, parity and latency of the TFLite/ONNX files, int8 against float32.

LeNet-5 (modern) trained on Fashion-MNIST with its default recipe (the run
`runs/lenet5_modern-fashion_mnist` if it exists, else `training.train` here: 15 epochs, ~3 min
on 2 cores) is exported with `export.export_model`; every file runs in its real runtime,
LiteRT at one thread and batch 1, with and without the default XNNPACK delegate. AlexNet has
its own benchmark, `benchmarks.alexnet` (a trained model takes ~16 min to train here).

Targets (the issue's acceptance list): LeNet-5 int8 PTQ accuracy drop <= 0.05 pp, top-1
agreement >= 99.7 %, int8 file <= 0.27x float32, ONNX float32 max abs diff <= 1e-4, int8
latency <= 1.0x float32.

    python -m benchmarks.export          # full: whole test split, full training if needed
    python -m benchmarks.export --quick  # small subsets, for a smoke run

Results go to benchmarks/results/export.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

RESULTS = Path(__file__).resolve().parent / "results"
LENET_RUN = Path("runs/lenet5_modern-fashion_mnist")
FAITHFUL_RUN = Path("runs/lenet5-fashion_mnist")  # `make train`'s run


def trained_source(model: str, run_dir: Path, quick: bool, workdir: Path):
    """`run_dir` (e.g. `make train`'s run) when it holds a finished run, else `model` trained
    here with the default recipe (1 epoch on 5,000 images with `quick`): a short run has small
    logit margins, so int8 rounding flips more of its top-1 decisions.

    Returns:
        `(source, note)`: the `export.source.ModelSource` and where the model came from.
    """
    from export.source import load_source
    from training import train

    if (run_dir / "metrics.json").is_file() and not quick:
        return load_source(run_dir), "trained run " + str(run_dir)
    run = workdir / f"{model}-fashion_mnist"
    options = dict(epochs=1, train_limit=5000) if quick else {}
    train(
        model=model,
        dataset="fashion_mnist",
        run_dir=str(run),
        verbose=0,
        tensorboard=False,
        preview=False,
        **options,
    )
    return load_source(run), "trained here, " + ("1 epoch" if quick else "default recipe")


_LATENCY: dict[str, dict[str, float]] = {}


def interleaved_latency(files: dict[str, Path], image: np.ndarray, rounds: int, runs: int):
    """Median batch-1 invoke time of every file, XNNPACK and built-in kernels, measured in
    interleaved rounds in this one process (so machine noise hits all files alike). Also
    times a trivial model (RESHAPE + STRIDED_SLICE): the interpreter's invoke overhead."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from export.tflite_export import convert_tflite

    inputs = tf.keras.Input(image.shape)
    tiny = tf.keras.Model(inputs, tf.keras.layers.Flatten()(inputs)[:, :10])
    contents = {name: path.read_bytes() for name, path in files.items()}
    contents["trivial_model"] = convert_tflite(tiny, image.shape, "none", progress=False)
    interpreters = {}
    for name, content in contents.items():
        for setting, resolver in (
            ("xnnpack", {}),
            (
                "builtin",
                {
                    "experimental_op_resolver_type": (
                        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                    )
                },
            ),
        ):
            interpreter = Interpreter(model_content=content, num_threads=1, **resolver)
            interpreter.allocate_tensors()
            (detail,) = interpreter.get_input_details()
            scale, zero_point = detail["quantization"]
            x = image[None]
            if np.dtype(detail["dtype"]).kind == "i":
                x = np.clip(np.round(x / scale + zero_point), -128, 127)
            interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
            interpreters[(name, setting)] = interpreter
    medians: dict = {key: [] for key in interpreters}
    for _ in range(rounds):
        for key, interpreter in interpreters.items():
            for _ in range(10):
                interpreter.invoke()
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                interpreter.invoke()
                times.append(time.perf_counter() - start)
            medians[key].append(np.median(times) * 1e6)
    result: dict[str, dict[str, float]] = {}
    for (name, setting), values in medians.items():
        result.setdefault(name, {})[setting] = float(np.median(values))
    return result


def file_rows(model_label: str, result, note: str) -> list[dict]:
    """One dict per exported file of `result` (an `export.ExportResult`), with its size and
    latency relative to the float32 .tflite."""
    by_name = {r.format: r for r in result.reports}
    fp32 = by_name.get("tflite_fp32")
    rows = []
    for report in result.reports:
        row = {"model": model_label, "note": note, **report.as_dict()}
        row.pop("ops"), row.pop("notes")
        row["top1_ties"] = report.notes.get("top1_ties")
        row["agreement_ties_by_keras"] = report.notes.get("agreement_ties_by_keras")
        row["litert_delegate"] = report.notes.get("litert_delegate")
        if fp32 and report.runtime == "tflite" and report.latency_us:
            row["size_vs_fp32"] = report.size_bytes / fp32.size_bytes
            row["latency_vs_fp32"] = report.latency_us / fp32.latency_us
            row["best_latency_us"] = min(report.latency_us, report.latency_builtin_us)
            row["best_latency_vs_best_fp32"] = row["best_latency_us"] / min(
                fp32.latency_us, fp32.latency_builtin_us
            )
        rows.append(row)
    return rows


_PROFILE: list[dict] = []
_CALIBRATION: list[dict] = []
_TFLM: list[dict] = []


def tflm_rows(sources, quick: bool, workdir: Path) -> list[dict]:
    """Each source exported as tflite_int8 (--io int8) and tflm side by side, verified on the
    whole test split (1,000 images with `quick`): the TFLM bundle's figures per model."""
    from export.exporter import ExportOptions, export_model
    from export.formats import resolve_formats

    rows = []
    for label, (source, note) in sources.items():
        options = ExportOptions(
            formats=resolve_formats("tflite_int8,tflm"),
            out_dir=workdir / f"tflm-{label}",
            io="int8",
            calibration_samples=200 if quick else 1000,
            test_samples=1000 if quick else 0,
            latency_runs=50 if quick else 200,
            progress=False,
        )
        result = export_model(source, options)
        by_name = {r.format: r for r in result.reports}
        tflm, int8 = by_name["tflm"], by_name["tflite_int8"]
        notes = {k: v for k, v in tflm.notes.items() if k.startswith("tflm_")}
        rows.append(
            {
                "model": label,
                "note": note,
                "keras_accuracy": tflm.accuracy + tflm.accuracy_drop_pp,
                "litert_int8_accuracy": int8.accuracy,
                "tflm_accuracy": tflm.accuracy,
                "tflm_accuracy_drop_pp": tflm.accuracy_drop_pp,
                "passed": tflm.passed,
                **notes,
            }
        )
    return rows


def _calibration_sweep(source, quick: bool) -> list[dict]:
    """Strict and tie-broken top-1 agreement of the int8 file against calibration set size
    and sampling seed: how much of the agreement figure is calibration noise."""
    from export.data import load_export_data
    from export.tflite_export import convert_tflite
    from export.verify import TFLiteRunner, _break_ties_by, keras_reference

    settings = [(100, 0), (1000, 1)] if quick else [(200, 0), (1000, 0), (1000, 1), (1000, 2)]
    settings += [] if quick else [(5000, 0)]
    rows = []
    for samples, seed in settings:
        data = load_export_data(
            "fashion_mnist",
            source.input_shape,
            calibration_samples=samples,
            test_samples=1000 if quick else 0,
            seed=seed,
        )
        # (The seed also picks the test subset of a quick run: a reference per setting.)
        reference = keras_reference(source.model, data.x_test, data.y_test, "classification")
        content = convert_tflite(
            source.model,
            source.input_shape,
            "int8",
            calibration=data.x_calibration,
            progress=False,
        )
        outputs = TFLiteRunner(content).predict(data.x_test)
        keras_top1 = reference.outputs.argmax(-1)
        top = np.sort(outputs, axis=-1)[:, -2:]
        rows.append(
            {
                "calibration_samples": samples,
                "seed": seed,
                "accuracy": float(np.mean(outputs.argmax(-1) == data.y_test) * 100),
                "keras_accuracy": reference.accuracy,
                "agreement": float(np.mean(outputs.argmax(-1) == keras_top1) * 100),
                "agreement_ties_by_keras": float(
                    np.mean(_break_ties_by(outputs, reference.outputs) == keras_top1) * 100
                ),
                "top1_ties": int(np.sum(top[:, 0] == top[:, 1])),
            }
        )
    return rows


def _calibration_table() -> str:
    from export.report import format_table

    if not _CALIBRATION:
        return "(not run)"
    return format_table(
        [
            "calibration images",
            "seed",
            "acc %",
            "drop pp",
            "strict agree %",
            "ties",
            "agree % ties by Keras",
        ],
        [
            [
                str(r["calibration_samples"]),
                str(r["seed"]),
                format(r["accuracy"], ".2f"),
                format(r["keras_accuracy"] - r["accuracy"], "+.2f"),
                format(r["agreement"], ".2f"),
                str(r["top1_ties"]),
                format(r["agreement_ties_by_keras"], ".2f"),
            ]
            for r in _CALIBRATION
        ],
    )


def _profile(source, quick: bool) -> list[dict]:
    """Where LeNet-5's time goes, float32 vs int8 (plain and space-to-depth rewrite), layer by
    layer (growing prefixes)."""
    from export.data import load_export_data
    from export.profile import profile_layers
    from export.rewrite import rewrite_for_deployment

    data = load_export_data(
        "fashion_mnist", source.input_shape, calibration_samples=100, test_samples=10
    )
    rewritten = rewrite_for_deployment(source.model)
    rows = []
    for quantization, model in (
        ("none", source.model),
        ("int8", source.model),
        ("int8_s2d", rewritten),
    ):
        names = [
            layer.name
            for layer in model.layers[1:]
            if not layer.name.startswith(("bn", "relu", "drop", "flatten"))
        ]
        for row in profile_layers(
            model,
            source.input_shape,
            quantization.removesuffix("_s2d"),
            calibration=data.x_calibration,
            runs=200 if quick else 500,
            layer_names=names,
        ):
            rows.append({"quantization": quantization, **row})
    return rows


def _profile_table() -> str:
    from export.report import format_table

    floats = [p for p in _PROFILE if p["quantization"] == "none"]
    ints = [p for p in _PROFILE if p["quantization"] == "int8"]
    fast = [p for p in _PROFILE if p["quantization"] == "int8_s2d"]
    if not floats:
        return "(not run)"
    return format_table(
        [
            "layer (cut after)",
            "fp32 XNNPACK us",
            "+",
            "int8 XNNPACK us",
            "+",
            "int8 builtin us",
            "+",
            "int8 s2d XNNPACK us",
            "+",
        ],
        [
            [a["layer"]]
            + [format(v, ".1f") for v in (a["xnnpack_us"], a["delta_us"])]
            + [format(v, ".1f") for v in (b["xnnpack_us"], b["delta_us"])]
            + [format(v, ".1f") for v in (b["builtin_us"], b["delta_builtin_us"])]
            + [format(v, ".1f") for v in (c["xnnpack_us"], c["delta_us"])]
            for a, b, c in zip(floats, ints, fast, strict=True)
        ],
    )


def run(quick: bool = False) -> list[dict]:
    """Runs the benchmark and returns one dict per exported file."""
    from export.data import load_export_data
    from export.exporter import ExportOptions, export_model
    from export.formats import resolve_formats

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="convzoo-bench-export-") as tmp:
        workdir = Path(tmp)
        source, note = trained_source("lenet5_modern", LENET_RUN, quick, workdir)
        options = ExportOptions(
            formats=resolve_formats(
                "tflite_fp32,tflite_fp16,tflite_int8,tflite_int8_s2d,onnx_fp32,onnx_int8"
            ),
            out_dir=workdir / "lenet",
            calibration_samples=200 if quick else 1000,
            test_samples=1000 if quick else 0,
            latency_runs=200 if quick else 1000,
            qat_epochs=3,
            qat_samples=2000 if quick else 60000,
            progress=False,
        )
        result = export_model(source, options)
        rows += file_rows("lenet5_modern", result, note)
        files = {
            name: Path(path)
            for name, path in result.files.items()
            if name.startswith("tflite") and name != "tflite_qat_int8"
        }
        from export.rewrite import rewrite_for_deployment
        from export.tflite_export import convert_tflite

        s2d_fp32 = workdir / "lenet_fp32_s2d.tflite"
        s2d_fp32.write_bytes(
            convert_tflite(
                rewrite_for_deployment(source.model), source.input_shape, "none", progress=False
            )
        )
        files["tflite_fp32_s2d"] = s2d_fp32
        image = load_export_data(
            "fashion_mnist", source.input_shape, calibration_samples=1, test_samples=1
        ).x_test[0]
        _LATENCY.clear()
        _LATENCY.update(interleaved_latency(files, image, 5 if quick else 30, 200))
        _PROFILE.clear()
        _PROFILE.extend(_profile(source, quick))
        _CALIBRATION.clear()
        _CALIBRATION.extend(_calibration_sweep(source, quick))

        _TFLM.clear()
        faithful = trained_source("lenet5", FAITHFUL_RUN, quick, workdir)
        sources = {"lenet5": faithful, "lenet5_modern": (source, note)}
        _TFLM.extend(tflm_rows(sources, quick, workdir))
    return rows


def latency_checks(label: str, latency: dict, fp32: dict, target: float) -> list[tuple]:
    """`label`'s interleaved latency against the float32 file's, under XNNPACK and with the
    best setting of each (`interleaved_latency` figures), as `(target, measured, met)`."""
    ratios = (
        ("default XNNPACK", latency["xnnpack"] / fp32["xnnpack"]),
        ("best setting each", min(latency.values()) / min(fp32.values())),
    )
    return [
        (f"{label} latency <= {target}x float32 ({setting}, interleaved)", f"{r:.2f}x", r <= target)
        for setting, r in ratios
    ]


def fidelity_checks(row: dict, label: str, max_drop_pp: float, min_agreement: float) -> list:
    """An exported file's accuracy drop and top-1 agreement against their targets."""
    return [
        (
            f"{label} accuracy drop <= {max_drop_pp} pp",
            f"{row['accuracy_drop_pp']:+.2f} pp",
            row["accuracy_drop_pp"] <= max_drop_pp,
        ),
        (
            f"{label} top-1 agreement >= {min_agreement} % (strict: np.argmax, ties count)",
            f"{row['agreement']:.2f} %",
            row["agreement"] >= min_agreement,
        ),
    ]


def _lenet_latency_checks() -> list[tuple[str, str, bool | None]]:
    fp32 = _LATENCY.get("tflite_fp32")
    checks = []
    for name, label in (("tflite_int8", "int8"), ("tflite_int8_s2d", "int8 s2d rewrite")):
        if fp32 and _LATENCY.get(name):
            checks += latency_checks(f"LeNet-5 {label}", _LATENCY[name], fp32, 1.0)
    return checks


def _targets(rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    get = {(r["model"], r["format"]): r for r in rows}
    onnx = get.get(("lenet5_modern", "onnx_fp32"))
    checks = []
    for name, label in (("tflite_int8", "int8"), ("tflite_int8_s2d", "int8 s2d rewrite")):
        row = get.get(("lenet5_modern", name))
        if not row or row.get("agreement") is None:
            continue
        checks += fidelity_checks(row, f"LeNet-5 {label}", 0.05, 99.7)
        checks += [
            (
                f"LeNet-5 {label} top-1 agreement, ties broken by Keras (not the target)",
                f"{row['agreement_ties_by_keras']:.2f} % ({row['top1_ties']} ties)",
                None,
            ),
            (
                f"LeNet-5 {label} size <= 0.27x float32",
                f"{row['size_vs_fp32']:.3f}x",
                row["size_vs_fp32"] <= 0.27,
            ),
        ]
    checks += _lenet_latency_checks()
    if onnx:
        checks.append(
            (
                "ONNX float32 max abs diff <= 1e-4",
                f"{onnx['max_abs_diff']:.2e}",
                onnx["max_abs_diff"] <= 1e-4,
            )
        )
    checks += tflm_targets(_TFLM)
    qat = get.get(("lenet5_modern", "tflite_qat_int8"))
    if qat and qat.get("accuracy_drop_pp") is not None:
        checks.append(
            (
                "LeNet-5 QAT int8 no accuracy drop",
                f"{qat['accuracy_drop_pp']:+.2f} pp",
                qat["accuracy_drop_pp"] <= 0.0,
            )
        )
    return checks


def tflm_targets(rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """The issue's TFLM targets, per LeNet-5 variant."""
    checks = []
    for r in rows:
        m, total = r["model"], r["tflm_output_elements"]
        checks += [
            (
                f"{m} TFLM int8 outputs identical to LiteRT int8 (default XNNPACK) on all "
                f"{r['tflm_images']:,} test images",
                f"{r['tflm_differing_vs_litert']:,} of {total:,} differ "
                f"(max {r['tflm_max_int8_steps_vs_litert']} step)",
                r["tflm_differing_vs_litert"] == 0,
            ),
            (
                f"{m} TFLM int8 outputs identical to LiteRT int8 (reference kernels)",
                f"{r['tflm_differing_vs_litert_reference']:,} of {total:,} differ "
                f"(max {r['tflm_max_int8_steps_vs_litert_reference']} step, "
                f"{r['tflm_top1_differing_vs_litert_reference']} top-1)",
                r["tflm_differing_vs_litert_reference"] == 0,
            ),
            (
                f"{m} TFLM accuracy drop vs Keras <= 0.05 pp (int8 target)",
                f"{r['tflm_accuracy_drop_pp']:+.2f} pp",
                r["tflm_accuracy_drop_pp"] <= 0.05,
            ),
            (
                f"{m} TFLM arena <= 10 KB (int8 input, measured in TFLM)",
                f"{r['tflm_arena_measured_bytes']:,} B (header with margin: "
                f"{r['tflm_arena_bytes']:,} B)",
                r["tflm_arena_measured_bytes"] <= 10 * 1024,
            ),
            (
                f"{m} TFLM flash (model array) <= 70 KB",
                f"{r['tflm_flash_bytes'] / 1024:.1f} KB",
                r["tflm_flash_bytes"] <= 70 * 1024,
            ),
        ]
    return checks


def tflm_table() -> str:
    from export.report import format_table

    if not _TFLM:
        return "(not run)"
    return format_table(
        [
            "model",
            "Keras acc %",
            "LiteRT int8 acc %",
            "TFLM acc %",
            "!= LiteRT (XNNPACK)",
            "!= LiteRT (ref)",
            "arena B",
            "header arena B",
            "flash B",
            "TFLM host us",
            "Cortex-M4 est. ms",
        ],
        [
            [
                r["model"],
                format(r["keras_accuracy"], ".2f"),
                format(r["litert_int8_accuracy"], ".2f"),
                format(r["tflm_accuracy"], ".2f"),
                f"{r['tflm_differing_vs_litert']}/{r['tflm_output_elements']}",
                f"{r['tflm_differing_vs_litert_reference']}/{r['tflm_output_elements']}",
                str(r["tflm_arena_measured_bytes"]),
                str(r["tflm_arena_bytes"]),
                str(r["tflm_flash_bytes"]),
                format(r["tflm_host_us"], ".0f"),
                format(r["tflm_cortex_m4_estimate_ms"], ".1f"),
            ]
            for r in _TFLM
        ],
    )


def latency_table(latency: dict[str, dict[str, float]]) -> str:
    """The markdown table of `interleaved_latency` figures, each against the float32 file's."""
    from export.report import format_table

    fp32 = latency.get("tflite_fp32")
    if not fp32:
        return "(not run)"
    body = [
        [
            name,
            format(lat["xnnpack"], ".1f"),
            format(lat["builtin"], ".1f"),
            format(lat["xnnpack"] / fp32["xnnpack"], ".2f"),
            format(min(lat.values()) / min(fp32.values()), ".2f"),
        ]
        for name, lat in latency.items()
    ]
    return format_table(
        ["file", "XNNPACK us", "builtin us", "x fp32 (XNNPACK)", "x fp32 (best each)"], body
    )


def files_table(rows: list[dict]) -> str:
    """The markdown table of `file_rows` rows."""
    from export.report import format_table

    def f(value, spec):
        return "-" if value is None else format(value, spec)

    header = [
        "model",
        "format",
        "size KB",
        "x fp32",
        "acc %",
        "drop pp",
        "agree %",
        "max abs diff",
        "XNNPACK us",
        "no-XNNPACK us",
        "lat x fp32",
        "status",
    ]
    body = [
        [
            r["model"],
            r["format"],
            f(r["size_bytes"] / 1024, ".1f"),
            f(r.get("size_vs_fp32"), ".3f"),
            f(r["accuracy"], ".2f"),
            f(r["accuracy_drop_pp"], "+.2f"),
            f(r["agreement"], ".2f"),
            f(r["max_abs_diff"], ".2e"),
            f(r["latency_us"], ".1f"),
            f(r["latency_builtin_us"], ".1f"),
            f(r.get("latency_vs_fp32"), ".2f"),
            "ok" if r["passed"] else r["status"],
        ]
        for r in rows
    ]
    return format_table(header, body)


def targets_table(checks: list[tuple[str, str, bool | None]]) -> str:
    """The markdown table of `(target, measured, met)` checks (met None: not a target)."""
    from export.report import format_table

    return format_table(
        ["target", "measured", "met"],
        [[name, value, {True: "yes", False: "NO", None: "-"}[ok]] for name, value, ok in checks],
    )


def to_markdown(rows: list[dict]) -> str:
    targets = targets_table(_targets(rows))
    return "\n".join(
        [
            "# Export benchmark",
            "",
            f"LiteRT (ai-edge-litert) 1 thread, batch 1, median; ONNX Runtime CPU 1 thread. "
            f"Machine: {os.cpu_count()} cores. {time.strftime('%Y-%m-%d')}.",
            "",
            files_table(rows),
            "",
            targets,
            "",
            "## TensorFlow Lite Micro bundle (tflm): LeNet-5 in the TFLM interpreter "
            "(tflite-micro, reference kernels; host time on this x86 machine, not MCU time)",
            "",
            tflm_table(),
            "",
            (_TFLM[0]["tflm_cortex_m4_estimate"] + ".") if _TFLM else "",
            "",
            "## LeNet-5 latency side by side (us, median of 30 interleaved rounds of 200 "
            "invokes, one process)",
            "",
            latency_table(_LATENCY),
            "",
            "## LeNet-5 int8 agreement against the calibration set (plain int8 file; the "
            "s2d file has the same integer math)",
            "",
            _calibration_table(),
            "",
            "## LeNet-5 latency by layer (model cut after each layer; + is the layer's share)",
            "",
            _profile_table(),
            "",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    markdown = to_markdown(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "export.md").write_text(markdown)
    (RESULTS / "export.json").write_text(
        json.dumps(
            {
                "files": rows,
                "latency_interleaved_us": _LATENCY,
                "profile": _PROFILE,
                "calibration_sweep": _CALIBRATION,
                "tflm": _TFLM,
            },
            indent=2,
            default=float,
        )
    )
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
