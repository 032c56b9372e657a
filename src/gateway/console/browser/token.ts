/** The admin token, kept for this tab only (sessionStorage): gone when the tab closes, never in a cookie or the page. */

const KEY = 'glm-legal-serve.console.admin-token';

export function loadToken(): string {
  try {
    return sessionStorage.getItem(KEY) ?? '';
  } catch {
    return '';
  }
}

export function saveToken(token: string): void {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage refused (private mode, quota): the token holds for this page only.
  }
}
