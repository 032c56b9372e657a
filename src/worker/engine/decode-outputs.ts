/**
 * Adds to a model graph, at load time, one small output per layer and side: the key (or value)
 * that the step appended to each row's cache, `[B, kv_heads, 1, head_dim]`, gathered from
 * GroupQueryAttention's present at the row's last position (seqlens_k). A decode step then fetches
 * these instead of `present.*`, and the engine writes them into its own KV rows.
 *
 * Why: onnxruntime-node 1.30 copies every fetched output into a new JavaScript buffer after each
 * run, pre-allocated ones included, so fetching `present.*` costs a copy of the whole cache per
 * step, plus the fresh pages and the garbage collections those buffers bring (ARCHITECTURE.md,
 * "Worker"). Left unfetched, present lives in onnxruntime's arena, and the step's cost left in
 * proportion to the context is the operator's own copy of each row's valid past.
 *
 * The graph on disk is not changed: the additions are a second serialized ModelProto appended to
 * the file's bytes, which protobuf merges into the first (repeated fields such as `graph.node` and
 * `graph.output` are concatenated), so nothing of the original needs to be decoded and re-encoded.
 */
import { decodeOnnxModel, encodeOnnxModel, TensorType, type NodeSpec, type ValueInfo } from '../../model/onnx-proto.js';

export interface DecodeOutputs {
  /** The graph's bytes with the added outputs. */
  bytes: Uint8Array;
  /** Per layer, the added outputs' names, in the order of the present names given. */
  keys: string[];
  values: string[];
}

const PREFIX = 'decode_tail';

function int64Raw(values: number[]): Uint8Array {
  return new Uint8Array(BigInt64Array.from(values, BigInt).buffer);
}

/**
 * `presentKeys[i]` / `presentValues[i]` name layer i's present outputs; each must be an output of a
 * GroupQueryAttention node whose sixth input is seqlens_k. Throws naming what it did not find.
 */
export function addDecodeOutputs(graph: Uint8Array, presentKeys: string[], presentValues: string[]): DecodeOutputs {
  const model = decodeOnnxModel(graph);
  const producer = new Map<string, NodeSpec>();
  for (const n of model.graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const outputInfo = new Map(model.graph.outputs.map((o) => [o.name, o]));
  const first = producer.get(presentKeys[0]!);
  if (!first || first.op !== 'GroupQueryAttention') throw new Error(`${presentKeys[0]} is not an output of a GroupQueryAttention node`);
  const seqlensK = first.inputs[5]!;
  const info = outputInfo.get(presentKeys[0]!);
  if (!info || info.shape.length !== 4) throw new Error(`${presentKeys[0]}: not a 4-d graph output`);
  const [batch, heads, , dim] = info.shape;
  if (typeof heads !== 'number' || typeof dim !== 'number') throw new Error(`${presentKeys[0]}: kv heads and head size must be fixed`);

  const nodes: NodeSpec[] = [
    { op: 'Cast', name: `${PREFIX}/seqlens`, inputs: [seqlensK], outputs: [`${PREFIX}/seqlens`], attrs: { to: TensorType.INT64 } },
    { op: 'Reshape', name: `${PREFIX}/column`, inputs: [`${PREFIX}/seqlens`, `${PREFIX}/column_shape`], outputs: [`${PREFIX}/column`] },
    { op: 'Expand', name: `${PREFIX}/index`, inputs: [`${PREFIX}/column`, `${PREFIX}/index_shape`], outputs: [`${PREFIX}/index`] },
  ];
  const outputs: ValueInfo[] = [];
  const add = (present: string): string => {
    const node = producer.get(present);
    if (!node || node.op !== 'GroupQueryAttention' || node.inputs[5] !== seqlensK) {
      throw new Error(`${present} is not an output of a GroupQueryAttention node fed by ${seqlensK}`);
    }
    const name = `${present}.${PREFIX}`;
    nodes.push({ op: 'GatherElements', name, inputs: [present, `${PREFIX}/index`], outputs: [name], attrs: { axis: 2 } });
    outputs.push({ name, type: info.type, shape: [batch!, heads, 1, dim] });
    return name;
  };
  const keys = presentKeys.map(add);
  const values = presentValues.map(add);
  const extra = encodeOnnxModel({
    // Scalars merge by replacement: the original's values keep the model as it was.
    irVersion: model.irVersion,
    producer: model.producer,
    opsets: [],
    graph: {
      name: model.graph.name,
      nodes,
      inputs: [],
      outputs,
      initializers: [
        { name: `${PREFIX}/column_shape`, type: TensorType.INT64, dims: [4], raw: int64Raw([-1, 1, 1, 1]) },
        { name: `${PREFIX}/index_shape`, type: TensorType.INT64, dims: [4], raw: int64Raw([1, heads, 1, dim]) },
      ],
    },
  });
  const bytes = new Uint8Array(graph.length + extra.length);
  bytes.set(graph);
  bytes.set(extra, graph.length);
  return { bytes, keys, values };
}
