/**
 * The operator console: polls GET /admin/status every second and shows it, sets the degrade
 * switch through PUT /admin/degrade (which writes Redis, so every replica takes it, as `npm run
 * degrade` does), and searches the knowledge base. Polling rather than server-sent events:
 * EventSource cannot send the bearer token, and one small request a second is nothing to the
 * gateway.
 */
import { api, ApiError, tokenProblem } from './api.js';
import { byId, say } from './dom.js';
import { setUpKnowledge } from './knowledge-view.js';
import { renderStatus } from './status-view.js';
import { loadToken, saveToken } from './token.js';
import type { DegradeAnswer, Status } from './types.js';

const POLL_MS = 1000;

let token = loadToken();
let timer: number | undefined;
/** The operator has touched the degrade selects: the poll stops setting them from the status. */
let choosing = false;

const connection = byId('connection');
const tokenInput = byId<HTMLInputElement>('token');
const mode = byId<HTMLSelectElement>('mode');
const source = byId<HTMLSelectElement>('source');
const degradeMessage = byId('degrade-message');

function schedule(): void {
  window.clearTimeout(timer);
  timer = window.setTimeout(() => void refresh(), POLL_MS);
}

async function refresh(): Promise<void> {
  window.clearTimeout(timer);
  if (!token) {
    document.body.dataset.state = 'no-token';
    say(connection, 'Type the admin token to see the service.', 'info');
    schedule();
    return;
  }
  try {
    const status = await api<Status>('GET', '/admin/status', token);
    renderStatus(status);
    if (!choosing) {
      mode.value = status.degrade.mode;
      source.value = status.degrade.source;
    }
    document.body.dataset.state = 'live';
    say(connection, 'Live: refreshed every second.', 'ok');
  } catch (err) {
    document.body.dataset.state = 'error';
    say(connection, `Cannot read the status: ${err instanceof ApiError ? err.describe() : String(err)}`, 'error');
  } finally {
    schedule();
  }
}

tokenInput.value = token;
byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const typed = tokenInput.value.trim();
  const problem = typed ? tokenProblem(typed) : null;
  if (problem) {
    say(connection, problem, 'error');
    return;
  }
  token = typed;
  saveToken(token);
  void refresh();
});
byId('forget').addEventListener('click', () => {
  token = '';
  tokenInput.value = '';
  saveToken('');
  void refresh();
});

for (const select of [mode, source]) select.addEventListener('change', () => (choosing = true));

byId<HTMLFormElement>('degrade-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const wanted = { mode: mode.value, source: source.value };
  say(degradeMessage, `Setting ${wanted.mode} / ${wanted.source}…`, 'info');
  api<DegradeAnswer>('PUT', '/admin/degrade', token, { ...wanted, updated_by: 'console' }).then(
    (answer) => {
      choosing = false;
      say(degradeMessage, answer.warning ?? `Applied: ${answer.mode} / ${answer.source}, on every replica within a second.`, answer.warning ? 'error' : 'ok');
      void refresh();
    },
    (err: unknown) => say(degradeMessage, `Not applied: ${err instanceof ApiError ? err.describe() : String(err)}`, 'error'),
  );
});

setUpKnowledge(() => token);
void refresh();
