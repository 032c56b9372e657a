/**
 * Hot request bodies checked by code compiled once, with zod still the one definition.
 *
 * A zod schema marked with `compiledBody` is turned into JSON Schema by zod itself
 * (`z.toJSONSchema`) and compiled by ajv, which is what Fastify's own validation does; the
 * schema's refinements, which JSON Schema cannot say, are plain functions that the zod schema
 * runs too. A body that passes both is taken as it is. Anything else is parsed by zod, whose
 * verdict stands and whose error names the field at fault, so the compiled path changes no
 * error and can only be wrong by accepting what zod refuses — which the tests look for by
 * feeding both the same garbage. On the hot route ajv checks a body in about a sixth of zod's
 * time (`npm run bench:validation`). Both count a string's length in code points.
 */
import type { FastifySchemaCompiler } from 'fastify';
import { validatorCompiler as zodValidatorCompiler } from 'fastify-type-provider-zod';
import { Ajv, type ValidateFunction } from 'ajv';
import { z } from 'zod';

/** A refinement of the schema as a plain function: true when the (structurally valid) body passes it. */
export type BodyCheck<T> = (body: T) => boolean;

interface Compilable {
  check: BodyCheck<never>;
  compiled?: ValidateFunction;
}

const compilable = new WeakMap<z.ZodType, Compilable>();

/**
 * Marks `schema` to be checked by compiled code; `check` must accept exactly the bodies that
 * the schema's refinements accept, among those its shape accepts. Returns the schema itself.
 */
export function compiledBody<S extends z.ZodType>(schema: S, check: BodyCheck<z.input<S>>): S {
  compilable.set(schema, { check: check as BodyCheck<never> });
  return schema;
}

let ajv: Ajv | null = null;
function compiler(): Ajv {
  if (!ajv) {
    // Nothing coerced, defaulted or removed: a body either is what the schema says or is refused.
    ajv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false, strict: true });
  }
  return ajv;
}

/** The compiled validator of a marked schema (compiled on first use); null for any other schema. */
export function compiledValidator<T>(schema: z.ZodType): ((body: unknown) => body is T) | null {
  const entry = compilable.get(schema);
  if (!entry) return null;
  entry.compiled ??= compiler().compile(z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'throw' }));
  const shape = entry.compiled;
  const check = entry.check;
  return (body: unknown): body is T => shape(body) && check(body as never);
}

/**
 * Fastify's validator compiler for the gateway: the compiled path for marked schemas, zod
 * (fastify-type-provider-zod's compiler) for every other schema and for every body the compiled
 * path does not take.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = (route) => {
  const slow = zodValidatorCompiler(route);
  const fast = compiledValidator(route.schema);
  if (!fast) return slow;
  return (body: unknown) => (fast(body) ? { value: body } : slow(body));
};
