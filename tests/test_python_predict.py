"""voxcl.predict (Python) against `voxcl predict` (CLI) on a model trained for a few steps on the
synthetic dataset: the same labels voxel for voxel, probabilities that sum to 1, and a clear
error for a folder that is not a model. Exit 77 (skipped) without numpy."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import voxcl  # noqa: E402

cli = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    run = lambda *a: subprocess.run([cli, *a], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("synth", "--out", f"{d}/ds", "--cases", "4", "--size", "16,16,16")
    run("train", "--dataset", f"{d}/ds", "--out", f"{d}/m", "--epochs", "1", "--iters-per-epoch", "3", "--base", "4",
        "--patch", "16,16,16", "--levels", "2", "--folds", "2", "--optimizer", "adam")
    img_path = f"{d}/ds/imagesTr/synth_000_0000.nii.gz"
    run("predict", "--model", f"{d}/m", "-i", img_path, "-o", f"{d}/cli.nii.gz")
    img, _, hdr = voxcl.load_nifti(img_path)
    labels, probs = voxcl.predict(f"{d}/m", img, spacing=hdr["spacing"], probabilities=True)
    ref, _, _ = voxcl.load_nifti(f"{d}/cli.nii.gz")
    failed = 0
    if labels.shape != (16, 16, 16) or not np.array_equal(labels, ref[0].astype(labels.dtype)):
        print("FAIL: Python and CLI segmentations differ"); failed += 1
    if probs is None or np.abs(probs.sum(0) - 1).max() > 1e-5:
        print("FAIL: probabilities do not sum to 1"); failed += 1
    try:
        voxcl.predict(f"{d}/ds", img)
        print("FAIL: a dataset folder was accepted as a model"); failed += 1
    except voxcl.VoxclError as e:
        if "plan.json" not in str(e):
            print("FAIL: the error does not name plan.json:", e); failed += 1
    print(f"{3 - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
