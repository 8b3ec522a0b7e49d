"""Cross-checks NIfTI files written by voxcl against nibabel: affine, dims, datatype, data.

Usage: nifti_nibabel_check.py TEST_NIFTI_BINARY WORKDIR
Exits 77 (ctest: skipped) when nibabel or numpy cannot be imported."""
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
    import nibabel as nib
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)


def main():
    binary, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([binary, "--write-for-nibabel", work], check=True)
    expected = {}
    with open(os.path.join(work, "expected.txt")) as f:
        for line in f:
            key, *vals = line.split()
            expected[key] = np.array([float(v) for v in vals])
    dims = tuple(int(d) for d in expected["dims"])
    affine = expected["affine"].reshape(4, 4)
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    src = nib.load(os.path.join(work, "nib_src.nii.gz"))
    for name, dtype, key in (("voxcl_labels.nii.gz", np.uint16, "labels"),
                             ("voxcl_float.nii.gz", np.float32, "floats")):
        img = nib.load(os.path.join(work, name))
        hdr = img.header
        check(img.shape == dims, f"{name}: shape {img.shape} == {dims}")
        check(hdr.get_data_dtype() == dtype, f"{name}: dtype {hdr.get_data_dtype()} == {np.dtype(dtype)}")
        check(np.array_equal(img.affine, affine), f"{name}: nibabel affine equals voxcl's")
        check(np.array_equal(img.affine, src.affine), f"{name}: affine equals the source file's")
        sf, sc = hdr.get_sform(coded=True)
        qf, qc = hdr.get_qform(coded=True)
        ssf, ssc = src.header.get_sform(coded=True)
        sqf, sqc = src.header.get_qform(coded=True)
        check(sc == ssc and qc == sqc, f"{name}: sform/qform codes {sc}/{qc} == {ssc}/{sqc}")
        check(np.array_equal(sf, ssf) and np.array_equal(qf, sqf), f"{name}: sform and qform equal the source's")
        check(hdr.get_zooms() == src.header.get_zooms(), f"{name}: zooms {hdr.get_zooms()}")
        check(hdr.get_xyzt_units() == src.header.get_xyzt_units(), f"{name}: units {hdr.get_xyzt_units()}")
        data = np.asarray(img.dataobj).astype(np.float32)
        want = expected[key].astype(np.float32).reshape(dims[::-1]).transpose(2, 1, 0)
        check(np.array_equal(data, want), f"{name}: data equal")
    print(f"{len(failures) == 0 and 'all' or 'not all'} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
