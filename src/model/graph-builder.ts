/**
 * A small helper for writing ONNX graphs node by node: unique node names, inline constants
 * (deduplicated), graph inputs and outputs, and weights declared by size only. A weight's bytes
 * are produced later by a `WeightJob` that the exporter runs while it streams the data file, so
 * building a graph never touches the checkpoint.
 */
import {
  TENSOR_TYPE_BYTES,
  TensorType,
  type AttributeValue,
  type Dim,
  type GraphSpec,
  type InitializerSpec,
  type NodeSpec,
  type ValueInfo,
} from './onnx-proto.js';

export interface WeightDecl {
  name: string;
  type: TensorType;
  dims: number[];
  byteLength: number;
}

/** Writes `bytes` at `offset` within one of the job's weights. */
export type WeightWriter = (weight: WeightDecl, offset: number, bytes: Uint8Array) => void;

export interface WeightJob {
  /** What the progress display shows while the job runs (usually the checkpoint tensor). */
  label: string;
  weights: WeightDecl[];
  run(write: WeightWriter): void;
}

export interface NodeOptions {
  name?: string;
  domain?: string;
  attrs?: Record<string, AttributeValue>;
  /** Output names, or how many fresh ones to make (default 1). */
  outputs?: string[] | number;
}

export const MS_DOMAIN = 'com.microsoft';

export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly constants: InitializerSpec[] = [];
  private readonly constantNames = new Map<string, string>();
  readonly weights: WeightDecl[] = [];
  readonly jobs: WeightJob[] = [];
  private readonly names = new Set<string>();

  input(name: string, type: TensorType, shape: Dim[]): string {
    this.inputs.push({ name, type, shape });
    return name;
  }

  output(name: string, type: TensorType, shape: Dim[]): void {
    this.outputs.push({ name, type, shape });
  }

  /** Adds a node and returns its output names. */
  node(op: string, inputs: string[], options: NodeOptions = {}): string[] {
    const name = this.unique(options.name ?? op);
    const outs =
      typeof options.outputs === 'object'
        ? options.outputs
        : Array.from({ length: options.outputs ?? 1 }, (_, i) => `${name}/output_${i}`);
    const spec: NodeSpec = { op, name, inputs, outputs: outs };
    if (options.domain) spec.domain = options.domain;
    if (options.attrs) spec.attrs = options.attrs;
    this.nodes.push(spec);
    return outs;
  }

  /** A node with one output. */
  op(op: string, inputs: string[], options: Omit<NodeOptions, 'outputs'> & { output?: string } = {}): string {
    const { output, ...rest } = options;
    return this.node(op, inputs, { ...rest, outputs: output === undefined ? 1 : [output] })[0]!;
  }

  /** An inline int64 constant (a scalar when `dims` is []). */
  int64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const existing = this.constantNames.get(key);
    if (existing) return existing;
    const name = `const_i64_${this.constants.length}`;
    const raw = new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer);
    this.constants.push({ name, type: TensorType.INT64, dims, raw });
    this.constantNames.set(key, name);
    return name;
  }

  /** Declares a weight stored in the external data file; its bytes come from a job. */
  weight(name: string, type: TensorType, dims: number[], byteLength?: number): WeightDecl {
    const decl: WeightDecl = {
      name,
      type,
      dims,
      byteLength: byteLength ?? dims.reduce((a, b) => a * b, 1) * TENSOR_TYPE_BYTES[type],
    };
    this.weights.push(decl);
    return decl;
  }

  job(job: WeightJob): void {
    this.jobs.push(job);
  }

  /** The graph, with each weight pointing at `offsets[name]` in `location`. */
  build(name: string, location: string, offsets: Map<string, number>): GraphSpec {
    const initializers: InitializerSpec[] = [
      ...this.constants,
      ...this.weights.map((w) => {
        const offset = offsets.get(w.name);
        if (offset === undefined) throw new Error(`weight ${w.name} has no place in the data file`);
        return { name: w.name, type: w.type, dims: w.dims, external: { location, offset, length: w.byteLength } };
      }),
    ];
    return { name, nodes: this.nodes, inputs: this.inputs, outputs: this.outputs, initializers };
  }

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }
}
