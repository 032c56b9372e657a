/**
 * Logger options shared by the gateway and the worker (Fastify's pino). API keys and the admin
 * token never reach a log line: the authorization headers are redacted wherever they appear.
 * Prompts and answers are not logged at all unless a process's config says so.
 */
import type { BaseLogger, LoggerOptions } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function loggerOptions(level: LogLevel, name: string): LoggerOptions {
  return {
    level,
    name,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'headers.authorization',
        'headers["x-api-key"]',
        'apiKey',
        'adminToken',
      ],
      censor: '[redacted]',
    },
  };
}

/**
 * The logger every module takes: pino's, which is also Fastify's (`app.log`, `request.log`).
 * Only the levels the modules use, so that a test can pass a quiet one.
 */
export type Logger = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;
