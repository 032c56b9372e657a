/**
 * Writes (and, for tests and checks, reads) ONNX `ModelProto` files.
 *
 * The schema is the subset of onnx.proto that the builder emits, with the upstream field
 * numbers; fields not listed here are skipped on read. Weights never pass through this module:
 * initializers carry `external_data` entries (location, offset, length) that point into the
 * `.onnx.data` file the exporter streams separately, so the protobuf stays small whatever the
 * model size (protobuf cannot hold more than 2 GB).
 */
import protobuf from 'protobufjs';

export enum TensorType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  INT64 = 7,
  FLOAT16 = 10,
}

export const TENSOR_TYPE_BYTES: Record<TensorType, number> = {
  [TensorType.FLOAT]: 4,
  [TensorType.UINT8]: 1,
  [TensorType.INT8]: 1,
  [TensorType.INT32]: 4,
  [TensorType.INT64]: 8,
  [TensorType.FLOAT16]: 2,
};

enum AttributeType {
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  FLOATS = 6,
  INTS = 7,
}

/** A dimension: a fixed size or a symbolic name (`batch_size`). */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: TensorType;
  shape: Dim[];
}

export type AttributeValue = number | string | number[] | { float: number } | { floats: number[] };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  domain?: string;
  attrs?: Record<string, AttributeValue>;
}

export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

export interface InitializerSpec {
  name: string;
  type: TensorType;
  dims: number[];
  /** Small tensors (constants, shapes) are stored in the protobuf itself. */
  raw?: Uint8Array;
  external?: ExternalRef;
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: InitializerSpec[];
}

export interface ModelSpec {
  irVersion: number;
  opsets: Array<{ domain: string; version: number }>;
  producer: string;
  graph: GraphSpec;
  metadata?: Record<string, string>;
}

const root = protobuf.Root.fromJSON({
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: { fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            type: { type: 'int32', id: 20 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            domain: { type: 'string', id: 7 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
            externalData: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            dataLocation: { type: 'int32', id: 14 },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
              fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } },
            },
          },
        },
        TypeProto: {
          fields: { tensorType: { type: 'Tensor', id: 1 } },
          nested: {
            Tensor: {
              fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } },
            },
          },
        },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
          },
        },
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            producerName: { type: 'string', id: 2 },
            graph: { type: 'GraphProto', id: 7 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            metadataProps: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
      },
    },
  },
});

const ModelProto = root.lookupType('onnx.ModelProto');

function attribute(name: string, value: AttributeValue): Record<string, unknown> {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for a float value`);
    return { name, type: AttributeType.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: Buffer.from(value, 'utf8') };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.FLOATS, floats: value.floats };
}

function valueInfo(v: ValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: v.type,
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function tensor(t: InitializerSpec): Record<string, unknown> {
  const base = { name: t.name, dataType: t.type, dims: t.dims };
  if (t.external) {
    return {
      ...base,
      dataLocation: 1,
      externalData: [
        { key: 'location', value: t.external.location },
        { key: 'offset', value: String(t.external.offset) },
        { key: 'length', value: String(t.external.length) },
      ],
    };
  }
  return { ...base, rawData: t.raw ?? new Uint8Array(0) };
}

export function encodeOnnxModel(model: ModelSpec): Uint8Array {
  const g = model.graph;
  const message = ModelProto.fromObject({
    irVersion: model.irVersion,
    producerName: model.producer,
    opsetImport: model.opsets,
    metadataProps: Object.entries(model.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        name: n.name,
        opType: n.op,
        domain: n.domain ?? '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      initializer: g.initializers.map(tensor),
    },
  });
  return ModelProto.encode(message).finish();
}

interface DecodedTensor {
  name: string;
  dataType: number;
  dims: number[];
  externalData?: Array<{ key: string; value: string }>;
  rawData?: Uint8Array;
}

/** Reads back what `encodeOnnxModel` wrote: node ops, I/O and where each initializer lives. */
export function decodeOnnxModel(bytes: Uint8Array): ModelSpec {
  const msg = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false }) as {
    irVersion: number;
    producerName?: string;
    opsetImport?: Array<{ domain?: string; version: number }>;
    graph?: {
      name?: string;
      node?: Array<{ name?: string; opType: string; domain?: string; input?: string[]; output?: string[] }>;
      input?: Array<Record<string, unknown>>;
      output?: Array<Record<string, unknown>>;
      initializer?: DecodedTensor[];
    };
  };
  const g = msg.graph ?? {};
  const info = (v: Record<string, unknown>): ValueInfo => {
    const tt = (v.type as { tensorType: { elemType: number; shape?: { dim?: Array<{ dimValue?: number; dimParam?: string }> } } })
      .tensorType;
    return {
      name: v.name as string,
      type: tt.elemType as TensorType,
      shape: (tt.shape?.dim ?? []).map((d) => d.dimParam ?? d.dimValue ?? 0),
    };
  };
  return {
    irVersion: msg.irVersion,
    producer: msg.producerName ?? '',
    opsets: (msg.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: o.version })),
    graph: {
      name: g.name ?? '',
      nodes: (g.node ?? []).map((n) => ({
        name: n.name ?? '',
        op: n.opType,
        domain: n.domain ?? '',
        inputs: n.input ?? [],
        outputs: n.output ?? [],
      })),
      inputs: (g.input ?? []).map(info),
      outputs: (g.output ?? []).map(info),
      initializers: (g.initializer ?? []).map((t) => {
        const ext = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
        const spec: InitializerSpec = { name: t.name, type: t.dataType as TensorType, dims: t.dims ?? [] };
        if (ext.location !== undefined) {
          spec.external = { location: ext.location, offset: Number(ext.offset ?? 0), length: Number(ext.length ?? 0) };
        } else {
          spec.raw = t.rawData ?? new Uint8Array(0);
        }
        return spec;
      }),
    },
  };
}
