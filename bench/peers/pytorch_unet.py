#!/usr/bin/python3
"""The 3D U-Net of the issues in PyTorch on the CPU: a training step (Adam, Dice + CE, batch 1,
64^3, 3 classes, 4 levels 16-32-64-128, two conv-IN-LeakyReLU per level, transposed-conv up),
inference of one patch, and sliding-window prediction of a 1 x 160 x 192 x 160 volume with the
same windowing as voxcl (patch 64^3, overlap 0.5, Gaussian sigma = patch/8). Compare with
`voxcl bench` figures / `voxcl predict` timings measured in the same session.

    /usr/bin/python3 bench/peers/pytorch_unet.py [--threads 2] [--volume 160,192,160] [--skip-volume]
"""
import argparse
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def block(cin, cout, stride):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1), nn.InstanceNorm3d(cout, affine=True),
                         nn.LeakyReLU(0.01), nn.Conv3d(cout, cout, 3, 1, 1), nn.InstanceNorm3d(cout, affine=True),
                         nn.LeakyReLU(0.01))


class UNet(nn.Module):
    def __init__(self, cin=1, classes=3, ch=(16, 32, 64, 128)):
        super().__init__()
        self.enc = nn.ModuleList([block(cin if i == 0 else ch[i - 1], ch[i], 1 if i == 0 else 2) for i in range(len(ch))])
        self.up = nn.ModuleList([nn.ConvTranspose3d(ch[i + 1], ch[i], 2, 2, bias=False) for i in range(len(ch) - 1)])
        self.dec = nn.ModuleList([block(2 * ch[i], ch[i], 1) for i in range(len(ch) - 1)])
        self.head = nn.Conv3d(ch[0], classes, 1)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.dec[i](torch.cat([skips[i], self.up[i](x)], 1))
        return self.head(x)


def dice_ce(logits, y):
    p = logits.softmax(1)
    oh = F.one_hot(y, logits.shape[1]).permute(0, 4, 1, 2, 3).float()
    tp = (p * oh).sum((2, 3, 4))
    den = p.sum((2, 3, 4)) + oh.sum((2, 3, 4))
    dice = 1 - (2 * tp + 1e-5) / (den + 1e-5)
    return F.cross_entropy(logits, y) + dice[:, 1:].mean()


def gaussian(patch):
    g = np.ones(patch)
    for a, n in enumerate(patch):
        i = np.arange(n)
        w = np.exp(-((i - n // 2) ** 2) / (2 * (n / 8) ** 2))
        sh = [1, 1, 1]
        sh[a] = n
        g = g * w.reshape(sh)
    g /= g.max()
    g[g == 0] = g[g > 0].min()
    return torch.from_numpy(g.astype(np.float32))


def steps(size, patch, overlap=0.5):
    n = int(np.ceil((size - patch) / (patch * (1 - overlap)))) + 1 if size > patch else 1
    return [int(round(v)) for v in np.linspace(0, size - patch, n)] if n > 1 else [0]


def median(f, n=5):
    f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--volume", default="160,192,160")
    ap.add_argument("--skip-volume", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = UNet()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(1, 1, 64, 64, 64)
    y = torch.randint(0, 3, (1, 64, 64, 64))

    def step():
        opt.zero_grad()
        dice_ce(net(x), y).backward()
        opt.step()

    t_step = median(step)
    with torch.no_grad():
        t_inf = median(lambda: net(x))
    print(f"PyTorch {torch.__version__}, {a.threads} threads; parameters {sum(p.numel() for p in net.parameters())}")
    print(f"training step 64^3: {t_step * 1e3:.0f} ms; inference 64^3: {t_inf * 1e3:.0f} ms; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if a.skip_volume:
        return
    D, H, W = (int(v) for v in a.volume.split(","))
    vol = torch.randn(1, 1, D, H, W)
    g = gaussian((64, 64, 64))
    t0 = time.perf_counter()
    with torch.no_grad():
        acc = torch.zeros(1, 3, D, H, W)
        wsum = torch.zeros(1, 1, D, H, W)
        for z in steps(D, 64):
            for yy in steps(H, 64):
                for xx in steps(W, 64):
                    p = net(vol[:, :, z:z + 64, yy:yy + 64, xx:xx + 64]).softmax(1)
                    acc[:, :, z:z + 64, yy:yy + 64, xx:xx + 64] += p * g
                    wsum[:, :, z:z + 64, yy:yy + 64, xx:xx + 64] += g
        seg = (acc / wsum).argmax(1)
    n = len(steps(D, 64)) * len(steps(H, 64)) * len(steps(W, 64))
    print(f"sliding window {D}x{H}x{W}, patch 64^3, overlap 0.5: {n} windows, {time.perf_counter() - t0:.1f} s "
          f"({seg.shape})")


if __name__ == "__main__":
    main()
