"""Cross-checks voxcl's NIfTI code against nibabel, an independent implementation.

1. voxcl writes label and float files like a source image: nibabel must see the same shape,
   datatype, affine, sform, qform, zooms, units and data.
2. nibabel writes files (big-endian, scaled, NIfTI-2, 4-D, .hdr/.img, qform only): voxcl must
   read the same dims, affine and (scaled) data.

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

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def read_fields(path):
    fields = {}
    with open(path) as f:
        for line in f:
            key, *vals = line.split()
            fields[key] = np.array([float(v) for v in vals])
    return fields


def voxcl_writes(binary, work):
    subprocess.run([binary, "--write-for-nibabel", work], check=True)
    expected = read_fields(os.path.join(work, "expected.txt"))
    dims = tuple(int(d) for d in expected["dims"])
    affine = expected["affine"].reshape(4, 4)
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


def voxcl_reads(binary, work):
    rng = np.random.default_rng(7)
    rot = np.array([[0.0, -0.9, 0.1, 10.5], [0.8, 0.0, 0.05, -20.25], [0.0, 0.02, 2.5, 33.0], [0, 0, 0, 1]])
    cases = []

    def case(name, img, exact_affine=True):
        path = os.path.join(work, name)
        nib.save(img, path)
        cases.append((name, path, exact_affine))

    # int16, big-endian, scaled
    hdr = nib.Nifti1Header(endianness=">")
    img = nib.Nifti1Image(rng.integers(-3000, 3000, (9, 7, 5)).astype(np.int16), rot, hdr)
    img.header.set_slope_inter(0.5, -100.0)
    case("nib_be_int16.nii.gz", img)
    # float64 NIfTI-2
    case("nib_n2_f64.nii", nib.Nifti2Image(rng.standard_normal((6, 5, 4)), rot))
    # 4-D uint8: channels
    case("nib_4d_u8.nii.gz", nib.Nifti1Image(rng.integers(0, 255, (5, 4, 3, 2)).astype(np.uint8), rot))
    # .hdr/.img pair, uint16
    case("nib_pair.hdr", nib.Nifti1Pair(rng.integers(0, 60000, (4, 5, 6)).astype(np.uint16), rot))
    # int8 and uint32 and int64
    case("nib_i8.nii", nib.Nifti1Image(rng.integers(-128, 127, (3, 4, 5)).astype(np.int8), rot))
    case("nib_u32.nii.gz", nib.Nifti1Image(rng.integers(0, 2**32 - 1, (3, 4, 5), dtype=np.uint32), rot))
    case("nib_i64.nii", nib.Nifti1Image(rng.integers(-2**40, 2**40, (3, 4, 5), dtype=np.int64), rot, dtype=np.int64))
    # qform only (sform code 0): affine from the quaternion, computed by two libraries
    q = nib.Nifti1Image(rng.standard_normal((4, 4, 4)).astype(np.float32), None)
    q.set_qform(rot, code=1)
    q.set_sform(None, code=0)
    case("nib_qform.nii.gz", q, exact_affine=False)

    for name, path, exact in cases:
        out = os.path.join(work, name + ".txt")
        r = subprocess.run([binary, "--dump", path, out], capture_output=True, text=True)
        check(r.returncode == 0 and r.stderr == "", f"{name}: voxcl reads it silently ({r.stderr.strip()})")
        if r.returncode != 0:
            continue
        got = read_fields(out)
        img = nib.load(path)
        shape = img.shape + (1,) * (4 - len(img.shape))
        dims = tuple(int(d) for d in got["dims"])
        check(dims == shape, f"{name}: dims {dims} == {shape}")
        aff = got["affine"].reshape(4, 4)
        if exact:
            check(np.array_equal(aff, img.affine), f"{name}: affine equal")
        else:
            check(np.allclose(aff, img.affine, rtol=1e-6, atol=1e-5), f"{name}: affine close (qform)")
        want = np.asarray(img.get_fdata(dtype=np.float64)).astype(np.float32)
        want = want.reshape(shape).transpose(3, 2, 1, 0).ravel()
        check(np.array_equal(got["data"].astype(np.float32), want), f"{name}: data equal")


def main():
    binary, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    voxcl_writes(binary, work)
    voxcl_reads(binary, work)
    print("all checks passed" if not failures else f"{len(failures)} checks failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
