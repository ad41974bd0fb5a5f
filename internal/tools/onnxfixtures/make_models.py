#!/usr/bin/python3
"""Writes the ONNX parity fixtures of scoring/onnx (see README.md):

    make_models.py OUT_DIR SPEC_DIR

For each model NAME: OUT_DIR/NAME.onnx, and SPEC_DIR/NAME.json with what
ort_outputs.js needs to write OUT_DIR/NAME.json: the fixture's metadata and
inputs, the expected output names, dtypes and shapes, and this script's own
float64 numpy forward pass of the model ("reference"), which ort_outputs.js
checks ONNX Runtime's outputs against.

Deterministic: fixed seeds, numpy's legacy RandomState (its streams are
frozen across numpy versions), no timestamps in the models. Run with Debian's
/usr/bin/python3 (python3-onnx 1.12, python3-numpy).
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROWS = 64
CARDS = [7, 11, 5]  # valid ids per categorical column: 0..card-1
EMB = 4  # embedding width
DENSE = 4  # dense features

# The operators the fixtures must cover between them (the Go importer's list).
OPS = [
    "Gather", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Concat", "Reshape",
    "Flatten", "Squeeze", "Unsqueeze", "ReduceSum", "ReduceMean", "Constant", "Identity", "Cast",
    "Shape", "BatchNormalization", "Dropout", "LeakyRelu", "Elu", "HardSigmoid", "Softplus", "Log", "Abs",
    "Sqrt", "Exp", "Neg", "Erf", "Clip", "Slice", "Transpose", "Softmax", "Pow",
]

# IR versions: what the exporter writes (torch.onnx.export of torch 2.x: IR
# 8 whatever the opset; tf2onnx: IR 7 for opset 13), else the IR version of
# the ONNX release that introduced the opset (onnx/docs/Versioning.md: opset
# 18 came with ONNX 1.13, IR 8; opset 21 with ONNX 1.16, IR 10). ONNX Runtime
# 1.30 reads them all (it takes IR 7 to 12 for any of these opsets).
IR_TORCH, IR_TF2ONNX_13, IR_OPSET_18, IR_OPSET_21 = 8, 7, 8, 10

# The onnx 1.12 checker knows opsets up to 17 (ONNX 1.12). Models of newer
# opsets are not checked here: ONNX Runtime 1.30 loading and running them in
# ort_outputs.js is their check.
CHECKER_MAX_OPSET = 17


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def i64(a):
    return np.ascontiguousarray(a, dtype=np.int64)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def round_sig(x, digits=3):
    """x rounded to `digits` significant decimal digits (readable fixtures)."""
    return np.array([float(f"{v:.{digits}g}") for v in x.ravel()]).reshape(x.shape)


def dense_data(rng, rows, cols):
    """float32 [rows, cols]: zeros, small values, values up to +-10 and larger
    ones up to ~100, both signs; every column has a zero, a negative value
    and one above 50."""
    kind = rng.choice(4, size=(rows, cols), p=[0.15, 0.35, 0.3, 0.2])
    small = rng.normal(0.0, 1.0, size=(rows, cols))
    mid = rng.uniform(-10.0, 10.0, size=(rows, cols))
    big = rng.uniform(10.0, 100.0, size=(rows, cols)) * rng.choice([-1.0, 1.0], size=(rows, cols), p=[0.25, 0.75])
    x = np.where(kind == 0, 0.0, np.where(kind == 1, small, np.where(kind == 2, mid, big)))
    for c in range(cols):
        r = rng.permutation(rows)[:3]
        x[r[0], c] = 0.0
        x[r[1], c] = -abs(x[r[1], c]) if x[r[1], c] != 0 else -1.5
        x[r[2], c] = rng.uniform(50.0, 100.0)
    x = f32(round_sig(x))
    for c in range(cols):
        col = x[:, c]
        assert (col == 0).any() and (col < 0).any() and (col > 50).any() and (abs(col) <= 100).all()
    return x


def cat_data(rng, rows, cards, dtype=np.int64):
    """[rows, len(cards)] ids; column c holds 0 and cards[c]-1 at least once."""
    x = np.stack([rng.randint(0, card, size=rows) for card in cards], axis=1)
    for c, card in enumerate(cards):
        r = rng.permutation(rows)[:2]
        x[r[0], c] = 0
        x[r[1], c] = card - 1
        assert x[:, c].min() == 0 and x[:, c].max() == card - 1
    return np.ascontiguousarray(x, dtype=dtype)


def normal(rng, shape, scale):
    return f32(rng.normal(0.0, 1.0, size=shape) * scale)


def center(w, bias, logit):
    """Shifts the output bias w[bias] so that the median logit over the
    fixture's rows is 0: random weights, scores around 0.5."""
    w[bias] = f32(w[bias] - np.median(logit))


def offsets(cards):
    return i64(np.concatenate([[0], np.cumsum(cards)[:-1]]))


def const_node(name, array):
    """A Constant node (value attribute) named as PyTorch names them."""
    return helper.make_node("Constant", [], [f"{name}_output_0"], name=name, value=numpy_helper.from_array(array))


def torch_wide_deep_nodes(k, layers, output):
    """The nodes torch.onnx.export writes for a wide & deep module with one
    nn.Embedding per feature (deep.emb_i, wide.emb_i), inputs dense and cat:
    cat[:, i] per feature, the deep part Concat([dense, embeddings]) then
    the layers (Gemm transB=1, Relu between), the wide part a Gemm over
    dense plus the per-feature wide weights, their sum, Sigmoid -> output."""

    def ids(i):  # the output of cat[:, i]
        return f"/Gather{'' if i == 0 else f'_{i}'}_output_0"

    nodes = []
    for i in range(k):
        suffix = "" if i == 0 else f"_{i}"
        nodes.append(const_node(f"/Constant{suffix}", np.array(i, dtype=np.int64)))
        nodes.append(helper.make_node(
            "Gather", ["cat", f"/Constant{suffix}_output_0"], [ids(i)], name=f"/Gather{suffix}", axis=1))
    # Deep. nn.Embedding exports as Gather(weight, ids) without an axis
    # attribute (the default, 0), as torch writes it.
    for i in range(k):
        nodes.append(helper.make_node(
            "Gather", [f"deep.emb_{i}.weight", ids(i)], [f"/deep/emb_{i}/Gather_output_0"], name=f"/deep/emb_{i}/Gather"))
    nodes.append(helper.make_node(
        "Concat", ["dense"] + [f"/deep/emb_{i}/Gather_output_0" for i in range(k)], ["/deep/Concat_output_0"],
        name="/deep/Concat", axis=1))
    h = "/deep/Concat_output_0"
    for j, layer in enumerate(layers):
        nodes.append(helper.make_node(
            "Gemm", [h, f"deep.{layer}.weight", f"deep.{layer}.bias"], [f"/deep/{layer}/Gemm_output_0"],
            name=f"/deep/{layer}/Gemm", alpha=1.0, beta=1.0, transB=1))
        h = f"/deep/{layer}/Gemm_output_0"
        if j < len(layers) - 1:
            relu = "/deep/Relu" + ("" if j == 0 else f"_{j}")
            nodes.append(helper.make_node("Relu", [h], [f"{relu}_output_0"], name=relu))
            h = f"{relu}_output_0"
    # Wide.
    nodes.append(helper.make_node(
        "Gemm", ["dense", "wide.linear.weight", "wide.linear.bias"], ["/wide/linear/Gemm_output_0"],
        name="/wide/linear/Gemm", alpha=1.0, beta=1.0, transB=1))
    acc = "/wide/linear/Gemm_output_0"
    for i in range(k):
        nodes.append(helper.make_node(
            "Gather", [f"wide.emb_{i}.weight", ids(i)], [f"/wide/emb_{i}/Gather_output_0"], name=f"/wide/emb_{i}/Gather"))
        add = "/wide/Add" + ("" if i == 0 else f"_{i}")
        nodes.append(helper.make_node("Add", [acc, f"/wide/emb_{i}/Gather_output_0"], [f"{add}_output_0"], name=add))
        acc = f"{add}_output_0"
    nodes.append(helper.make_node("Add", [h, acc], ["/Add_output_0"], name="/Add"))
    nodes.append(helper.make_node("Sigmoid", ["/Add_output_0"], [output], name="/Sigmoid"))
    return nodes


