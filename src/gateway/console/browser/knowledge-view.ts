/**
 * The knowledge base: search (GET /admin/knowledge), delete an entry (DELETE
 * /admin/knowledge/{id}) and add one (POST /admin/knowledge, an id made by the gateway). A
 * refusal is shown as the API gave it.
 */
import { api, ApiError } from './api.js';
import { byId, el, say } from './dom.js';
import type { KnowledgeHit } from './types.js';

const RESULTS = 20;

export function setUpKnowledge(token: () => string): void {
  const results = byId('kb-results');
  const message = byId('kb-message');
  const fail = (err: unknown) => say(message, err instanceof ApiError ? err.describe() : String(err), 'error');

  byId<HTMLFormElement>('kb-search').addEventListener('submit', (event) => {
    event.preventDefault();
    const q = byId<HTMLInputElement>('kb-query').value.trim();
    if (!q) {
      say(message, 'Type words to look for.', 'error');
      return;
    }
    api<{ entries: KnowledgeHit[] }>('GET', `/admin/knowledge?q=${encodeURIComponent(q)}&limit=${RESULTS}`, token()).then(
      ({ entries }) => {
        results.replaceChildren(...entries.map((hit) => entryItem(hit, token, message, fail)));
        say(message, entries.length === 0 ? 'No entry matches.' : entries.length === 1 ? '1 entry.' : `${entries.length} entries, best first.`, 'info');
      },
      fail,
    );
  });

  byId<HTMLFormElement>('kb-add').addEventListener('submit', (event) => {
    event.preventDefault();
    const question = byId<HTMLInputElement>('kb-new-question').value.trim();
    const answer = byId<HTMLTextAreaElement>('kb-new-answer').value.trim();
    if (!question || !answer) {
      say(message, 'A new entry needs a question and an answer.', 'error');
      return;
    }
    api<{ ids: string[] }>('POST', '/admin/knowledge', token(), { entries: [{ question, answer }] }).then(
      (added) => say(message, `Added entry ${added.ids[0]}.`, 'ok'),
      fail,
    );
  });
}

function entryItem(hit: KnowledgeHit, token: () => string, message: HTMLElement, fail: (err: unknown) => void): HTMLLIElement {
  const li = el('li', undefined, 'entry');
  const remove = el('button', 'Delete');
  remove.type = 'button';
  remove.setAttribute('aria-label', `Delete entry ${hit.id}`);
  remove.addEventListener('click', () => {
    api<unknown>('DELETE', `/admin/knowledge/${encodeURIComponent(hit.id)}`, token()).then(() => {
      li.remove();
      say(message, `Deleted entry ${hit.id}.`, 'ok');
    }, fail);
  });
  li.append(el('h3', hit.question));
  if (hit.detail) li.append(el('p', hit.detail, 'detail'));
  li.append(el('p', hit.answer, 'answer'), el('small', hit.score === undefined ? hit.id : `${hit.id} · score ${hit.score}`), remove);
  return li;
}
