import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { TensorType, decodeOnnxModel, encodeOnnxModel, type ModelSpec } from '../../../src/model/onnx-proto.js';

/** y = (x + c) · 2 with an inline constant, as a model onnxruntime can run. */
function tinyModel(): ModelSpec {
  return {
    irVersion: 10,
    opsets: [{ domain: '', version: 21 }],
    producer: 'test',
    metadata: { purpose: 'proto test' },
    graph: {
      name: 'g',
      inputs: [{ name: 'x', type: TensorType.FLOAT, shape: ['batch', 3] }],
      outputs: [{ name: 'y', type: TensorType.FLOAT, shape: ['batch', 3] }],
      initializers: [
        { name: 'c', type: TensorType.FLOAT, dims: [3], raw: new Uint8Array(Float32Array.of(1, 2, 3).buffer) },
        { name: 'two', type: TensorType.FLOAT, dims: [], raw: new Uint8Array(Float32Array.of(2).buffer) },
      ],
      nodes: [
        { op: 'Add', name: 'add', inputs: ['x', 'c'], outputs: ['s'] },
        { op: 'Mul', name: 'mul', inputs: ['s', 'two'], outputs: ['y'] },
      ],
    },
  };
}

test('an encoded model runs in onnxruntime', async () => {
  const session = await ort.InferenceSession.create(encodeOnnxModel(tinyModel()));
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(0, 1, 2, 10, 10, 10), [2, 3]) });
  assert.deepEqual([...(out.y!.data as Float32Array)], [2, 6, 10, 22, 24, 26]);
  await session.release();
});

test('decode reads back ops, I/O and initializers, inline and external', () => {
  const spec = tinyModel();
  spec.graph.nodes.push({ op: 'Custom', name: 'attrs', inputs: ['x'], outputs: ['z'], attrs: { i: 3, f: { float: 0.5 }, s: 'text', is: [1, 2] } });
  spec.graph.initializers.push({ name: 'w', type: TensorType.FLOAT16, dims: [4, 8], external: { location: 'model.onnx.data', offset: 128, length: 64 } });
  const back = decodeOnnxModel(encodeOnnxModel(spec));
  assert.equal(back.irVersion, 10);
  assert.deepEqual(back.opsets, [{ domain: '', version: 21 }]);
  assert.deepEqual(back.graph.nodes.map((n) => n.op), ['Add', 'Mul', 'Custom']);
  assert.deepEqual(back.graph.inputs, spec.graph.inputs);
  assert.deepEqual(back.graph.initializers.find((i) => i.name === 'w'), {
    name: 'w',
    type: TensorType.FLOAT16,
    dims: [4, 8],
    external: { location: 'model.onnx.data', offset: 128, length: 64 },
  });
  assert.deepEqual([...new Float32Array(Uint8Array.from(back.graph.initializers[0]!.raw!).buffer)], [1, 2, 3]);
});

test('garbage is not a model', () => {
  assert.throws(() => decodeOnnxModel(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
});
