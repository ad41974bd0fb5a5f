#!/usr/bin/python3
"""Trains the ONNX demo model of the README, as a user's PyTorch pipeline
would, and exports it as torch.onnx.export would (see README.md):

    make_demo.py STORE_DIR OUT_DIR WORK_DIR

Reads the feature spec OUT_DIR/features.yaml and the demo store's ad dumps
(STORE_DIR/dumps/YYYY-MM/*.csv.gz); computes the model's inputs exactly as
scorer computes them for that spec (docs/features.md; features/transform.go
and fit.go); trains a small wide & deep model on 2020-08 in numpy (the
latest 20% of the month by served_at held out for validation); and writes

    OUT_DIR/stats.yaml         the statistics of the pipeline: means and
                               standard deviations, vocabularies
                               (features.Stats, for scorer import --stats)
    OUT_DIR/ctr-pytorch.onnx   the model, as torch.onnx.export writes it
    WORK_DIR/demo.json         what demo_outputs.js needs to write
                               OUT_DIR/ctr-pytorch.expected.json: the
                               inputs of the validation rows and of every
                               row of 2020-09 (raw little-endian files
                               beside it), their labels, and this script's
                               float64 numpy forward pass of the exported
                               float32 weights ("reference")

Deterministic: one fixed seed, numpy's legacy RandomState (its streams are
frozen across numpy versions), OpenBLAS on one thread, no timestamps in the
files. Training runs in float64 and the weights are rounded to float32 once,
for the export. Run with Debian's /usr/bin/python3 (python3-onnx 1.12,
python3-numpy, python3-yaml).
"""

import os

# One OpenBLAS thread, set before numpy loads it: a matrix product then adds
# in the same order on every run.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import csv  # noqa: E402
import datetime  # noqa: E402
import glob  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import yaml  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from make_models import IR_TORCH, f32, model_of, torch_wide_deep_nodes, value_info, write_atomic  # noqa: E402

TRAIN_MONTH, SCORE_MONTH = "2020-08", "2020-09"
EXPECTED_FILE = "dumps/2020-09/ads-2020-09-000.csv.gz"  # its first EXPECTED_ROWS rows, in file order
EXPECTED_ROWS = 300
ID_COLUMN = "ad_id"
MODEL = "ctr-pytorch"
OPSET = 17

# The model and its training.
EMB = 8  # embedding width
HIDDEN = 16  # one hidden layer
VAL_FRACTION = 0.2  # the latest 20% of the training month, by served_at
TIME_COLUMN = "served_at"
SEED = 1
EPOCHS = 4
BATCH = 256
LR = 0.005  # Adam, betas (0.9, 0.999), eps 1e-8 (PyTorch's defaults)

# scorer's CSV reader: these fields are missing (readers.defaultNullValues).
NULLS = {"", "NA", "null", "?"}

# features.Hash: 64-bit FNV-1a over the UTF-8 bytes.
FNV_OFFSET, FNV_PRIME, MASK64 = 14695981039346656037, 1099511628211, (1 << 64) - 1


def fnv1a64(s):
    h = FNV_OFFSET
    for b in s.encode("utf-8"):
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def log(msg):
    print(f"make_demo: {msg}", file=sys.stderr)


# The feature spec -----------------------------------------------------------

KEYS = {
    "numeric": {"name", "kind", "column", "fill", "clip", "log1p", "standardize"},
    "categorical": {"name", "kind", "column", "hash_buckets", "vocabulary", "ids", "missing_id", "out_of_range"},
    "timestamp": {"name", "kind", "column", "part"},
}


def load_spec(path):
    """The spec file with scorer's defaults (features.Spec.SetDefaults), and
    checked to hold only what this script implements (no crosses, no
    out_of_range: reject)."""
    with open(path) as f:
        spec = yaml.safe_load(f)
    for f in spec["features"]:
        kind = f["kind"]
        if kind not in KEYS:
            sys.exit(f"make_demo: feature {f['name']}: kind {kind} is not implemented here")
        if set(f) - KEYS[kind]:
            sys.exit(f"make_demo: feature {f['name']}: keys {sorted(set(f) - KEYS[kind])} are not implemented here")
        f.setdefault("column", f["name"])
        if kind == "categorical":
            if sum(k in f for k in ("hash_buckets", "vocabulary", "ids")) != 1:
                sys.exit(f"make_demo: feature {f['name']}: one of hash_buckets, vocabulary, ids")
            if "ids" in f and f.get("out_of_range", "missing") != "missing":
                sys.exit(f"make_demo: feature {f['name']}: out_of_range {f['out_of_range']} is not implemented here")
        if kind == "timestamp" and f["part"] not in ("hour_of_day", "day_of_week"):
            sys.exit(f"make_demo: feature {f['name']}: part {f['part']}")
    return spec


