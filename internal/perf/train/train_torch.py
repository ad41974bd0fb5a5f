#!/usr/bin/python3
"""PyTorch's side of scorer's training benchmark (make bench-train).

The architecture, batch and optimiser of BenchmarkTrainStep/arch=ctr-mlp
(scoring/training): wide & deep on 13 dense features and 26 categoricals of
65,537 values each; the wide part one weight per categorical value (one
stacked table, as scorer stores it), one per dense feature and a bias; the
deep part 16-wide embeddings (one stacked table) concatenated with the dense
features (429 inputs), hidden layers of 256 and 128 with ReLU, one output;
the two logits summed; mean binary cross-entropy on the logit; Adam (lr
0.001, betas 0.9/0.999, eps 1e-8; dense gradients, as scorer's); batches of
256 rows. The data are random (uniform values, normal dense features,
Bernoulli labels): a step's cost does not depend on them.

Prints one Go benchmark line per run, e.g.
    BenchmarkTrainStep/peer=pytorch/threads=1 20 51000000 ns/op 5019 rows/s

usage: train_torch.py [--threads N] [--steps N] [--count N]
"""
import argparse
import time

import torch
import torch.nn as nn

DENSE, CATS, CARD, EMB, HIDDEN, BATCH = 13, 26, 65537, 16, (256, 128), 256


class WideDeep(nn.Module):
    def __init__(self):
        super().__init__()
        rows = CATS * CARD
        self.register_buffer("offsets", torch.arange(CATS, dtype=torch.long) * CARD)
        self.wide_emb = nn.Embedding(rows, 1)
        self.wide_dense = nn.Linear(DENSE, 1)
        self.deep_emb = nn.Embedding(rows, EMB)
        layers, width = [], CATS * EMB + DENSE
        for h in HIDDEN:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.deep = nn.Sequential(*layers)

    def forward(self, dense, cat):
        idx = cat + self.offsets
        wide = self.wide_emb(idx).sum(dim=(1, 2)) + self.wide_dense(dense)[:, 0]
        x = torch.cat([self.deep_emb(idx).reshape(len(cat), -1), dense], dim=1)
        return wide + self.deep(x)[:, 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--count", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = WideDeep()
    opt = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.BCEWithLogitsLoss()
    n = 64 * BATCH
    dense = torch.randn(n, DENSE)
    cat = torch.randint(0, CARD, (n, CATS))
    labels = (torch.rand(n) < 0.25).float()

    def step(i):
        lo = (i * BATCH) % n
        opt.zero_grad()
        loss = loss_fn(model(dense[lo:lo + BATCH], cat[lo:lo + BATCH]), labels[lo:lo + BATCH])
        loss.backward()
        opt.step()

    for i in range(3):  # warm up: first-step allocations, Adam's state
        step(i)
    for _ in range(args.count):
        t = time.perf_counter()
        for i in range(args.steps):
            step(i)
        secs = time.perf_counter() - t
        print(f"BenchmarkTrainStep/peer=pytorch/threads={args.threads} {args.steps} "
              f"{secs / args.steps * 1e9:.0f} ns/op {args.steps * BATCH / secs:.1f} rows/s", flush=True)


if __name__ == "__main__":
    main()
