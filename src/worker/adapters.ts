/**
 * The LoRA adapters a worker serves, loaded once at start and chosen per request by name.
 *
 * - `runtime` models: every sub-folder of the adapters folder is a PEFT adapter, read with the
 *   model builder's reader (safetensors only; a pickle checkpoint or a folder that does not fit
 *   the model stops the start with a line naming the file). Each adapter's layers must be among
 *   the graph's LoRA inputs. A request without `adapter` runs the base model (zero LoRA rows).
 * - `merge` models: the adapter baked into the weights is the only one; a request may name it or
 *   name none, and both get the merged model (there is no base model to fall back to).
 * - `none` models: no adapters; a non-empty adapters folder is reported and left unused.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../shared/errors.js';
import type { ModelManifest } from '../shared/model-manifest.js';
import type { AdapterInfo } from '../protocol/schemas.js';
import { readPeftAdapter, type LoraFactors } from '../model/peft-adapter.js';
import type { EngineAdapter } from './engine/engine.js';

/** An adapter with its factors, ready to be written into a LoRA row. */
export interface RuntimeAdapter extends EngineAdapter {
  readonly rank: number;
  /** Factors by manifest LoRA input index (layer and module). */
  readonly factors: ReadonlyMap<number, LoraFactors>;
}

export interface AdapterSet {
  readonly mode: ModelManifest['adapter']['mode'];
  /** Adapters by name. */
  readonly byName: ReadonlyMap<string, EngineAdapter>;
  /** What a request without `adapter` gets: null (base model) or the merged adapter. */
  readonly defaultAdapter: EngineAdapter | null;
  /** Largest rank among runtime adapters (LoRA inputs are zero-padded to it). */
  readonly maxRank: number;
  /** Lines worth a warning at start. */
  readonly warnings: string[];
}

function adapterFolders(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.') && statSync(join(dir, name)).isDirectory())
    .sort();
}

export function loadAdapters(manifest: ModelManifest, adaptersDir: string): AdapterSet {
  const folders = adapterFolders(adaptersDir);
  const spec = manifest.adapter;
  if (spec.mode === 'merge') {
    const merged: EngineAdapter = { name: spec.merged.name, info: spec.merged };
    const warnings = folders.length
      ? [`${adaptersDir}: ignored; the model has adapter ${spec.merged.name} merged into its weights`]
      : [];
    return { mode: 'merge', byName: new Map([[merged.name, merged]]), defaultAdapter: merged, maxRank: 0, warnings };
  }
  if (spec.mode === 'none') {
    const warnings = folders.length
      ? [`${adaptersDir}: ${folders.length} adapter folder(s) ignored; this model takes no LoRA inputs (export it with --adapter-mode runtime)`]
      : [];
    return { mode: 'none', byName: new Map(), defaultAdapter: null, maxRank: 0, warnings };
  }
  const inputIndex = new Map(spec.inputs.map((input, i) => [`${input.layer}.${input.module}`, i]));
  const byName = new Map<string, EngineAdapter>();
  let maxRank = 0;
  for (const folder of folders) {
    const dir = join(adaptersDir, folder);
    const peft = readPeftAdapter(dir, manifest.dims, { scaled: true });
    const factors = new Map<number, LoraFactors>();
    for (const layer of peft.layers) {
      const index = inputIndex.get(`${layer.layer}.${layer.module}`);
      if (index === undefined) {
        throw new AppError(
          'ADAPTER_MISMATCH',
          `${dir}: adapts ${layer.module} of layer ${layer.layer}, which this model's graph takes no LoRA input for (export the model with --adapter-mode runtime --lora-targets including ${layer.module})`,
        );
      }
      factors.set(index, layer);
    }
    const info: AdapterInfo = { name: peft.name, rank: peft.rank, alpha: peft.alpha, target_modules: [...peft.targetModules] };
    const adapter: RuntimeAdapter = { name: peft.name, info, rank: peft.rank, factors };
    byName.set(peft.name, adapter);
    maxRank = Math.max(maxRank, peft.rank);
  }
  return { mode: 'runtime', byName, defaultAdapter: null, maxRank, warnings: [] };
}

/** The adapter a request names (or the default); MODEL_NOT_FOUND for an unknown name. */
export function resolveAdapter(set: AdapterSet, name: string | undefined): EngineAdapter | null {
  if (name === undefined) return set.defaultAdapter;
  const adapter = set.byName.get(name);
  if (!adapter) {
    const known = [...set.byName.keys()];
    throw new AppError(
      'MODEL_NOT_FOUND',
      `adapter ${JSON.stringify(name)} is not served here${known.length ? ` (available: ${known.join(', ')})` : ' (no adapters are loaded)'}`,
      { param: 'adapter' },
    );
  }
  return adapter;
}

export function isRuntimeAdapter(adapter: EngineAdapter | null): adapter is RuntimeAdapter {
  return adapter !== null && 'factors' in adapter;
}
