/**
 * The decode outputs added to a graph at load: what they add, that the appended bytes merge into
 * the original, and clear refusals for graphs that are not of the shape the engine drives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TensorType, decodeOnnxModel, encodeOnnxModel, type ModelSpec } from '../../../../src/model/onnx-proto.js';
import { addDecodeOutputs } from '../../../../src/worker/engine/decode-outputs.js';

/** Two GroupQueryAttention-shaped nodes (not runnable: only the wiring is read). */
function graph(op = 'GroupQueryAttention', heads: number | string = 2): ModelSpec {
  const present = (i: number, side: string) => ({ name: `present.${i}.${side}`, type: TensorType.FLOAT, shape: ['batch', heads, 'total', 32] });
  return {
    irVersion: 10,
    opsets: [{ domain: '', version: 21 }],
    producer: 'test',
    graph: {
      name: 'g',
      inputs: [],
      outputs: [{ name: 'logits', type: TensorType.FLOAT, shape: ['batch', 1, 8] }, present(0, 'key'), present(0, 'value'), present(1, 'key'), present(1, 'value')],
      initializers: [],
      nodes: [0, 1].map((i) => ({
        op,
        name: `gqa${i}`,
        domain: 'com.microsoft',
        inputs: ['qkv', '', '', `past.${i}.key`, `past.${i}.value`, 'seqlens_k', 'total_len', 'cos', 'sin'],
        outputs: [`attn${i}`, `present.${i}.key`, `present.${i}.value`],
      })),
    },
  };
}

test('one gather per layer and side is added, after everything the graph had', () => {
  const bytes = encodeOnnxModel(graph());
  const out = addDecodeOutputs(bytes, ['present.0.key', 'present.1.key'], ['present.0.value', 'present.1.value']);
  assert.deepEqual(out.keys, ['present.0.key.decode_tail', 'present.1.key.decode_tail']);
  assert.deepEqual(Buffer.from(out.bytes.subarray(0, bytes.length)), Buffer.from(bytes));
  // protobufjs replaces a repeated embedded message instead of merging it, so the appended part is
  // read on its own here; onnxruntime's merge is checked by the engine test on a real graph.
  const added = decodeOnnxModel(out.bytes.subarray(bytes.length));
  assert.equal(added.graph.name, 'g', 'the graph name is kept');
  assert.equal(added.opsets.length, 0, 'no opset is imported twice');
  assert.equal(added.graph.inputs.length, 0);
  assert.deepEqual(
    added.graph.outputs.map((o) => o.name),
    [...out.keys, ...out.values],
  );
  const gathers = added.graph.nodes.filter((n) => n.op === 'GatherElements');
  assert.deepEqual(gathers.map((n) => n.inputs[0]), ['present.0.key', 'present.1.key', 'present.0.value', 'present.1.value']);
  assert.equal(added.graph.nodes[0]!.inputs[0], 'seqlens_k');
  assert.deepEqual(added.graph.outputs.at(-1)!.shape, ['batch', 2, 1, 32]);
});

test('graphs the engine cannot drive are refused with the name at fault', () => {
  assert.throws(() => addDecodeOutputs(encodeOnnxModel(graph('Attention')), ['present.0.key'], ['present.0.value']), /present\.0\.key is not an output of a GroupQueryAttention/);
  assert.throws(() => addDecodeOutputs(encodeOnnxModel(graph()), ['present.9.key'], ['present.0.value']), /present\.9\.key/);
  assert.throws(() => addDecodeOutputs(encodeOnnxModel(graph()), ['present.0.key'], ['nope']), /nope is not an output/);
  assert.throws(() => addDecodeOutputs(encodeOnnxModel(graph('GroupQueryAttention', 'heads')), ['present.0.key'], ['present.0.value']), /must be fixed/);
  assert.throws(() => addDecodeOutputs(new Uint8Array([0xff, 0xff, 0xff]), ['present.0.key'], ['present.0.value']));
});
