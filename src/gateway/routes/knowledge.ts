/**
 * Admin routes of the live knowledge base, behind the bearer admin token: add or replace entries
 * (JSON, or a lawzhidao CSV body: the only routes that parse `text/csv`), delete one, search.
 * Every entry of a request is checked before any is stored (fallback/knowledge-input.ts); the
 * change then goes to every replica through Redis (`app.knowledge`), or to this process only,
 * as the answer's `store` says.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../shared/errors.js';
import { csvKnowledge, entryView, KnowledgeBodySchema, KnowledgeIdSchema, toKnowledgeEntries } from '../fallback/knowledge-input.js';
import { toAppError } from '../../shared/http-errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** For a CSV body: the line each entry starts on, to name it in errors. */
    knowledgeCsvLines: number[] | null;
  }
}

const MAX_SEARCH_RESULTS = 50;

const SearchQuery = z
  .object({
    q: z.string().max(1000).optional().describe('the question to search with; absent: the entries changed last'),
    limit: z.coerce.number().int().min(1).max(MAX_SEARCH_RESULTS).default(10),
  })
  .strict();

const IdParams = z.object({ id: KnowledgeIdSchema }).strict();

/** An error about `entries.N...` of a CSV body, with the line that entry came from. */
function located(err: AppError, lines: number[] | null): AppError {
  const index = lines && err.param ? /^entries\.(\d+)/.exec(err.param) : null;
  const line = index ? lines![Number(index[1])] : undefined;
  if (line === undefined) return err;
  return new AppError(err.code, `${err.message} (CSV line ${line}); nothing was stored`, { param: err.param });
}

export default async function knowledgeRoutes(app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { knowledge } = app;
  const bodyLimit = app.config.knowledge.adminBodyLimitBytes;

  r.addHook('onRequest', app.requireAdmin);
  r.decorateRequest('knowledgeCsvLines', null);
  r.addContentTypeParser('text/csv', { parseAs: 'buffer', bodyLimit }, async (request: { knowledgeCsvLines: number[] | null }, body: Buffer) => {
    const parsed = await csvKnowledge(body);
    request.knowledgeCsvLines = parsed.lines;
    return parsed.body;
  });

  const storeNote = (change: { store: string; warning?: string }) => ({ store: change.store, ...(change.warning ? { warning: change.warning } : {}) });

  r.post(
    '/admin/knowledge',
    {
      schema: {
        body: KnowledgeBodySchema,
        summary: 'Add knowledge-base entries, or replace those with the same id, on every replica (JSON, or a lawzhidao CSV body as text/csv)',
        tags: ['admin'],
      },
      attachValidation: true,
      bodyLimit,
    },
    async (request, reply) => {
      const lines = request.knowledgeCsvLines;
      if (request.validationError) throw located(toAppError(request.validationError), lines);
      let entries;
      try {
        entries = toKnowledgeEntries(request.body.entries);
      } catch (err) {
        throw err instanceof AppError ? located(err, lines) : err;
      }
      const change = await knowledge.put(entries);
      request.log.info({ entries: entries.length, store: change.store }, 'knowledge entries stored through the admin API');
      return reply.status(201).send({ ids: entries.map((e) => e.id), size: knowledge.kb.size, ...storeNote(change) });
    },
  );

  r.delete(
    '/admin/knowledge/:id',
    { schema: { params: IdParams, summary: 'Delete a knowledge-base entry (of the file or added later) on every replica', tags: ['admin'] } },
    async (request) => {
      const { id } = request.params;
      const change = await knowledge.delete(id);
      if (!change.found) throw new AppError('NOT_FOUND', `no knowledge-base entry ${id}`, { param: 'id' });
      request.log.info({ id, store: change.store }, 'knowledge entry deleted through the admin API');
      return { id, deleted: true, size: knowledge.kb.size, ...storeNote(change) };
    },
  );

  r.get(
    '/admin/knowledge',
    { schema: { querystring: SearchQuery, summary: 'Search the knowledge base (scores as the augmentation and the fallback see them)', tags: ['admin'] } },
    async (request) => {
      const { q, limit } = request.query;
      const kb = knowledge.kb;
      const entries =
        q !== undefined && q.trim() !== ''
          ? kb.search(q, limit).map((m) => ({ ...entryView(m.entry), score: Math.round(m.score * 1000) / 1000 }))
          : kb.latest(limit).map(entryView);
      return { size: kb.size, store: knowledge.store, version: knowledge.version, entries };
    },
  );
}