def cardinality(f, stats):
    if f["kind"] == "timestamp":
        return 25 if f["part"] == "hour_of_day" else 8
    if "ids" in f:
        return f["ids"]
    if "vocabulary" in f:
        return len(stats["vocab"][f["name"]]) + 1
    return f["hash_buckets"] + 1


# Reading the dumps, as scorer's CSV reader does -----------------------------


def parse_int(s):
    """An ids column's value: an integer, or a number whose value is whole."""
    try:
        return int(s)
    except ValueError:
        v = float(s)
        if not v.is_integer():
            raise ValueError(f"{s!r} is not an integer") from None
        return int(v)


def parse_time(s):
    """RFC 3339, YYYY-MM-DD HH:MM:SS (UTC) or Unix seconds, as a UTC datetime."""
    if s.lstrip("-").isdigit():
        return datetime.datetime.fromtimestamp(int(s), datetime.timezone.utc)
    t = datetime.datetime.fromisoformat(s)
    if t.tzinfo is None:
        return t.replace(tzinfo=datetime.timezone.utc)
    return t.astimezone(datetime.timezone.utc)


def read_month(store, month, spec):
    """Every row of the month's files (files in name order, rows in file
    order): {"files": [(key, rows)], "ids": [...], "label": float64 [n],
    column: values} with numeric columns as float64 (NaN missing), ids
    columns as Python ints (None missing), timestamps as UTC datetimes and
    strings as they are (None missing)."""
    kinds = {}
    for f in spec["features"]:
        if f["kind"] == "numeric":
            kinds[f["column"]] = "float"
        elif f["kind"] == "timestamp":
            kinds[f["column"]] = "time"
        elif "ids" in f:
            kinds[f["column"]] = "int"
        else:
            kinds[f["column"]] = "str"
    cols = [ID_COLUMN, spec["label"]] + list(kinds)
    raw = {c: [] for c in cols}
    files = []
    for path in sorted(glob.glob(os.path.join(store, "dumps", month, "*.csv.gz"))):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            r = csv.reader(fh)
            header = [h.strip() for h in next(r)]
            idx = [header.index(c) for c in cols]
            n = 0
            for rec in r:
                if len(rec) != len(header):
                    sys.exit(f"make_demo: {path}: a row of {len(rec)} fields")
                for c, i in zip(cols, idx):
                    raw[c].append(None if rec[i] in NULLS else rec[i])
                n += 1
        files.append((os.path.relpath(path, store), n))
    if not files:
        sys.exit(f"make_demo: no {store}/dumps/{month}/*.csv.gz")
    out = {"files": files, "ids": raw[ID_COLUMN], "label": np.array([float(v) for v in raw[spec["label"]]])}
    for c, kind in kinds.items():
        if kind == "float":
            out[c] = np.array([math.nan if v is None else float(v) for v in raw[c]])
        elif kind == "int":
            out[c] = [None if v is None else parse_int(v) for v in raw[c]]
        elif kind == "time":
            out[c] = [None if v is None else parse_time(v) for v in raw[c]]
        else:
            out[c] = raw[c]
    return out


def take(data, rows):
    """The rows `rows` (indices) of read_month's columns."""
    out = {}
    for c, v in data.items():
        if c == "files":
            continue
        out[c] = v[rows] if isinstance(v, np.ndarray) else [v[i] for i in rows]
    return out


# Features, as features.Pipeline.Transform computes them ----------------------


def prestandardize(f, x):
    """A numeric feature's values after fill, clip and log1p (float64)."""
    x = np.where(np.isnan(x), float(f.get("fill", 0.0)), x)
    if "clip" in f:
        x = np.minimum(np.maximum(x, float(f["clip"][0])), float(f["clip"][1]))
    if f.get("log1p"):
        x = np.sign(x) * np.log1p(np.abs(x))
    return x


