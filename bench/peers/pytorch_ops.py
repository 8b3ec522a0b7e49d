#!/usr/bin/python3
"""The shapes of `voxcl bench ops` in PyTorch on the CPU (same thread count), and the ratio
voxcl / PyTorch per op and pass when given voxcl's JSON:

    voxcl bench ops --json voxcl.json
    /usr/bin/python3 bench/peers/pytorch_ops.py --voxcl voxcl.json [--threads 2] [--only 64^3]

Times are medians of up to 5 runs after a warm-up, like voxcl's."""
import argparse
import json
import time

import torch
import torch.nn.functional as F

CONVS = [  # name, cin, cout, size, k, stride, pad, groups, transposed (as src/cli/bench.c)
    ("conv3d 1->32 k3 128^3", 1, 32, 128, 3, 1, 1, 1, 0),
    ("conv3d 32->32 k3 64^3", 32, 32, 64, 3, 1, 1, 1, 0),
    ("conv3d 64->64 k3 32^3", 64, 64, 32, 3, 1, 1, 1, 0),
    ("conv3d 128->128 k3 16^3", 128, 128, 16, 3, 1, 1, 1, 0),
    ("conv3d 320->320 k3 8^3", 320, 320, 8, 3, 1, 1, 1, 0),
    ("conv3d 32->64 k3 s2 64^3", 32, 64, 64, 3, 2, 1, 1, 0),
    ("depthwise 48 k7 48^3", 48, 48, 48, 7, 1, 3, 48, 0),
    ("conv_transpose3d 64->32 k2 s2 32^3->64^3", 64, 32, 32, 2, 2, 0, 1, 1),
]


def median_ms(fn, budget=2.0):
    fn()
    ts, total = [], 0.0
    while len(ts) < 5 and total < budget:
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        total += ts[-1]
    ts.sort()
    return 1e3 * ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--voxcl", help="JSON written by `voxcl bench ops --json`")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = {}
    for name, cin, cout, s, k, st, p, g, tr in CONVS:
        if a.only not in name:
            continue
        x = torch.randn(1, cin, s, s, s, requires_grad=True)
        w = torch.randn(*((cin, cout // g) if tr else (cout, cin // g)), k, k, k, requires_grad=True)
        f = (lambda: F.conv_transpose3d(x, w, stride=st, padding=p, groups=g)) if tr else \
            (lambda: F.conv3d(x, w, stride=st, padding=p, groups=g))
        with torch.no_grad():
            fwd = median_ms(f)
        y = f()
        gy = torch.randn_like(y)
        bwd = median_ms(lambda: torch.autograd.grad(y, (x, w), gy, retain_graph=True))
        rows[(name, "forward")] = fwd
        rows[(name, "f+b")] = fwd + bwd
    x = torch.randn(1, 32, 64, 64, 64, requires_grad=True)
    for name, f in [("instance_norm 32x64^3", lambda: F.instance_norm(x)),
                    ("leaky_relu 32x64^3", lambda: F.leaky_relu(x, 0.01))]:
        if a.only not in name:
            continue
        with torch.no_grad():
            rows[(name, "forward")] = median_ms(f)
        y = f()
        gy = torch.randn_like(y)
        rows[(name, "backward")] = median_ms(lambda: torch.autograd.grad(y, x, gy, retain_graph=True))
    vx = {}
    if a.voxcl:
        for r in json.load(open(a.voxcl))["results"]:
            vx[(r["op"], r["pass"])] = r["ms"]
    print(f"PyTorch {torch.__version__}, {a.threads} threads")
    print(f"{'op':44s} {'pass':9s} {'torch ms':>10s} {'voxcl ms':>10s} {'voxcl/torch':>12s}")
    for (name, ps), t in rows.items():
        v = vx.get((name, ps))
        ratio = f"{v / t:12.2f}" if v else f"{'-':>12s}"
        print(f"{name:44s} {ps:9s} {t:10.1f} {v if v else float('nan'):10.1f} {ratio}")


if __name__ == "__main__":
    main()