def value_info(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model_of(graph, opset, ir, doc):
    m = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="scorer onnxfixtures",
        producer_version="1",
        doc_string=doc,
    )
    m.ir_version = ir
    return m


# 1. pytorch_wide_deep ------------------------------------------------------


def pytorch_wide_deep(rng):
    """torch.onnx.export(opset_version=17, dynamic_axes={...: {0: "batch"}}) of

    class Deep(nn.Module):   emb_0..emb_2 = nn.Embedding(card_i, 4);
                             fc1 = Linear(16, 8); fc2 = Linear(8, 4); out = Linear(4, 1)
        forward(dense, ids): x = cat([dense, emb_0(ids[0]), ...], 1)
                             return out(relu(fc2(relu(fc1(x)))))
    class Wide(nn.Module):   linear = Linear(4, 1); emb_0..emb_2 = nn.Embedding(card_i, 1)
        forward(dense, ids): return linear(dense) + emb_0(ids[0]) + emb_1(ids[1]) + emb_2(ids[2])
    class WideDeep(nn.Module):
        forward(dense, cat): ids = [cat[:, i] for i in range(3)]
                             return sigmoid(deep(dense, ids) + wide(dense, ids))
    """
    k = len(CARDS)
    dense = dense_data(rng, ROWS, DENSE)
    cat = cat_data(rng, ROWS, CARDS)
    w = {}
    for i, card in enumerate(CARDS):
        w[f"deep.emb_{i}.weight"] = normal(rng, (card, EMB), 1.0)
    # fc1's columns: the 4 dense features (values up to ~100) get small weights.
    w["deep.fc1.weight"] = normal(rng, (8, DENSE + k * EMB), 1.0) * f32(
        np.concatenate([np.full(DENSE, 0.01), np.full(k * EMB, 0.4)]))
    w["deep.fc1.bias"] = normal(rng, (8,), 0.1)
    w["deep.fc2.weight"] = normal(rng, (4, 8), 0.5)
    w["deep.fc2.bias"] = normal(rng, (4,), 0.1)
    w["deep.out.weight"] = normal(rng, (1, 4), 1.0)
    w["deep.out.bias"] = normal(rng, (1,), 0.1)
    w["wide.linear.weight"] = normal(rng, (1, DENSE), 0.01)
    w["wide.linear.bias"] = normal(rng, (1,), 0.1)
    for i, card in enumerate(CARDS):
        w[f"wide.emb_{i}.weight"] = normal(rng, (card, 1), 0.5)

    def logit(dense, cat):
        d = dense.astype(np.float64)
        W = {n: v.astype(np.float64) for n, v in w.items()}
        x = np.concatenate([d] + [W[f"deep.emb_{i}.weight"][cat[:, i]] for i in range(k)], axis=1)
        x = np.maximum(x @ W["deep.fc1.weight"].T + W["deep.fc1.bias"], 0)
        x = np.maximum(x @ W["deep.fc2.weight"].T + W["deep.fc2.bias"], 0)
        deep = x @ W["deep.out.weight"].T + W["deep.out.bias"]
        wide = d @ W["wide.linear.weight"].T + W["wide.linear.bias"]
        for i in range(k):
            wide = wide + W[f"wide.emb_{i}.weight"][cat[:, i]]
        return deep + wide

    center(w, "deep.out.bias", logit(dense, cat))

    nodes = torch_wide_deep_nodes(k, ["fc1", "fc2", "out"], "prob")


    graph = helper.make_graph(
        nodes, "main_graph",
        [value_info("dense", TensorProto.FLOAT, ["batch", DENSE]), value_info("cat", TensorProto.INT64, ["batch", k])],
        [value_info("prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=17, ir=IR_TORCH, style="pytorch",
        description="torch.onnx.export of a wide & deep CTR model, one nn.Embedding per feature: "
        "Gather(cat, Constant i, axis=1) per feature, Concat([dense, embeddings]), Gemm(transB=1)+Relu, "
        "wide Gemm plus [card,1] tables, Add, Sigmoid",
        graph=graph, inputs=[("dense", dense), ("cat", cat)], outputs=[("prob", "float32", [ROWS, 1])],
        cardinalities={"cat": CARDS}, reference={"prob": sigmoid(logit(dense, cat))})


# 2. pytorch_mlp_stacked ----------------------------------------------------


def pytorch_mlp_stacked(rng):
    """torch.onnx.export(opset_version=13, dynamic_axes={...: {0: "batch"}})
    of an MLP over one stacked embedding table with per-feature offsets
    (torchrec / DLRM style):

        offsets = buffer([0, 7, 18]); emb = nn.Embedding(23, 4)
        fc1 = Linear(16, 8); fc2 = Linear(8, 1)
        forward(dense, cat): e = torch.flatten(emb(cat + offsets), 1)
                             return sigmoid(fc2(relu(fc1(cat([dense, e], 1)))))
    """
    k = len(CARDS)
    dense = dense_data(rng, ROWS, DENSE)
    cat = cat_data(rng, ROWS, CARDS)
    w = {
        "offsets": offsets(CARDS),
        "emb.weight": normal(rng, (sum(CARDS), EMB), 1.0),
        "fc1.weight": normal(rng, (8, DENSE + k * EMB), 1.0)
        * f32(np.concatenate([np.full(DENSE, 0.01), np.full(k * EMB, 0.4)])),
        "fc1.bias": normal(rng, (8,), 0.1),
        "fc2.weight": normal(rng, (1, 8), 0.35),
        "fc2.bias": normal(rng, (1,), 0.1),
    }

    def logit(dense, cat):
        W = {n: v.astype(np.float64) for n, v in w.items() if n != "offsets"}
        e = W["emb.weight"][cat + w["offsets"]].reshape(len(cat), -1)
        x = np.concatenate([dense.astype(np.float64), e], axis=1)
        x = np.maximum(x @ W["fc1.weight"].T + W["fc1.bias"], 0)
        return x @ W["fc2.weight"].T + W["fc2.bias"]

    center(w, "fc2.bias", logit(dense, cat))
    nodes = [
        helper.make_node("Add", ["cat", "offsets"], ["/Add_output_0"], name="/Add"),
        helper.make_node("Gather", ["emb.weight", "/Add_output_0"], ["/emb/Gather_output_0"], name="/emb/Gather"),
        helper.make_node("Flatten", ["/emb/Gather_output_0"], ["/Flatten_output_0"], name="/Flatten", axis=1),
        helper.make_node("Concat", ["dense", "/Flatten_output_0"], ["/Concat_output_0"], name="/Concat", axis=1),
        helper.make_node("Gemm", ["/Concat_output_0", "fc1.weight", "fc1.bias"], ["/fc1/Gemm_output_0"],
                         name="/fc1/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Relu", ["/fc1/Gemm_output_0"], ["/Relu_output_0"], name="/Relu"),
        helper.make_node("Gemm", ["/Relu_output_0", "fc2.weight", "fc2.bias"], ["/fc2/Gemm_output_0"],
                         name="/fc2/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Sigmoid", ["/fc2/Gemm_output_0"], ["prob"], name="/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [value_info("dense", TensorProto.FLOAT, ["batch", DENSE]), value_info("cat", TensorProto.INT64, ["batch", k])],
        [value_info("prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=13, ir=IR_TORCH, style="pytorch",
        description="torch.onnx.export of an MLP over one stacked embedding table: Add(cat, offsets), "
        "Gather -> [batch,3,4], Flatten(axis=1), Concat([dense, flat]), Gemm(transB=1)+Relu, Gemm, Sigmoid",
        graph=graph, inputs=[("dense", dense), ("cat", cat)], outputs=[("prob", "float32", [ROWS, 1])],
        cardinalities={"cat": CARDS}, reference={"prob": sigmoid(logit(dense, cat))})


# 2b. pytorch_bn_view -------------------------------------------------------


def pytorch_bn_view(rng):
    """torch.onnx.export(opset_version=17, dynamic_axes={...: {0: "batch"}}),
    model.eval(), of an MLP with the idioms exporters keep: the flatten
    written as e.view(e.size(0), -1) (Shape, Gather, Unsqueeze, Concat,
    Reshape), BatchNorm1d after the first layer (BatchNormalization with its
    running statistics), and Dropout (an inference Dropout node, ratio 0.2):

        emb = nn.Embedding(23, 4); fc1 = Linear(16, 8); bn = BatchNorm1d(8)
        fc2 = Linear(8, 1); drop = Dropout(0.2)
        forward(dense, cat): e = emb(cat + offsets); e = e.view(e.size(0), -1)
                             h = drop(relu(bn(fc1(cat([dense, e], 1)))))
                             return sigmoid(fc2(h))
    """
    k = len(CARDS)
    dense = dense_data(rng, ROWS, DENSE)
    cat = cat_data(rng, ROWS, CARDS)
    w = {
        "offsets": offsets(CARDS),
        "emb.weight": normal(rng, (sum(CARDS), EMB), 1.0),
        "fc1.weight": normal(rng, (8, DENSE + k * EMB), 1.0)
        * f32(np.concatenate([np.full(DENSE, 0.01), np.full(k * EMB, 0.4)])),
        "fc1.bias": normal(rng, (8,), 0.1),
        "bn.weight": f32(1.0 + 0.2 * rng.normal(size=8)),
        "bn.bias": normal(rng, (8,), 0.1),
        "bn.running_mean": normal(rng, (8,), 0.3),
        "bn.running_var": f32(0.5 + rng.uniform(size=8)),
        "fc2.weight": normal(rng, (1, 8), 1.2),
        "fc2.bias": normal(rng, (1,), 0.1),
    }
    eps = 1e-5

    def logit(dense, cat):
        W = {n: v.astype(np.float64) for n, v in w.items() if n != "offsets"}
        e = W["emb.weight"][cat + w["offsets"]].reshape(len(cat), -1)
        x = np.concatenate([dense.astype(np.float64), e], axis=1)
        z = x @ W["fc1.weight"].T + W["fc1.bias"]
        z = (z - W["bn.running_mean"]) / np.sqrt(W["bn.running_var"] + eps) * W["bn.weight"] + W["bn.bias"]
        return np.maximum(z, 0) @ W["fc2.weight"].T + W["fc2.bias"]

    center(w, "fc2.bias", logit(dense, cat))
    nodes = [
        helper.make_node("Add", ["cat", "offsets"], ["/Add_output_0"], name="/Add"),
        helper.make_node("Gather", ["emb.weight", "/Add_output_0"], ["/emb/Gather_output_0"], name="/emb/Gather"),
        helper.make_node("Shape", ["/emb/Gather_output_0"], ["/Shape_output_0"], name="/Shape"),
        const_node("/Constant", np.array(0, dtype=np.int64)),
        helper.make_node("Gather", ["/Shape_output_0", "/Constant_output_0"], ["/Gather_output_0"], name="/Gather", axis=0),
        const_node("/Constant_1", i64([0])),
        helper.make_node("Unsqueeze", ["/Gather_output_0", "/Constant_1_output_0"], ["/Unsqueeze_output_0"], name="/Unsqueeze"),
        const_node("/Constant_2", i64([-1])),
        helper.make_node("Concat", ["/Unsqueeze_output_0", "/Constant_2_output_0"], ["/Concat_output_0"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["/emb/Gather_output_0", "/Concat_output_0"], ["/Reshape_output_0"], name="/Reshape"),
        helper.make_node("Concat", ["dense", "/Reshape_output_0"], ["/Concat_1_output_0"], name="/Concat_1", axis=1),
        helper.make_node("Gemm", ["/Concat_1_output_0", "fc1.weight", "fc1.bias"], ["/fc1/Gemm_output_0"],
                         name="/fc1/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("BatchNormalization",
                         ["/fc1/Gemm_output_0", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                         ["/bn/BatchNormalization_output_0"], name="/bn/BatchNormalization", epsilon=eps, momentum=0.9),
        helper.make_node("Relu", ["/bn/BatchNormalization_output_0"], ["/Relu_output_0"], name="/Relu"),
        const_node("/drop/Constant", np.array(0.2, dtype=np.float32)),
        helper.make_node("Dropout", ["/Relu_output_0", "/drop/Constant_output_0"], ["/drop/Dropout_output_0"], name="/drop/Dropout"),
        helper.make_node("Gemm", ["/drop/Dropout_output_0", "fc2.weight", "fc2.bias"], ["/fc2/Gemm_output_0"],
                         name="/fc2/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Sigmoid", ["/fc2/Gemm_output_0"], ["prob"], name="/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [value_info("dense", TensorProto.FLOAT, ["batch", DENSE]), value_info("cat", TensorProto.INT64, ["batch", k])],
        [value_info("prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=17, ir=IR_TORCH, style="pytorch",
        description="torch.onnx.export (eval) of an MLP with e.view(e.size(0), -1) (Shape, Gather, Unsqueeze, "
        "Concat, Reshape), BatchNormalization after the first Gemm, Relu, Dropout, Gemm, Sigmoid",
        graph=graph, inputs=[("dense", dense), ("cat", cat)], outputs=[("prob", "float32", [ROWS, 1])],
        cardinalities={"cat": CARDS}, reference={"prob": sigmoid(logit(dense, cat))})


# 2c. dlrm and deepfm: the interaction layers of canonical CTR models --------


def dlrm(rng):
    """torch.onnx.export(opset_version=17) of a small DLRM (Naumov et al.
    2019): a bottom MLP on the dense features, a stacked embedding table,
    and the dot interaction of every pair of feature vectors:

        d = relu(bot(dense)); e = emb(cat + offsets)              [b,4], [b,3,4]
        T = cat([d.unsqueeze(1), e], 1); Z = bmm(T, T.transpose(1, 2))
        pairs = Z.flatten(1)[:, li * 4 + lj] (li > lj)          [b,6]
        prob = sigmoid(top2(relu(top1(cat([d, pairs], 1)))))
    """
    k = len(CARDS)
    dense = dense_data(rng, ROWS, DENSE)
    cat = cat_data(rng, ROWS, CARDS)
    li, lj = np.tril_indices(k + 1, -1)
    pair_idx = i64(li * (k + 1) + lj)
    w = {
        "offsets": offsets(CARDS),
        "emb.weight": normal(rng, (sum(CARDS), EMB), 0.3),
        "bot.weight": normal(rng, (EMB, DENSE), 0.01),
        "bot.bias": normal(rng, (EMB,), 0.3),
        "pairs": pair_idx,
        "top1.weight": normal(rng, (8, EMB + len(pair_idx)), 0.2),
        "top1.bias": normal(rng, (8,), 0.1),
        "top2.weight": normal(rng, (1, 8), 2.5),
        "top2.bias": normal(rng, (1,), 0.1),
        "axes_1": i64([1]),
    }

    def logit(dense, cat):
        W = {n: v.astype(np.float64) for n, v in w.items() if v.dtype == np.float32}
        d = np.maximum(dense.astype(np.float64) @ W["bot.weight"].T + W["bot.bias"], 0)
        e = W["emb.weight"][cat + w["offsets"]]
        T = np.concatenate([d[:, None, :], e], axis=1)
        Z = T @ T.transpose(0, 2, 1)
        pairs = Z.reshape(len(T), -1)[:, pair_idx]
        x = np.maximum(np.concatenate([d, pairs], axis=1) @ W["top1.weight"].T + W["top1.bias"], 0)
        return x @ W["top2.weight"].T + W["top2.bias"]

    center(w, "top2.bias", logit(dense, cat))
    gemm = lambda x, wn, y, name: helper.make_node(  # noqa: E731
        "Gemm", [x, f"{wn}.weight", f"{wn}.bias"], [y], name=name, alpha=1.0, beta=1.0, transB=1)
    nodes = [
        gemm("dense", "bot", "/bot/Gemm_output_0", "/bot/Gemm"),
        helper.make_node("Relu", ["/bot/Gemm_output_0"], ["/bot/Relu_output_0"], name="/bot/Relu"),
        helper.make_node("Add", ["cat", "offsets"], ["/Add_output_0"], name="/Add"),
        helper.make_node("Gather", ["emb.weight", "/Add_output_0"], ["/emb/Gather_output_0"], name="/emb/Gather"),
        helper.make_node("Unsqueeze", ["/bot/Relu_output_0", "axes_1"], ["/Unsqueeze_output_0"], name="/Unsqueeze"),
        helper.make_node("Concat", ["/Unsqueeze_output_0", "/emb/Gather_output_0"], ["/Concat_output_0"], name="/Concat", axis=1),
        helper.make_node("Transpose", ["/Concat_output_0"], ["/Transpose_output_0"], name="/Transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["/Concat_output_0", "/Transpose_output_0"], ["/MatMul_output_0"], name="/MatMul"),
        helper.make_node("Flatten", ["/MatMul_output_0"], ["/Flatten_output_0"], name="/Flatten", axis=1),
        helper.make_node("Gather", ["/Flatten_output_0", "pairs"], ["/Gather_output_0"], name="/Gather", axis=1),
        helper.make_node("Concat", ["/bot/Relu_output_0", "/Gather_output_0"], ["/Concat_1_output_0"], name="/Concat_1", axis=1),
        gemm("/Concat_1_output_0", "top1", "/top1/Gemm_output_0", "/top1/Gemm"),
        helper.make_node("Relu", ["/top1/Gemm_output_0"], ["/top1/Relu_output_0"], name="/top1/Relu"),
        gemm("/top1/Relu_output_0", "top2", "/top2/Gemm_output_0", "/top2/Gemm"),
        helper.make_node("Sigmoid", ["/top2/Gemm_output_0"], ["prob"], name="/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [value_info("dense", TensorProto.FLOAT, ["batch", DENSE]), value_info("cat", TensorProto.INT64, ["batch", k])],
        [value_info("prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=17, ir=IR_TORCH, style="pytorch",
        description="torch.onnx.export of a small DLRM: bottom MLP, stacked embeddings, dot interaction "
        "(Unsqueeze, Concat on axis 1, Transpose, MatMul of two batch tensors, Flatten, Gather of the "
        "lower triangle), top MLP, Sigmoid",
        graph=graph, inputs=[("dense", dense), ("cat", cat)], outputs=[("prob", "float32", [ROWS, 1])],
        cardinalities={"cat": CARDS}, reference={"prob": sigmoid(logit(dense, cat))})


def deepfm(rng):
    """torch.onnx.export(opset_version=13) of a small DeepFM (Guo et al.
    2017): first-order weights, the factorization machine's pairwise term
    0.5 * sum((sum_i e_i)^2 - sum_i e_i^2), and an MLP over the embeddings:

        e = emb(cat + offsets)                                    [b,3,4]
        fm = 0.5 * (e.sum(1) ** 2 - (e ** 2).sum(1)).sum(1, keepdim=True)
        first = lin(dense) + w1(cat + offsets).sum(1, keepdim=True)
        deep = fc2(relu(fc1(cat([dense, e.flatten(1)], 1))))
        prob = sigmoid(first + fm + deep)
    """
    k = len(CARDS)
    dense = dense_data(rng, ROWS, DENSE)
    cat = cat_data(rng, ROWS, CARDS)
    w = {
        "offsets": offsets(CARDS),
        "emb.weight": normal(rng, (sum(CARDS), EMB), 0.5),
        "w1.weight": normal(rng, (sum(CARDS),), 0.3),
        "lin.weight": normal(rng, (1, DENSE), 0.01),
        "lin.bias": normal(rng, (1,), 0.1),
        "fc1.weight": normal(rng, (8, DENSE + k * EMB), 1.0)
        * f32(np.concatenate([np.full(DENSE, 0.01), np.full(k * EMB, 0.4)])),
        "fc1.bias": normal(rng, (8,), 0.1),
        "fc2.weight": normal(rng, (1, 8), 0.35),
        "fc2.bias": normal(rng, (1,), 0.1),
        "axes_1": i64([1]),
        "two": f32(2.0),
        "half": f32(0.5),
    }

    def logit(dense, cat):
        W = {n: v.astype(np.float64) for n, v in w.items() if v.dtype == np.float32}
        idx = cat + w["offsets"]
        e = W["emb.weight"][idx]
        fm = 0.5 * (e.sum(1) ** 2 - (e ** 2).sum(1)).sum(1, keepdims=True)
        first = dense.astype(np.float64) @ W["lin.weight"].T + W["lin.bias"] + W["w1.weight"][idx].sum(1, keepdims=True)
        x = np.concatenate([dense.astype(np.float64), e.reshape(len(e), -1)], axis=1)
        deep = np.maximum(x @ W["fc1.weight"].T + W["fc1.bias"], 0) @ W["fc2.weight"].T + W["fc2.bias"]
        return first + fm + deep

    center(w, "fc2.bias", logit(dense, cat))
    gemm = lambda x, wn, y, name: helper.make_node(  # noqa: E731
        "Gemm", [x, f"{wn}.weight", f"{wn}.bias"], [y], name=name, alpha=1.0, beta=1.0, transB=1)
    nodes = [
        helper.make_node("Add", ["cat", "offsets"], ["/Add_output_0"], name="/Add"),
        helper.make_node("Gather", ["emb.weight", "/Add_output_0"], ["/emb/Gather_output_0"], name="/emb/Gather"),
        helper.make_node("ReduceSum", ["/emb/Gather_output_0", "axes_1"], ["/ReduceSum_output_0"], name="/ReduceSum", keepdims=0),
        helper.make_node("Pow", ["/ReduceSum_output_0", "two"], ["/Pow_output_0"], name="/Pow"),
        helper.make_node("Pow", ["/emb/Gather_output_0", "two"], ["/Pow_1_output_0"], name="/Pow_1"),
        helper.make_node("ReduceSum", ["/Pow_1_output_0", "axes_1"], ["/ReduceSum_1_output_0"], name="/ReduceSum_1", keepdims=0),
        helper.make_node("Sub", ["/Pow_output_0", "/ReduceSum_1_output_0"], ["/Sub_output_0"], name="/Sub"),
        helper.make_node("ReduceSum", ["/Sub_output_0", "axes_1"], ["/ReduceSum_2_output_0"], name="/ReduceSum_2", keepdims=1),
        helper.make_node("Mul", ["/ReduceSum_2_output_0", "half"], ["/Mul_output_0"], name="/Mul"),
        gemm("dense", "lin", "/lin/Gemm_output_0", "/lin/Gemm"),
        helper.make_node("Gather", ["w1.weight", "/Add_output_0"], ["/w1/Gather_output_0"], name="/w1/Gather"),
        helper.make_node("ReduceSum", ["/w1/Gather_output_0", "axes_1"], ["/ReduceSum_3_output_0"], name="/ReduceSum_3", keepdims=1),
        helper.make_node("Add", ["/lin/Gemm_output_0", "/ReduceSum_3_output_0"], ["/Add_1_output_0"], name="/Add_1"),
        helper.make_node("Flatten", ["/emb/Gather_output_0"], ["/Flatten_output_0"], name="/Flatten", axis=1),
        helper.make_node("Concat", ["dense", "/Flatten_output_0"], ["/Concat_output_0"], name="/Concat", axis=1),
        gemm("/Concat_output_0", "fc1", "/fc1/Gemm_output_0", "/fc1/Gemm"),
        helper.make_node("Relu", ["/fc1/Gemm_output_0"], ["/Relu_output_0"], name="/Relu"),
        gemm("/Relu_output_0", "fc2", "/fc2/Gemm_output_0", "/fc2/Gemm"),
        helper.make_node("Add", ["/Add_1_output_0", "/Mul_output_0"], ["/Add_2_output_0"], name="/Add_2"),
        helper.make_node("Add", ["/Add_2_output_0", "/fc2/Gemm_output_0"], ["/Add_3_output_0"], name="/Add_3"),
        helper.make_node("Sigmoid", ["/Add_3_output_0"], ["prob"], name="/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [value_info("dense", TensorProto.FLOAT, ["batch", DENSE]), value_info("cat", TensorProto.INT64, ["batch", k])],
        [value_info("prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=13, ir=IR_TORCH, style="pytorch",
        description="torch.onnx.export of a small DeepFM: first-order weights (Gemm + a 1-D table's lookups "
        "summed), the FM pairwise term (ReduceSum, Pow 2, Sub, Mul), an MLP over the flattened embeddings, Sigmoid",
        graph=graph, inputs=[("dense", dense), ("cat", cat)], outputs=[("prob", "float32", [ROWS, 1])],
        cardinalities={"cat": CARDS}, reference={"prob": sigmoid(logit(dense, cat))})


# 3. keras_mlp --------------------------------------------------------------


def keras_mlp(rng):
    """tf2onnx (opset 13) of a Keras functional model:

        dense = Input((4,), name="dense"); cat = Input((3,), dtype="int32", name="cat")
        e = Embedding(23, 4)(tf.cast(cat, "int64") + offsets)
        x = Concatenate()([Flatten()(e), dense])
        x = Dense(8, "relu")(x); y = Dense(1, "sigmoid")(x)
        output_0 = tf.squeeze(y, 1)
    """
    k = len(CARDS)
    p = "model/"
    dense = dense_data(rng, ROWS, DENSE)
    cat = cat_data(rng, ROWS, CARDS, dtype=np.int32)
    w = {
        p + "tf.__operators__.add/y:0": offsets(CARDS),
        p + "embedding/embedding_lookup/ReadVariableOp:0": normal(rng, (sum(CARDS), EMB), 1.0),
        p + "flatten/Const:0": i64([-1, k * EMB]),
        # MatMul weight [in, out]: rows 0..11 the embeddings, 12..15 the dense features.
        p + "dense/MatMul/ReadVariableOp:0": normal(rng, (k * EMB + DENSE, 8), 1.0)
        * f32(np.concatenate([np.full(k * EMB, 0.4), np.full(DENSE, 0.01)]))[:, None],
        p + "dense/BiasAdd/ReadVariableOp:0": normal(rng, (8,), 0.1),
        p + "dense_1/MatMul/ReadVariableOp:0": normal(rng, (8, 1), 0.5),
        p + "dense_1/BiasAdd/ReadVariableOp:0": normal(rng, (1,), 0.1),
        "const_axes__12": i64([1]),
    }

    def logit(dense, cat):
        W = {n: v.astype(np.float64) for n, v in w.items() if v.dtype == np.float32}
        idx = cat.astype(np.int64) + w[p + "tf.__operators__.add/y:0"]
        e = W[p + "embedding/embedding_lookup/ReadVariableOp:0"][idx].reshape(-1, k * EMB)
        x = np.concatenate([e, dense.astype(np.float64)], axis=-1)
        x = np.maximum(x @ W[p + "dense/MatMul/ReadVariableOp:0"] + W[p + "dense/BiasAdd/ReadVariableOp:0"], 0)
        return (x @ W[p + "dense_1/MatMul/ReadVariableOp:0"] + W[p + "dense_1/BiasAdd/ReadVariableOp:0"])[:, 0]

    center(w, p + "dense_1/BiasAdd/ReadVariableOp:0", logit(dense, cat))
    nodes = [
        helper.make_node("Cast", ["cat"], [p + "tf.cast/Cast:0"], name=p + "tf.cast/Cast", to=TensorProto.INT64),
        helper.make_node("Add", [p + "tf.cast/Cast:0", p + "tf.__operators__.add/y:0"],
                         [p + "tf.__operators__.add/AddV2:0"], name=p + "tf.__operators__.add/AddV2"),
        helper.make_node("Gather", [p + "embedding/embedding_lookup/ReadVariableOp:0", p + "tf.__operators__.add/AddV2:0"],
                         [p + "embedding/embedding_lookup:0"], name=p + "embedding/embedding_lookup", axis=0),
        helper.make_node("Reshape", [p + "embedding/embedding_lookup:0", p + "flatten/Const:0"],
                         [p + "flatten/Reshape:0"], name=p + "flatten/Reshape"),
        helper.make_node("Concat", [p + "flatten/Reshape:0", "dense"], [p + "concatenate/concat:0"],
                         name=p + "concatenate/concat", axis=-1),
        helper.make_node("MatMul", [p + "concatenate/concat:0", p + "dense/MatMul/ReadVariableOp:0"],
                         [p + "dense/MatMul:0"], name=p + "dense/MatMul"),
        helper.make_node("Add", [p + "dense/MatMul:0", p + "dense/BiasAdd/ReadVariableOp:0"],
                         [p + "dense/BiasAdd:0"], name=p + "dense/BiasAdd"),
        helper.make_node("Relu", [p + "dense/BiasAdd:0"], [p + "dense/Relu:0"], name=p + "dense/Relu"),
        helper.make_node("MatMul", [p + "dense/Relu:0", p + "dense_1/MatMul/ReadVariableOp:0"],
                         [p + "dense_1/MatMul:0"], name=p + "dense_1/MatMul"),
        helper.make_node("Add", [p + "dense_1/MatMul:0", p + "dense_1/BiasAdd/ReadVariableOp:0"],
                         [p + "dense_1/BiasAdd:0"], name=p + "dense_1/BiasAdd"),
        helper.make_node("Sigmoid", [p + "dense_1/BiasAdd:0"], [p + "dense_1/Sigmoid:0"], name=p + "dense_1/Sigmoid"),
        helper.make_node("Squeeze", [p + "dense_1/Sigmoid:0", "const_axes__12"], [p + "tf.compat.v1.squeeze/Squeeze:0"],
                         name=p + "tf.compat.v1.squeeze/Squeeze"),
        helper.make_node("Identity", [p + "tf.compat.v1.squeeze/Squeeze:0"], ["output_0"], name="Identity"),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx",
        [value_info("dense", TensorProto.FLOAT, ["unk__1", DENSE]), value_info("cat", TensorProto.INT32, ["unk__2", k])],
        [value_info("output_0", TensorProto.FLOAT, ["unk__3"])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=13, ir=IR_TF2ONNX_13, style="tf2onnx",
        description="tf2onnx of a Keras MLP: int32 cat, Cast to int64, Add offsets, Gather on a stacked table, "
        "Reshape [-1,12], Concat([embeddings, dense], axis=-1), MatMul+Add, Relu, MatMul+Add, Sigmoid, "
        "Squeeze(axes input), Identity",
        graph=graph, inputs=[("dense", dense), ("cat", cat)], outputs=[("output_0", "float32", [ROWS])],
        cardinalities={"cat": CARDS}, reference={"output_0": sigmoid(logit(dense, cat))})


# 4. ops_zoo ----------------------------------------------------------------


def ops_zoo(rng):
    """The operators the other fixtures do not use, on one float input x [batch, 6]:

        z = (x - mean) / std; t = tanh(z * 0.5)       Sub, Div, Constant, Mul, Tanh
        g = t * ReduceMean(t, axes=[1], keepdims=1)    runtime * runtime, [b,6] * [b,1]
        g = Squeeze(Unsqueeze(g, [1]), [1])            [b,1,6] and back
        h = relu(g @ W1 + b1)                          MatMul [6,3], Add, Relu
        m = ReduceSum(z, [1], keepdims=0) / Cast(Constant int64 6)
        h = Identity(h + Unsqueeze(m, [1]))            [b,3] + [b,1]
        prob = sigmoid(h @ W2 + b2)                    MatMul [3,1], Add, Sigmoid
    """
    n = 6
    x = dense_data(rng, ROWS, n)
    w = {
        "mean": f32(round_sig(x.astype(np.float64).mean(axis=0))),
        "std": f32(round_sig(x.astype(np.float64).std(axis=0))),
        "axes_1": i64([1]),
        "W1": normal(rng, (n, 3), 3.0),
        "b1": normal(rng, (3,), 0.2),
        "W2": normal(rng, (3, 1), 5.0),
        "b2": normal(rng, (1,), 0.1),
    }

    def logit(x):
        W = {n_: v.astype(np.float64) for n_, v in w.items() if v.dtype == np.float32}
        z = (x.astype(np.float64) - W["mean"]) / W["std"]
        t = np.tanh(z * 0.5)
        g = t * t.mean(axis=1, keepdims=True)
        h = np.maximum(g @ W["W1"] + W["b1"], 0)
        h = h + (z.sum(axis=1) / n)[:, None]
        return h @ W["W2"] + W["b2"]

    center(w, "b2", logit(x))
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centered"], name="sub_mean"),
        helper.make_node("Div", ["centered", "std"], ["z"], name="div_std"),
        helper.make_node("Constant", [], ["half"], name="half", value=numpy_helper.from_array(np.array(0.5, np.float32))),
        helper.make_node("Mul", ["z", "half"], ["z_half"], name="mul_half"),
        helper.make_node("Tanh", ["z_half"], ["t"], name="tanh"),
        helper.make_node("ReduceMean", ["t", "axes_1"], ["t_mean"], name="reduce_mean", keepdims=1),
        helper.make_node("Mul", ["t", "t_mean"], ["g"], name="mul_rows"),
        helper.make_node("Unsqueeze", ["g", "axes_1"], ["g3"], name="unsqueeze_g"),
        helper.make_node("Squeeze", ["g3", "axes_1"], ["g2"], name="squeeze_g"),
        helper.make_node("MatMul", ["g2", "W1"], ["h0"], name="matmul_1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="add_b1"),
        helper.make_node("Relu", ["h1"], ["h"], name="relu"),
        helper.make_node("ReduceSum", ["z", "axes_1"], ["z_sum"], name="reduce_sum", keepdims=0),
        helper.make_node("Constant", [], ["n_int"], name="n_features", value=numpy_helper.from_array(np.array(n, np.int64))),
        helper.make_node("Cast", ["n_int"], ["n_float"], name="cast_n", to=TensorProto.FLOAT),
        helper.make_node("Div", ["z_sum", "n_float"], ["z_mean"], name="div_n"),
        helper.make_node("Unsqueeze", ["z_mean", "axes_1"], ["z_mean2"], name="unsqueeze_m"),
        helper.make_node("Add", ["h", "z_mean2"], ["hm"], name="add_rows"),
        helper.make_node("Identity", ["hm"], ["hid"], name="identity"),
        helper.make_node("MatMul", ["hid", "W2"], ["o0"], name="matmul_2"),
        helper.make_node("Add", ["o0", "b2"], ["o"], name="add_b2"),
        helper.make_node("Sigmoid", ["o"], ["prob"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "ops_zoo",
        [value_info("x", TensorProto.FLOAT, ["batch", n])],
        [value_info("prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=18, ir=IR_OPSET_18, style="handwritten",
        description="the remaining operators on one float input: Sub, Div, Constant, Mul, Tanh, ReduceMean "
        "(axes input), runtime broadcast Mul, Unsqueeze/Squeeze, MatMul, Relu, ReduceSum (keepdims=0), "
        "Cast int64->float, Identity, Sigmoid",
        graph=graph, inputs=[("x", x)], outputs=[("prob", "float32", [ROWS, 1])],
        cardinalities={}, reference={"prob": sigmoid(logit(x))})


# 4b. activations -----------------------------------------------------------


def activations(rng):
    """Element-wise activations and row rearrangements on x [batch, 6] (opset 17):

        s = x * 0.05                                    scaled to keep exp finite
        a = LeakyRelu(s, 0.1) + Elu(s, 0.7) + HardSigmoid(s, 0.3, 0.4)
        b = Log(Softplus(s)) + Sqrt(Abs(s)) + Neg(Exp(s)) + Erf(s)
        c = Clip(a + b, -2, 2)
        p = Slice(c, starts [1], ends [6], axes [1], steps [2])       [b, 3]
        t = Reshape(Transpose(Reshape(c, [0, 2, 3]), [0, 2, 1]), [0, 6])
        q = Softmax(t, axis -1)                                       [b, 6]
        logit = q @ W1 + p @ W2 + bias; prob = Sigmoid(logit)
    """
    n = 6
    x = dense_data(rng, ROWS, n)
    w = {
        "scale": f32(0.05),
        "lo": f32(-2.0),
        "hi": f32(2.0),
        "starts": i64([1]), "ends": i64([6]), "axes": i64([1]), "steps": i64([2]),
        "shape3": i64([0, 2, 3]), "shape2": i64([0, 6]),
        "W1": normal(rng, (n, 1), 3.0),
        "W2": normal(rng, (3, 1), 0.6),
        "bias": normal(rng, (1,), 0.1),
    }

    def logit(x):
        W = {k: v.astype(np.float64) for k, v in w.items() if v.dtype == np.float32}
        s = x.astype(np.float64) * W["scale"]
        from math import erf
        a = np.where(s < 0, 0.1 * s, s) + np.where(s < 0, 0.7 * np.expm1(s), s) + np.clip(0.3 * s + 0.4, 0, 1)
        softplus = np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s)))
        b = np.log(softplus) + np.sqrt(np.abs(s)) - np.exp(s) + np.vectorize(erf)(s)
        c = np.clip(a + b, -2, 2)
        p = c[:, 1:6:2]
        t = c.reshape(len(c), 2, 3).transpose(0, 2, 1).reshape(len(c), 6)
        e = np.exp(t - t.max(axis=1, keepdims=True))
        q = e / e.sum(axis=1, keepdims=True)
        return q @ W["W1"] + p @ W["W2"] + W["bias"]

    center(w, "bias", logit(x))
    nodes = [
        helper.make_node("Mul", ["x", "scale"], ["s"], name="scale"),
        helper.make_node("LeakyRelu", ["s"], ["lrelu"], name="leaky_relu", alpha=0.1),
        helper.make_node("Elu", ["s"], ["elu"], name="elu", alpha=0.7),
        helper.make_node("HardSigmoid", ["s"], ["hsig"], name="hard_sigmoid", alpha=0.3, beta=0.4),
        helper.make_node("Add", ["lrelu", "elu"], ["a0"], name="add_a0"),
        helper.make_node("Add", ["a0", "hsig"], ["a"], name="add_a"),
        helper.make_node("Softplus", ["s"], ["sp"], name="softplus"),
        helper.make_node("Log", ["sp"], ["logsp"], name="log"),
        helper.make_node("Abs", ["s"], ["abs"], name="abs"),
        helper.make_node("Sqrt", ["abs"], ["sqrt"], name="sqrt"),
        helper.make_node("Exp", ["s"], ["exp"], name="exp"),
        helper.make_node("Neg", ["exp"], ["negexp"], name="neg"),
        helper.make_node("Erf", ["s"], ["erf"], name="erf"),
        helper.make_node("Add", ["logsp", "sqrt"], ["b0"], name="add_b0"),
        helper.make_node("Add", ["b0", "negexp"], ["b1"], name="add_b1"),
        helper.make_node("Add", ["b1", "erf"], ["b"], name="add_b"),
        helper.make_node("Add", ["a", "b"], ["ab"], name="add_ab"),
        helper.make_node("Clip", ["ab", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("Slice", ["c", "starts", "ends", "axes", "steps"], ["p"], name="slice"),
        helper.make_node("Reshape", ["c", "shape3"], ["c3"], name="reshape3"),
        helper.make_node("Transpose", ["c3"], ["t3"], name="transpose", perm=[0, 2, 1]),
        helper.make_node("Reshape", ["t3", "shape2"], ["t"], name="reshape2"),
        helper.make_node("Softmax", ["t"], ["q"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["q", "W1"], ["l1"], name="matmul_1"),
        helper.make_node("MatMul", ["p", "W2"], ["l2"], name="matmul_2"),
        helper.make_node("Add", ["l1", "l2"], ["l12"], name="add_l"),
        helper.make_node("Add", ["l12", "bias"], ["logit"], name="add_bias"),
        helper.make_node("Sigmoid", ["logit"], ["prob"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "activations",
        [value_info("x", TensorProto.FLOAT, ["batch", n])],
        [value_info("prob", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=17, ir=IR_TORCH, style="handwritten",
        description="element-wise activations (LeakyRelu, Elu, HardSigmoid, Softplus, Log, Abs, Sqrt, Exp, Neg, "
        "Erf, Clip) and rearrangements (Slice with steps, Transpose, Softmax) on one float input",
        graph=graph, inputs=[("x", x)], outputs=[("prob", "float32", [ROWS, 1])],
        cardinalities={}, reference={"prob": sigmoid(logit(x))})


# 5. logreg -----------------------------------------------------------------


def logreg(rng):
    """A hashed logistic regression, 1-D weights:

        score = sigmoid(ReduceSum(w[cat + offsets], [1], keepdims=0) + dense @ wd + bias)
    """
    k = len(CARDS)
    cat = cat_data(rng, ROWS, CARDS)
    dense = dense_data(rng, ROWS, DENSE)
    w = {
        "offsets": offsets(CARDS),
        "w": normal(rng, (sum(CARDS),), 0.6),
        "axes": i64([1]),
        "wd": normal(rng, (DENSE,), 0.01),
        "bias": normal(rng, (1,), 0.1),
    }

    def logit(cat, dense):
        z = w["w"].astype(np.float64)[cat + w["offsets"]].sum(axis=1)
        return z + dense.astype(np.float64) @ w["wd"].astype(np.float64) + w["bias"].astype(np.float64)

    center(w, "bias", logit(cat, dense))
    nodes = [
        helper.make_node("Add", ["cat", "offsets"], ["idx"], name="add_offsets"),
        helper.make_node("Gather", ["w", "idx"], ["w_cat"], name="gather_w", axis=0),
        helper.make_node("ReduceSum", ["w_cat", "axes"], ["w_sum"], name="reduce_sum", keepdims=0),
        helper.make_node("MatMul", ["dense", "wd"], ["w_dense"], name="matmul_dense"),
        helper.make_node("Add", ["w_sum", "w_dense"], ["z0"], name="add_dense"),
        helper.make_node("Add", ["z0", "bias"], ["z"], name="add_bias"),
        helper.make_node("Sigmoid", ["z"], ["score"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "logreg",
        [value_info("cat", TensorProto.INT64, ["batch", k]), value_info("dense", TensorProto.FLOAT, ["batch", DENSE])],
        [value_info("score", TensorProto.FLOAT, ["batch"])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=21, ir=IR_OPSET_21, style="handwritten",
        description="hashed logistic regression: Add(cat, offsets), Gather on 1-D weights, ReduceSum(keepdims=0), "
        "MatMul with a 1-D [4] weight, Add bias, Sigmoid, output [batch]",
        graph=graph, inputs=[("cat", cat), ("dense", dense)], outputs=[("score", "float32", [ROWS])],
        cardinalities={"cat": CARDS}, reference={"score": sigmoid(logit(cat, dense))})


def pytorch_tower(rng):
    """torch.onnx.export(opset_version=17, dynamic_axes={"input": {0: "batch"}}) of
    an image tower, nn.Sequential(Conv2d(3, 4, 3, padding=1), ReLU(),
    MaxPool2d(2), Conv2d(4, 6, 3, padding=1), ReLU(), MaxPool2d(2),
    AdaptiveAvgPool2d(1), Flatten(), Linear(6, 5)): what scorer imports as an
    image model's tower (scoring/onnx ImportTower). Input [batch, 3, 16, 16]
    in [0, 1], output the [batch, 5] embedding.
    """
    n, size, chans, emb = 8, 16, [4, 6], 5
    x = f32(rng.uniform(0, 1, (n, 3, size, size)))
    w = {}
    cin = 3
    for i, c in enumerate(chans):
        w[f"{3 * i}.weight"] = normal(rng, (c, cin, 3, 3), 1 / np.sqrt(cin * 9))
        w[f"{3 * i}.bias"] = normal(rng, (c,), 0.1)
        cin = c
    w["8.weight"] = normal(rng, (emb, cin), 1 / np.sqrt(cin))
    w["8.bias"] = normal(rng, (emb,), 0.1)

    def forward(x):
        h = x.astype(np.float64)
        for i, c in enumerate(chans):
            wt, b = w[f"{3 * i}.weight"].astype(np.float64), w[f"{3 * i}.bias"].astype(np.float64)
            p = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
            s = h.shape[2]
            out = np.zeros((h.shape[0], c, s, s))
            for ky in range(3):
                for kx in range(3):
                    out += np.einsum("nchw,oc->nohw", p[:, :, ky:ky + s, kx:kx + s], wt[:, :, ky, kx])
            out = np.maximum(out + b[None, :, None, None], 0)
            h = out.reshape(out.shape[0], c, s // 2, 2, s // 2, 2).max(axis=(3, 5))
        g = h.mean(axis=(2, 3))
        return g @ w["8.weight"].astype(np.float64).T + w["8.bias"].astype(np.float64)

    nodes = []
    prev = "input"
    for i in range(len(chans)):
        conv, relu, pool = f"/{3 * i}/Conv", f"/{3 * i + 1}/Relu", f"/{3 * i + 2}/MaxPool"
        nodes += [
            helper.make_node("Conv", [prev, f"{3 * i}.weight", f"{3 * i}.bias"], [conv + "_output_0"], name=conv,
                             dilations=[1, 1], group=1, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
            helper.make_node("Relu", [conv + "_output_0"], [relu + "_output_0"], name=relu),
            helper.make_node("MaxPool", [relu + "_output_0"], [pool + "_output_0"], name=pool,
                             ceil_mode=0, kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2]),
        ]
        prev = pool + "_output_0"
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["/6/GlobalAveragePool_output_0"], name="/6/GlobalAveragePool"),
        helper.make_node("Flatten", ["/6/GlobalAveragePool_output_0"], ["/7/Flatten_output_0"], name="/7/Flatten", axis=1),
        helper.make_node("Gemm", ["/7/Flatten_output_0", "8.weight", "8.bias"], ["output"], name="/8/Gemm",
                         alpha=1.0, beta=1.0, transB=1),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [value_info("output", TensorProto.FLOAT, ["batch", emb])],
        [numpy_helper.from_array(v, name) for name, v in w.items()],
    )
    return dict(
        opset=17, ir=IR_TORCH, style="pytorch-tower",
        description="an image tower: Conv 3x3 pad 1 + Relu + MaxPool 2x2, twice, GlobalAveragePool, Flatten, "
        "Gemm(transB=1): input [batch, 3, 16, 16], embedding [batch, 5]",
        graph=graph, inputs=[("input", x)], outputs=[("output", "float32", [n, emb])],
        cardinalities={}, reference={"output": forward(x)})


# name, builder, seed. The seeds are ones (of 1..39) for which the scores
# are spread: all in (0.05, 0.95), standard deviation >= 0.15 (main checks).
MODELS = [
    ("pytorch_wide_deep", pytorch_wide_deep, 7),
    ("pytorch_mlp_stacked", pytorch_mlp_stacked, 2),
    ("pytorch_bn_view", pytorch_bn_view, 2),
    ("dlrm", dlrm, 7),
    ("deepfm", deepfm, 1),
    ("keras_mlp", keras_mlp, 1),
    ("ops_zoo", ops_zoo, 4),
    ("activations", activations, 5),
    ("logreg", logreg, 5),
    ("pytorch_tower", pytorch_tower, 3),
]

DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64", np.dtype(np.int32): "int32"}


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_models.py OUT_DIR SPEC_DIR")
    out_dir, spec_dir = sys.argv[1], sys.argv[2]
    # Build and check every model before writing any.
    built = []
    for name, build, seed in MODELS:
        m = build(np.random.RandomState(seed))
        model = model_of(m["graph"], m["opset"], m["ir"], f"scorer parity fixture {name}: {m['description']}")
        if m["opset"] <= CHECKER_MAX_OPSET:
            onnx.checker.check_model(model, full_check=True)
        for out, _, shape in m["outputs"]:
            r = m["reference"][out]
            assert list(r.shape) == shape, (name, out, r.shape, shape)
            print(f"make_models: {name}: {out} in [{r.min():.3f}, {r.max():.3f}], mean {r.mean():.3f}, "
                  f"std {r.std():.3f}", file=sys.stderr)
            # Spread, not saturated (a score near 0 or 1 hides errors in its
            # logit). A tower's output is an embedding, not a score.
            if m["style"] != "pytorch-tower" and not (r.min() > 0.05 and r.max() < 0.95 and r.std() >= 0.15):
                sys.exit(f"make_models: {name}: {out} saturated or not spread; change the seed or the weight scales")
        built.append((name, m, model))
    seen = {n.op_type for _, _, model in built for n in model.graph.node}
    missing = [op for op in OPS if op not in seen]
    if missing:
        sys.exit(f"make_models: operators in no fixture: {', '.join(missing)}")

    for name, m, model in built:
        data = model.SerializeToString()
        write_atomic(os.path.join(out_dir, f"{name}.onnx"), data)
        spec = {
            "model": f"{name}.onnx",
            "opset": m["opset"],
            "style": m["style"],
            "description": m["description"],
            "inputs": [{"name": n, "dtype": DTYPES[a.dtype], "shape": list(a.shape), "data": a.ravel().tolist()}
                       for n, a in m["inputs"]],
            "outputs": [{"name": n, "dtype": dt, "shape": shape} for n, dt, shape in m["outputs"]],
            "cardinalities": m["cardinalities"],
            "reference": {n: v.ravel().tolist() for n, v in m["reference"].items()},
        }
        write_atomic(os.path.join(spec_dir, f"{name}.json"), json.dumps(spec).encode())
        checked = "checked" if m["opset"] <= CHECKER_MAX_OPSET else "not checked (opset > 17)"
        print(f"make_models: {name}.onnx: opset {m['opset']}, IR {m['ir']}, {len(data)} bytes, "
              f"{checked} by onnx {onnx.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
