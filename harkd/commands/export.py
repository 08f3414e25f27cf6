"""`harkd export RUN_DIR [--int8] [--data CONFIG]`: ONNX (and int8) export of a finished run.

Writes <run_dir>/model.onnx (normalisation folded in, metadata for deployment), checks it
against PyTorch on the test windows (max |logit diff| <= 1e-4, argmax agreement >= 99.9%),
and with --int8 writes model.int8.onnx calibrated on training windows, reporting the test
macro-F1 change and the file size ratio. Everything measured goes to <run_dir>/export.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harkd.commands.options import positive_int
from harkd.shipped import config_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run directory of `harkd train`/`distill`")
    parser.add_argument("--int8", action="store_true", help="also write model.int8.onnx")
    parser.add_argument("--data", default=None, help="data protocol YAML (default: the run's)")
    parser.add_argument("--format", choices=["qoperator", "qdq"], default="qoperator",
                        help="int8 graph format (default qoperator)")
    parser.add_argument("--calibration", type=positive_int, default=512,
                        help="training windows used to calibrate int8 ranges (default 512)")
    parser.add_argument("--per-channel", action="store_true",
                        help="one int8 weight scale per output channel instead of per tensor "
                             "after cross-layer range equalization (the default)")


def run(args: argparse.Namespace) -> int:
    from harkd.deploy.export import export_run

    data = None if args.data is None else config_file(args.data)
    result = export_run(args.run_dir, args.int8, data, args.format, args.calibration,
                        args.per_channel)
    c = result.check
    print(f"onnx     {result.onnx_path}")
    print(f"check    {c.windows} test windows: max |logit diff| {c.max_abs_diff:.2e}, "
          f"argmax agreement {c.argmax_agreement:.4%}")
    if result.int8 is not None:
        q = result.int8
        print(f"int8     {result.int8_path} ({q['format']}, {q['calibration_windows']} training "
              f"windows): {q['int8_bytes']} B = {q['size_ratio']:.3f} x float {q['float_bytes']} B")
        print(f"macro-F1 float {q['f1_float']:.4f}, int8 {q['f1_int8']:.4f} "
              f"(change {q['f1_change']:+.4f}); argmax agreement {q['argmax_agreement']:.4%}")
    return 0
