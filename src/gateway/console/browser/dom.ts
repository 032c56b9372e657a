/**
 * Building the page's parts. Every text goes in through textContent (or an attribute value),
 * never as HTML: worker names, error messages and knowledge entries come from outside.
 */

export function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** A definition list from label → value pairs. */
export function fillPairs(dl: HTMLElement, pairs: Array<[string, string]>): void {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', k), el('dd', v)]));
}

/** A list of `key: n` lines, biggest first, or one line saying there is nothing. */
export function fillCounts(list: HTMLElement, counts: Record<string, number>, empty: string): void {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (entries.length === 0) {
    list.replaceChildren(el('li', empty, 'empty'));
    return;
  }
  list.replaceChildren(
    ...entries.map(([key, n]) => {
      const li = el('li');
      li.append(el('span', key, 'key'), el('span', String(n), 'count'));
      return li;
    }),
  );
}

/** A message in one of the page's message lines; `kind` error makes it an alert. */
export function say(node: HTMLElement, text: string, kind: 'ok' | 'error' | 'info' = 'info'): void {
  node.textContent = text;
  node.className = `message ${kind}`;
  node.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}
