/**
 * The operator console: `GET /console` (the page) and `GET /console/assets/<file>` (its scripts,
 * style sheet and icon), served from memory with no token (the page asks for it and holds no
 * data; every data call it makes goes to /admin with the token).
 *
 * Headers written here rather than with @fastify/helmet: they are one fixed set on these two
 * routes only, and helmet's defaults would also have to be switched off for the rest of the
 * gateway (the /docs page runs inline scripts that a global policy would block).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../shared/errors.js';
import { loadConsoleAssets, type ConsoleAsset } from '../console/assets.js';

/** Only our own origin, for everything; no inline script or style, no plugins, no framing. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
} as const;

export default async function consoleRoutes(app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const assets = loadConsoleAssets();
  if (assets.problem) app.log.warn(`operator console: ${assets.problem}; /console will not work`);

  const send = (reply: FastifyReply, asset: ConsoleAsset) => reply.headers(SECURITY_HEADERS).type(asset.type).send(asset.body);

  r.get('/console', { schema: { summary: 'The operator console (a page for browsers; it asks for the admin token)', tags: ['ops'] } }, async (_request, reply) => {
    if (assets.problem) throw new AppError('INTERNAL', `the operator console is not available: ${assets.problem}`);
    return send(reply, assets.page);
  });

  r.get(
    '/console/assets/:file',
    { schema: { hide: true, params: z.object({ file: z.string().max(64) }) } },
    async (request, reply) => {
      const asset = assets.files.get(request.params.file);
      if (!asset) {
        reply.headers(SECURITY_HEADERS);
        throw new AppError('NOT_FOUND', 'no such console file');
      }
      return send(reply, asset);
    },
  );
}
