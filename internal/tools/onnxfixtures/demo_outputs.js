#!/usr/bin/env node
// Scores the demo model (make_demo.py) in ONNX Runtime and writes what the
// README's demo expects of it:
//
//   demo_outputs.js WORK_DIR OUT_DIR
//
// WORK_DIR/demo.json (make_demo.py) names the model (in OUT_DIR), its
// inputs and output, and sets of rows: the validation rows of 2020-08 and
// every row of 2020-09 (in file order), each as raw little-endian files of
// its inputs, its labels (uint8) and make_demo.py's float64 numpy forward
// pass ("reference"). For each set this runs the model (one session, the
// settings of ort_outputs.js: CPU, one intra-op thread, graph optimizations
// 'all'; checked against a session without graph optimizations and against
// numpy, at most 1e-5 apart anywhere, else exit 1 and nothing written) and
// computes the AUC of ONNX Runtime's scores. Then it writes
// OUT_DIR/ctr-pytorch.expected.json:
//
//   {"file": "dumps/2020-09/ads-2020-09-000.csv.gz",
//    "rows": [{"ad_id": "...", "score": 0.123}, ...],   the file's first 300 rows
//    "auc_2020_09": ..., "val_auc": ...}
//
// scores as ort_outputs.js writes floats (the shortest decimal that reads
// back as the same float32, checked), AUCs (ties count one half, as
// scorer's metrics.AUC) rounded to 6 decimals.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { ort, ortDir, run, f32 } = require('./ort_outputs.js');

const TOLERANCE = 1e-5; // ONNX Runtime against numpy (float64), and optimized against not

function readArray(file, Arr) {
  const b = fs.readFileSync(file);
  return new Arr(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

// auc is the Mann-Whitney AUC of scores against 0/1 labels, ties counting
// one half.
function auc(scores, labels) {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  let pos = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j < order.length && scores[order[j]] === scores[order[i]]) j++;
    const rank = (i + 1 + j) / 2; // the mean of ranks i+1 .. j
    for (let t = i; t < j; t++) {
      if (labels[order[t]]) {
        rankSum += rank;
        pos++;
      }
    }
    i = j;
  }
  const neg = order.length - pos;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

function maxDiff(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

async function score(model, manifest, set, work) {
  const feeds = {};
  for (const input of manifest.inputs) {
    const file = path.join(work, set[input.name]);
    const data = input.dtype === 'int64' ? readArray(file, BigInt64Array) : readArray(file, Float32Array);
    if (data.length !== set.rows * input.width) throw new Error(`${set.name}: ${input.name} has ${data.length} values`);
    feeds[input.name] = new ort.Tensor(input.dtype, data, [set.rows, input.width]);
  }
  const [out, names] = await run(model, 'all', feeds);
  const [plain] = await run(model, 'disabled', feeds);
  const want = manifest.inputs.map((i) => i.name).join(',');
  if (names.inputs.join(',') !== want || names.outputs.join(',') !== manifest.output) {
    throw new Error(`model inputs ${names.inputs}, outputs ${names.outputs}; want ${want} and ${manifest.output}`);
  }
  const got = out[manifest.output];
  if (got.type !== 'float32' || got.dims.map(Number).join(',') !== `${set.rows},1`) {
    throw new Error(`${set.name}: output ${manifest.output} is ${got.type} [${got.dims}]`);
  }
  const ref = readArray(path.join(work, set.reference), Float64Array);
  const dRef = maxDiff(got.data, ref);
  const dAlt = maxDiff(got.data, plain[manifest.output].data);
  if (!(dRef <= TOLERANCE) || !(dAlt <= TOLERANCE)) {
    throw new Error(`${set.name}: max |ort - numpy| = ${dRef}, |ort(all) - ort(disabled)| = ${dAlt}, ` +
      `tolerance ${TOLERANCE}`);
  }
  const labels = readArray(path.join(work, set.labels), Uint8Array);
  const a = auc(got.data, labels);
  let mean = 0;
  for (const s of got.data) mean += s / got.data.length;
  console.error(`demo_outputs: ${set.name}: ${set.rows} rows, AUC ${a.toFixed(6)} (numpy's scores: ` +
    `${auc(ref, labels).toFixed(6)}), mean score ${mean.toFixed(4)}; max |ort - numpy float64| = ` +
    `${dRef.toExponential(2)}, |optimized - unoptimized| = ${dAlt.toExponential(2)}`);
  return { scores: got.data, auc: a };
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 2) {
    console.error('usage: demo_outputs.js WORK_DIR OUT_DIR');
    process.exitCode = 2;
    return;
  }
  const [work, outDir] = args;
  if (os.endianness() !== 'LE') throw new Error('the inputs are little-endian: run on a little-endian machine');
  const manifest = JSON.parse(fs.readFileSync(path.join(work, 'demo.json'), 'utf8'));
  const model = path.join(outDir, manifest.model);
  const results = {};
  for (const set of manifest.sets) results[set.name] = await score(model, manifest, set, work);

  const exp = manifest.expected;
  const scores = results[exp.set].scores;
  const rows = exp.ad_ids.map((id, i) => `    {"ad_id": ${JSON.stringify(id)}, "score": ${f32(scores[i])}}`);
  const aucs = manifest.sets.map((s) => `  ${JSON.stringify(s.name)}: ${Number(results[s.name].auc.toFixed(6))}`);
  const text = '{\n' +
    `  "file": ${JSON.stringify(exp.file)},\n` +
    '  "rows": [\n' + rows.join(',\n') + '\n  ],\n' +
    aucs.join(',\n') + '\n' +
    '}\n';
  // The file reads back as what was scored.
  const back = JSON.parse(text);
  back.rows.forEach((r, i) => {
    if (r.ad_id !== exp.ad_ids[i] || Math.fround(r.score) !== scores[i]) throw new Error(`row ${i} does not read back`);
  });
  const dst = path.join(outDir, exp.out);
  fs.writeFileSync(dst + '.tmp', text);
  fs.renameSync(dst + '.tmp', dst);
  const version = require(path.join(ortDir, 'package.json')).version;
  console.error(`demo_outputs: ${exp.out}: the first ${rows.length} rows of ${exp.file} (onnxruntime-node ${version})`);
}

main().catch((e) => {
  console.error(`demo_outputs: ${e.message || e}`);
  process.exit(1);
});