def fit(spec, data):
    """features.Fitter's statistics of the rows: mean and population
    standard deviation of each standardized feature after fill, clip and
    log1p; the max_size most frequent values seen at least min_count times
    of each vocabulary feature, most frequent first, ties by value."""
    stats = {"numeric": {}, "vocab": {}}
    for f in spec["features"]:
        if f["kind"] == "numeric" and f.get("standardize"):
            x = prestandardize(f, data[f["column"]])
            mean = math.fsum(x) / len(x)
            std = math.sqrt(math.fsum((x - mean) ** 2) / len(x)) if len(x) > 1 else 0.0
            stats["numeric"][f["name"]] = {"mean": mean, "std": std}
        elif "vocabulary" in f:
            v = f["vocabulary"]
            counts = Counter(s for s in data[f["column"]] if s is not None)
            # Go's cmp.Compare orders strings by their bytes; for UTF-8,
            # that is Python's order of code points.
            keep = sorted((c for c in counts.items() if c[1] >= max(v.get("min_count", 1), 1)),
                          key=lambda c: (-c[1], c[0]))
            stats["vocab"][f["name"]] = [c[0] for c in keep[: v["max_size"]]]
    return stats


def transform(spec, stats, data):
    """(dense float32 [n, D], cat int64 [n, K], notes): the numeric features
    in spec order, then every other feature's index; notes counts the
    missing values and unknown vocabulary values per feature."""
    dense, cat, notes = [], [], {}
    for f in spec["features"]:
        col, name = data[f["column"]], f["name"]
        if f["kind"] == "numeric":
            notes[name] = {"missing": int(np.isnan(col).sum())}
            x = prestandardize(f, col)
            if f.get("standardize"):
                st = stats["numeric"][name]
                inv = 1.0 / st["std"] if st["std"] > 0 else 1.0
                x = (x - st["mean"]) * inv  # as denseOp.apply: times 1/std
            dense.append(x.astype(np.float32))
            continue
        notes[name] = {"missing": sum(v is None for v in col)}
        if f["kind"] == "timestamp":
            part = (lambda t: 1 + t.hour) if f["part"] == "hour_of_day" else (lambda t: t.isoweekday())
            idx = [0 if t is None else part(t) for t in col]
        elif "ids" in f:
            n, missing = f["ids"], f.get("missing_id", 0)
            idx = [v if v is not None and 0 <= v < n else missing for v in col]
            notes[name]["out_of_range"] = sum(v is not None and not 0 <= v < n for v in col)
        elif "vocabulary" in f:
            index = {v: i + 1 for i, v in enumerate(stats["vocab"][name])}
            idx = [0 if v is None else index.get(v, 0) for v in col]
            notes[name]["unknown"] = sum(v is not None and v not in index for v in col)
        else:
            b = f["hash_buckets"]
            hashed = {v: 1 + fnv1a64(v) % b for v in set(col) if v is not None}
            idx = [0 if v is None else hashed[v] for v in col]
        cat.append(np.array(idx, dtype=np.int64))
    return np.ascontiguousarray(np.stack(dense, axis=1)), np.ascontiguousarray(np.stack(cat, axis=1)), notes


# The model: wide & deep, one nn.Embedding per categorical ---------------------
#
# class Deep(nn.Module):     emb_0..emb_5 = nn.Embedding(card_i, 8)
#                            fc1 = nn.Linear(3 + 6 * 8, 16); out = nn.Linear(16, 1)
#     forward(dense, ids):   x = torch.cat([dense] + [emb_i(ids[i])], 1)
#                            return out(relu(fc1(x)))
# class Wide(nn.Module):     linear = nn.Linear(3, 1); emb_0..emb_5 = nn.Embedding(card_i, 1)
#     forward(dense, ids):   return linear(dense) + emb_0(ids[0]) + ... + emb_5(ids[5])
# class WideDeep(nn.Module):
#     forward(dense, cat):   ids = [cat[:, i] for i in range(6)]
#                            return torch.sigmoid(deep(dense, ids) + wide(dense, ids))
#
# Initialized as PyTorch initializes those modules (nn.Embedding N(0, 1),
# nn.Linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias), but the
# wide tables, zeroed (nn.init.zeros_), as wide & deep code usually does.


