/** The admin API as the page calls it: the bearer token on every call, errors as the API words them. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** The error as the page shows it: the API's message, its code and the HTTP status. */
  describe(): string {
    return this.status === 0 ? this.message : `${this.message} (${this.code}, HTTP ${this.status})`;
  }
}

/** What the gateway accepts as a token (auth.ts): printable ASCII without spaces, at most 256 characters. */
const TOKEN_PATTERN = /^[\x21-\x7e]{1,256}$/;

export function tokenProblem(token: string): string | null {
  return TOKEN_PATTERN.test(token) ? null : 'The admin token is 1 to 256 printable ASCII characters without spaces.';
}

export async function api<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, token: string, body?: unknown): Promise<T> {
  const problem = tokenProblem(token);
  if (problem) throw new ApiError(0, 'bad_token', problem);
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, cache: 'no-store', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (err) {
    throw new ApiError(0, 'unreachable', `The gateway did not answer: ${(err as Error).message}`);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: the status and the text say what happened.
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof e?.code === 'string' ? e.code : `http_${res.status}`;
    const message = typeof e?.message === 'string' ? e.message : text.slice(0, 200) || res.statusText;
    throw new ApiError(res.status, code, message);
  }
  return json as T;
}
