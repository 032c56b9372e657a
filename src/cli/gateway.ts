/**
 * `node dist/src/cli/gateway.js`: the gateway alone, with workers from `GATEWAY_WORKERS_URLS`
 * or `GATEWAY_WORKERS_DNS` (Kubernetes, compose). Configuration: see README (prefix GATEWAY).
 */
import { ConfigError } from '../shared/config.js';
import { loadGatewayConfig } from '../gateway/config.js';
import { serve } from '../gateway/server.js';

try {
  const config = loadGatewayConfig();
  await serve(config);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