def init(rng, d, cards):
    k = len(cards)
    w = {}

    def linear(name, fan_in, fan_out):
        bound = 1.0 / math.sqrt(fan_in)
        w[f"{name}.weight"] = rng.uniform(-bound, bound, size=(fan_out, fan_in))
        w[f"{name}.bias"] = rng.uniform(-bound, bound, size=(fan_out,))

    for i, card in enumerate(cards):
        w[f"deep.emb_{i}.weight"] = rng.normal(0.0, 1.0, size=(card, EMB))
    linear("deep.fc1", d + k * EMB, HIDDEN)
    linear("deep.out", HIDDEN, 1)
    linear("wide.linear", d, 1)
    for i, card in enumerate(cards):
        w[f"wide.emb_{i}.weight"] = np.zeros((card, 1))
    return w


def forward(w, dense, cat):
    """Logits [n, 1] and what backward needs (float64 throughout)."""
    k = cat.shape[1]
    x = np.concatenate([dense] + [w[f"deep.emb_{i}.weight"][cat[:, i]] for i in range(k)], axis=1)
    pre = x @ w["deep.fc1.weight"].T + w["deep.fc1.bias"]
    h = np.maximum(pre, 0.0)
    z = h @ w["deep.out.weight"].T + w["deep.out.bias"]
    z = z + dense @ w["wide.linear.weight"].T + w["wide.linear.bias"]
    for i in range(k):
        z = z + w[f"wide.emb_{i}.weight"][cat[:, i]]
    return z, (dense, cat, x, pre, h)


