#!/usr/bin/env node
// Runs each parity fixture's model in ONNX Runtime (onnxruntime-node, CPU
// execution provider) on the fixture's inputs and writes the fixture:
//
//   ort_outputs.js SPEC_DIR OUT_DIR
//
// For each SPEC_DIR/NAME.json that make_models.py wrote (metadata, inputs,
// expected outputs' names, dtypes and shapes, and make_models.py's float64
// numpy forward pass as "reference"), runs OUT_DIR/NAME.onnx and writes
// OUT_DIR/NAME.json: the spec without "reference", with ONNX Runtime's
// outputs as "data". Fails (exit 1, nothing written for that model) if the
// model does not load, its inputs or outputs are not the spec's, or ONNX
// Runtime and numpy differ by more than 1e-5 anywhere.
//
// One session per model with one intra-op thread (bit-stable outputs:
// nothing depends on how work is split among threads) and the default graph
// optimizations ('all'); the outputs of a second session without graph
// optimizations are checked against them too.
//
// Floats are written as the shortest decimal (at most 9 significant digits)
// that reads back as the same float32, whether parsed straight to float32 or
// through float64 (Go's json into []float64, then float32()); checked here.
//
// onnxruntime-node is loaded from $PEERS_WORK/node (default
// ~/.cache/ctr-peers/node), where ../shared/peers/install.sh puts it.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const work = process.env.PEERS_WORK || path.join(os.homedir(), '.cache', 'ctr-peers');
const ortDir = path.join(work, 'node', 'node_modules', 'onnxruntime-node');
const ort = require(ortDir);

const TOLERANCE = 1e-5; // ONNX Runtime against numpy (float64)

const ARRAYS = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array };

function tensor(input) {
  const Arr = ARRAYS[input.dtype];
  if (!Arr) throw new Error(`input ${input.name}: dtype ${input.dtype}`);
  const data = input.dtype === 'int64' ? Arr.from(input.data, (v) => BigInt(v)) : Arr.from(input.data);
  if (input.dtype === 'float32' && data.some((v, i) => v !== input.data[i])) {
    throw new Error(`input ${input.name}: values that are not float32`);
  }
  return new ort.Tensor(input.dtype, data, input.shape);
}

// decimal splits a decimal string into sign, digits D and exponent q:
// |value| = D * 10^q.
function decimal(s) {
  const m = /^(-?)(\d+)(?:\.(\d*))?(?:e([+-]?\d+))?$/.exec(s);
  if (!m) throw new Error(`not a decimal: ${s}`);
  const frac = m[3] || '';
  return { neg: m[1] === '-', D: BigInt(m[2] + frac), q: Number(m[4] || 0) - frac.length };
}

// cmp compares D * 10^q with X * 2^F exactly: -1, 0 or 1.
function cmp(D, q, X, F) {
  const l = D * 10n ** BigInt(Math.max(q, 0)) * 2n ** BigInt(Math.max(-F, 0));
  const r = X * 2n ** BigInt(Math.max(F, 0)) * 10n ** BigInt(Math.max(-q, 0));
  return l < r ? -1 : l > r ? 1 : 0;
}

// roundsTo says whether a correctly rounding decimal-to-float32 parser (Go's
// strconv.ParseFloat(s, 32)) reads s as the float32 v: whether the decimal
// lies within v's rounding interval, ties going to the even significand.
function roundsTo(s, v) {
  const { neg, D, q } = decimal(s);
  if (neg !== v < 0) return false;
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, Math.abs(v));
  const bits = dv.getUint32(0);
  const e = bits >>> 23;
  const frac = bits & 0x7fffff;
  const M = BigInt(e === 0 ? frac : frac | 0x800000); // |v| = M * 2^E
  const E = (e === 0 ? 1 : e) - 150;
  const even = M % 2n === 0n;
  const hi = cmp(D, q, 2n * M + 1n, E - 1); // against the midpoint above
  // The midpoint below; at a power of two the float32 below is half as far.
  const lo = frac === 0 && e > 1 ? cmp(D, q, 4n * M - 1n, E - 2) : cmp(D, q, 2n * M - 1n, E - 1);
  return (hi < 0 || (hi === 0 && even)) && (lo > 0 || (lo === 0 && even));
}

// f32 writes a float32 so that it reads back exactly whether parsed straight
// to float32 (checked exactly, roundsTo) or to float64 and then rounded to
// float32 (Go's json into []float64, then float32(); Math.fround here): the
// shortest such decimal of at most 9 significant digits (9 always do).
function f32(v) {
  if (!Number.isFinite(v) || Math.fround(v) !== v) throw new Error(`not a finite float32: ${v}`);
  if (v === 0) return '0';
  const ok = (s) => Math.fround(Number(s)) === v && roundsTo(s, v);
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (!ok(s)) continue;
    const short = String(Number(s)); // "54.8", not "5.48e+1"
    return ok(short) ? short : s;
  }
  throw new Error(`no decimal of 9 digits reads back as the float32 ${v}`);
}

