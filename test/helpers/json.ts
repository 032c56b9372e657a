/** A JSON file a test reads (golden vectors, reports, manifests), through the project's one JSON-file reader. */
import { z } from 'zod';
import { readJsonFile } from '../../src/shared/json-file.js';

export function readJson<T = unknown>(file: string): T {
  return readJsonFile(file, z.unknown()) as T;
}