def backward(w, cache, dz):
    """Gradients of the loss given dz = dloss/dlogit [n, 1]."""
    dense, cat, x, pre, h = cache
    k, d = cat.shape[1], dense.shape[1]
    g = {name: np.zeros_like(v) for name, v in w.items()}
    g["deep.out.weight"] = dz.T @ h
    g["deep.out.bias"] = dz.sum(axis=0)
    dpre = (dz @ w["deep.out.weight"]) * (pre > 0)
    g["deep.fc1.weight"] = dpre.T @ x
    g["deep.fc1.bias"] = dpre.sum(axis=0)
    dx = dpre @ w["deep.fc1.weight"]
    g["wide.linear.weight"] = dz.T @ dense
    g["wide.linear.bias"] = dz.sum(axis=0)
    for i in range(k):
        np.add.at(g[f"deep.emb_{i}.weight"], cat[:, i], dx[:, d + i * EMB: d + (i + 1) * EMB])
        np.add.at(g[f"wide.emb_{i}.weight"], cat[:, i], dz)
    return g


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logloss(p, y):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def auc(scores, labels):
    """Mann-Whitney AUC, ties counting one half (as scorer's metrics.AUC)."""
    _, inv, counts = np.unique(scores, return_inverse=True, return_counts=True)
    rank = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]  # 1-based, ties averaged
    pos = labels >= 0.5
    npos, nneg = int(pos.sum()), int((~pos).sum())
    return float((rank[pos].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def train(rng, w, dense, cat, y, val):
    """Adam (PyTorch's update: bias-corrected, eps outside the root) on the
    mean binary cross-entropy, minibatches of BATCH rows reshuffled every
    epoch, EPOCHS epochs, the last one kept; dense embedding gradients, as
    nn.Embedding(sparse=False) gives Adam."""
    m = {n: np.zeros_like(v) for n, v in w.items()}
    v2 = {n: np.zeros_like(v) for n, v in w.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0
    n = len(y)
    for epoch in range(1, EPOCHS + 1):
        perm = rng.permutation(n)
        for lo in range(0, n, BATCH):
            b = perm[lo:lo + BATCH]
            z, cache = forward(w, dense[b], cat[b])
            dz = (sigmoid(z) - y[b][:, None]) / len(b)
            g = backward(w, cache, dz)
            step += 1
            for name in w:
                m[name] = b1 * m[name] + (1 - b1) * g[name]
                v2[name] = b2 * v2[name] + (1 - b2) * g[name] ** 2
                mhat = m[name] / (1 - b1 ** step)
                vhat = v2[name] / (1 - b2 ** step)
                w[name] = w[name] - LR * mhat / (np.sqrt(vhat) + eps)
        pt = sigmoid(forward(w, dense, cat)[0][:, 0])
        pv = sigmoid(forward(w, val[0], val[1])[0][:, 0])
        log(f"epoch {epoch}: train log loss {logloss(pt, y):.4f} AUC {auc(pt, y):.4f}; "
            f"validation log loss {logloss(pv, val[2]):.4f} AUC {auc(pv, val[2]):.4f}")
    return w


# The export: what torch.onnx.export(model, (dense, cat), opset_version=17,
# input_names=["dense", "cat"], output_names=["click_prob"],
# dynamic_axes={"dense": {0: "batch"}, "cat": {0: "batch"},
# "click_prob": {0: "batch"}}) writes for WideDeep ------------------------------


def export(w, d, k, doc):
    nodes = torch_wide_deep_nodes(k, ["fc1", "out"], "click_prob")

    graph = helper.make_graph(
        nodes, "main_graph",
        [value_info("dense", TensorProto.FLOAT, ["batch", d]), value_info("cat", TensorProto.INT64, ["batch", k])],
        [value_info("click_prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    model = model_of(graph, OPSET, IR_TORCH, doc)
    onnx.checker.check_model(model, full_check=True)
    return model


# Writing ----------------------------------------------------------------------


def stats_yaml(spec, stats):
    """features.Stats as YAML, features in spec order; floats as Python's
    shortest repr, which Go's YAML decoder reads back as the same float64."""
    lines = [
        "# Statistics of the pipeline that trained ctr-pytorch.onnx (make_demo.py),",
        f"# fitted on the training rows of {TRAIN_MONTH} (the validation rows left out):",
        "# per standardized numeric feature the mean and population standard deviation",
        "# after fill, clip and log1p; per vocabulary feature its values, most",
        "# frequent first, ties by value (index = 1 + position, 0 = missing or unknown).",
        "# For scorer import onnx --stats (features.Stats; docs/features.md).",
        "numeric:",
    ]
    for f in spec["features"]:
        if f["name"] in stats["numeric"]:
            st = stats["numeric"][f["name"]]
            lines.append(f"  {f['name']}: {{mean: {st['mean']!r}, std: {st['std']!r}}}")
    lines.append("vocab:")
    for f in spec["features"]:
        if f["name"] in stats["vocab"]:
            values = stats["vocab"][f["name"]]
            lines.append(f"  {f['name']}: [{', '.join(json.dumps(v) for v in values)}]")
    return ("\n".join(lines) + "\n").encode()


def reference(w32, dense, cat):
    """The exported model's forward pass in float64 from its float32 weights."""
    w = {n: v.astype(np.float64) for n, v in w32.items()}
    return sigmoid(forward(w, dense.astype(np.float64), cat)[0])


def write_set(work, name, dense, cat, labels, ref):
    files = {}
    for part, a in (("dense", f32(dense)), ("cat", np.ascontiguousarray(cat, dtype="<i8")),
                    ("labels", np.ascontiguousarray(labels, dtype=np.uint8)),
                    ("reference", np.ascontiguousarray(ref[:, 0], dtype="<f8"))):
        files[part] = f"{name}.{part}.bin"
        write_atomic(os.path.join(work, files[part]), a.astype(a.dtype.newbyteorder("<")).tobytes())
    return dict(name=name, rows=len(labels), **files)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: make_demo.py STORE_DIR OUT_DIR WORK_DIR")
    store, out_dir, work = sys.argv[1:]
    spec = load_spec(os.path.join(out_dir, "features.yaml"))
    names = [f["name"] for f in spec["features"]]
    d = sum(f["kind"] == "numeric" for f in spec["features"])

    # Training month: the latest VAL_FRACTION of the rows by served_at (ties
    # in file order) are the validation rows. The statistics are fitted on
    # the training rows only.
    aug = read_month(store, TRAIN_MONTH, spec)
    times = aug[TIME_COLUMN]
    if any(t is None for t in times):
        sys.exit(f"make_demo: {TRAIN_MONTH}: rows without {TIME_COLUMN}")
    order = sorted(range(len(times)), key=lambda i: times[i])  # stable
    n_val = int(round(VAL_FRACTION * len(order)))
    tr, va = take(aug, order[:-n_val]), take(aug, order[-n_val:])
    stats = fit(spec, tr)
    cards = [cardinality(f, stats) for f in spec["features"] if f["kind"] != "numeric"]
    cat_names = [f["name"] for f in spec["features"] if f["kind"] != "numeric"]
    dtr, ctr, _ = transform(spec, stats, tr)
    dva, cva, _ = transform(spec, stats, va)
    log(f"{TRAIN_MONTH}: {len(order)} rows, {len(tr['label'])} training, {n_val} validation "
        f"(from {min(va[TIME_COLUMN]).isoformat()}); click rate {tr['label'].mean():.4f}")
    log(f"features: dense {d} ({', '.join(names[:d])}), cat {len(cards)} "
        f"({', '.join(f'{n} {c}' for n, c in zip(cat_names, cards))})")
    for name, st in stats["numeric"].items():
        log(f"  {name}: mean {st['mean']:.6g}, std {st['std']:.6g}")
    for name, values in stats["vocab"].items():
        log(f"  {name}: vocabulary of {len(values)}: {' '.join(values[:12])}{' ...' if len(values) > 12 else ''}")
    assert (ctr < np.array(cards)).all() and (ctr >= 0).all()

    rng = np.random.RandomState(SEED)
    w = train(rng, init(rng, d, cards), dtr.astype(np.float64), ctr, tr["label"],
              (dva.astype(np.float64), cva, va["label"]))
    w32 = {n: f32(v) for n, v in w.items()}

    # The month to score, every row in file order (the expected rows first).
    sep = read_month(store, SCORE_MONTH, spec)
    if sep["files"][0][0] != EXPECTED_FILE or sep["files"][0][1] < EXPECTED_ROWS:
        sys.exit(f"make_demo: {SCORE_MONTH}: the first file is not {EXPECTED_FILE} of at least {EXPECTED_ROWS} rows")
    dsep, csep, notes_all = transform(spec, stats, sep)
    _, _, notes = transform(spec, stats, take(sep, range(EXPECTED_ROWS)))
    assert (csep < np.array(cards)).all() and (csep >= 0).all()
    for what, nt in ((f"{SCORE_MONTH}", notes_all), (f"the first {EXPECTED_ROWS} rows", notes)):
        odd = [f"{n} {k} {c}" for n, x in nt.items() for k, c in x.items() if c]
        log(f"{what}: {', '.join(odd) or 'no missing or unknown values'}")
    if not any(x["missing"] for x in notes.values()):
        sys.exit(f"make_demo: no missing value in the first {EXPECTED_ROWS} rows of {EXPECTED_FILE}")

    doc = ("scorer demo model: a wide & deep CTR model trained in numpy on the demo store's 2020-08 "
           "(internal/tools/onnxfixtures/make_demo.py) and written as torch.onnx.export writes a PyTorch "
           "nn.Module with one nn.Embedding per categorical feature (inputs from testdata/onnx/features.yaml)")
    model = export(w32, d, len(cards), doc)
    data = model.SerializeToString()
    # The weights read back from the bytes are the float32 weights, bit for bit.
    back = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(data).graph.initializer}
    assert list(back) == list(w32) and all(back[n].tobytes() == w32[n].tobytes() for n in w32)

    write_atomic(os.path.join(out_dir, "stats.yaml"), stats_yaml(spec, stats))
    write_atomic(os.path.join(out_dir, f"{MODEL}.onnx"), data)
    log(f"{MODEL}.onnx: opset {OPSET}, IR {IR_TORCH}, {len(model.graph.node)} nodes, {len(data)} bytes, "
        f"checked by onnx {onnx.__version__}")

    # In the order of the keys of the expected JSON: the month, then validation.
    sets = [
        write_set(work, f"auc_{SCORE_MONTH.replace('-', '_')}", dsep, csep, sep["label"], reference(w32, dsep, csep)),
        write_set(work, "val_auc", dva, cva, va["label"], reference(w32, dva, cva)),
    ]
    manifest = {
        "model": f"{MODEL}.onnx",
        "inputs": [{"name": "dense", "dtype": "float32", "width": d},
                   {"name": "cat", "dtype": "int64", "width": len(cards)}],
        "output": "click_prob",
        "sets": sets,
        "expected": {"out": f"{MODEL}.expected.json", "file": EXPECTED_FILE, "set": sets[0]["name"],
                     "ad_ids": sep["ids"][:EXPECTED_ROWS]},
    }
    write_atomic(os.path.join(work, "demo.json"), json.dumps(manifest).encode())


if __name__ == "__main__":
    main()