// tensorJSON writes one input or output on lines of one row each (the
// product of the dims after the first).
function tensorJSON(t) {
  const fmt = t.dtype === 'float32' ? f32 : (v) => String(v);
  const row = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const lines = [];
  for (let i = 0; i < t.data.length; i += row) {
    lines.push('      ' + Array.from(t.data.slice(i, i + row), fmt).join(', '));
  }
  return `    {"name": ${JSON.stringify(t.name)}, "dtype": "${t.dtype}", "shape": [${t.shape.join(', ')}], "data": [\n` +
    lines.join(',\n') + '\n    ]}';
}

function fixtureJSON(spec, outputs) {
  const cards = Object.entries(spec.cardinalities).map(([k, v]) => `${JSON.stringify(k)}: [${v.join(', ')}]`);
  return '{\n' +
    `  "model": ${JSON.stringify(spec.model)},\n` +
    `  "opset": ${spec.opset},\n` +
    `  "style": ${JSON.stringify(spec.style)},\n` +
    `  "description": ${JSON.stringify(spec.description)},\n` +
    '  "inputs": [\n' + spec.inputs.map(tensorJSON).join(',\n') + '\n  ],\n' +
    '  "outputs": [\n' + outputs.map(tensorJSON).join(',\n') + '\n  ],\n' +
    `  "cardinalities": {${cards.join(', ')}}\n` +
    '}\n';
}

function sameList(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function run(file, level, feeds) {
  const s = await ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: level,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const out = await s.run(feeds);
  const names = { inputs: s.inputNames, outputs: s.outputNames };
  await s.release();
  return [out, names];
}

async function fixture(specFile, outDir) {
  const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));
  const name = path.basename(specFile, '.json');
  const model = path.join(outDir, spec.model);
  const feeds = {};
  for (const input of spec.inputs) feeds[input.name] = tensor(input);

  const [out, names] = await run(model, 'all', feeds);
  const [plain] = await run(model, 'disabled', feeds);
  if (!sameList(names.inputs, spec.inputs.map((i) => i.name))) {
    throw new Error(`${name}: model inputs ${names.inputs}, spec ${spec.inputs.map((i) => i.name)}`);
  }
  if (!sameList(names.outputs, spec.outputs.map((o) => o.name))) {
    throw new Error(`${name}: model outputs ${names.outputs}, spec ${spec.outputs.map((o) => o.name)}`);
  }
  const outputs = [];
  const notes = [];
  for (const want of spec.outputs) {
    const got = out[want.name];
    if (got.type !== want.dtype || !sameList(got.dims.map(Number), want.shape)) {
      throw new Error(`${name}: output ${want.name} is ${got.type} ${got.dims}, want ${want.dtype} ${want.shape}`);
    }
    const ref = spec.reference[want.name];
    const alt = plain[want.name].data;
    let dRef = 0;
    let dAlt = 0;
    for (let i = 0; i < got.data.length; i++) {
      dRef = Math.max(dRef, Math.abs(got.data[i] - ref[i]));
      dAlt = Math.max(dAlt, Math.abs(got.data[i] - alt[i]));
    }
    if (!(dRef <= TOLERANCE) || !(dAlt <= TOLERANCE)) {
      throw new Error(`${name}: output ${want.name}: max |ort - numpy| = ${dRef}, ` +
        `|ort(all) - ort(disabled)| = ${dAlt}, tolerance ${TOLERANCE}`);
    }
    notes.push(`${want.name}: max |ort - numpy float64| = ${dRef.toExponential(2)}, ` +
      `|optimized - unoptimized| = ${dAlt.toExponential(2)}`);
    outputs.push({ name: want.name, dtype: want.dtype, shape: want.shape, data: got.data });
  }
  const dst = path.join(outDir, `${name}.json`);
  fs.writeFileSync(dst + '.tmp', fixtureJSON(spec, outputs));
  fs.renameSync(dst + '.tmp', dst);
  console.error(`ort_outputs: ${name}.json: ${notes.join('; ')}`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 2) {
    console.error('usage: ort_outputs.js SPEC_DIR OUT_DIR');
    process.exitCode = 2;
    return;
  }
  const [specDir, outDir] = args;
  const version = require(path.join(ortDir, 'package.json')).version;
  console.error(`ort_outputs: onnxruntime-node ${version}, node ${process.version}, CPU execution provider`);
  const specs = fs.readdirSync(specDir).filter((f) => f.endsWith('.json')).sort();
  if (specs.length === 0) throw new Error(`no *.json in ${specDir}`);
  for (const f of specs) await fixture(path.join(specDir, f), outDir);
}

// demo_outputs.js shares the session settings and the float32 writer.
module.exports = { ort, ortDir, run, f32 };

if (require.main === module) {
  main().catch((e) => {
    console.error(`ort_outputs: ${e.message || e}`);
    process.exit(1);
  });
}
