import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminAuth, ApiKeyAuth, presentedKey, sha256Hex } from '../../../../src/gateway/plugins/auth.js';
import { AppError } from '../../../../src/shared/errors.js';

const KEY = 'sk-live-abc123';
const keys = [{ sha256: sha256Hex(KEY), tenant: 'acme', tier: 'pro' }];

function code(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    assert.ok(err instanceof AppError);
    return err.code;
  }
}

test('a configured key maps to its tenant; Bearer and x-api-key both work', () => {
  const auth = new ApiKeyAuth(keys, { enabled: false, tier: 'anon' });
  assert.deepEqual(auth.authenticate(`Bearer ${KEY}`, undefined, '10.0.0.1'), { name: 'acme', tier: 'pro', anonymous: false });
  assert.deepEqual(auth.authenticate(`bearer ${KEY}`, undefined, '10.0.0.1').name, 'acme');
  assert.deepEqual(auth.authenticate(undefined, KEY, '10.0.0.1').name, 'acme');
  // Cached: the same tenant object comes back.
  assert.equal(auth.authenticate(`Bearer ${KEY}`, undefined, 'x'), auth.authenticate(`Bearer ${KEY}`, undefined, 'y'));
});

test('hostile and unknown keys are one and the same 401', () => {
  const auth = new ApiKeyAuth(keys, { enabled: true, tier: 'anon' });
  const hostile = [
    'Bearer ',
    'Bearer sk-unknown',
    `Bearer ${'a'.repeat(257)}`,
    'Bearer {tenant}:x',
    'Bearer key with spaces',
    'Bearer ke\u0000y',
    'Bearer 密钥',
    'Basic dXNlcjpwYXNz',
    'Token abc',
    sha256Hex(KEY),
  ];
  for (const h of hostile) assert.equal(code(() => auth.authenticate(h, undefined, '1.2.3.4')), 'INVALID_API_KEY', JSON.stringify(h));
  assert.equal(code(() => auth.authenticate(undefined, ['a', 'b'], '1.2.3.4')), 'INVALID_API_KEY');
  assert.equal(code(() => auth.authenticate(undefined, 'sk-unknown', '1.2.3.4')), 'INVALID_API_KEY');
});

test('anonymous callers are named by their address only, and only when allowed', () => {
  const closed = new ApiKeyAuth(keys, { enabled: false, tier: 'anon' });
  assert.equal(code(() => closed.authenticate(undefined, undefined, '1.2.3.4')), 'INVALID_API_KEY');
  const open = new ApiKeyAuth(keys, { enabled: true, tier: 'free' });
  assert.deepEqual(open.authenticate(undefined, undefined, '1.2.3.4'), { name: 'anon:1.2.3.4', tier: 'free', anonymous: true });
  assert.equal(presentedKey(undefined, undefined), undefined);
});

test('with anonymous access on and no keys configured, any well-formed presented key is an anonymous caller', () => {
  const open = new ApiKeyAuth([], { enabled: true, tier: 'free' });
  const anon = { name: 'anon:1.2.3.4', tier: 'free', anonymous: true };
  // What the official openai client sends with `apiKey: 'none'`, and any other key.
  assert.deepEqual(open.authenticate('Bearer none', undefined, '1.2.3.4'), anon);
  assert.deepEqual(open.authenticate('Bearer sk-whatever', undefined, '1.2.3.4'), anon);
  assert.deepEqual(open.authenticate(undefined, 'sk-whatever', '1.2.3.4'), anon);
  // A header that is not a bearer credential is still refused.
  assert.equal(code(() => open.authenticate('Basic dXNlcjpwYXNz', undefined, '1.2.3.4')), 'INVALID_API_KEY');
  // No anonymous access: a key with nothing to match is a 401.
  assert.equal(code(() => new ApiKeyAuth([], { enabled: false, tier: 'free' }).authenticate('Bearer none', undefined, '1.2.3.4')), 'INVALID_API_KEY');
  // Keys configured: an unknown key is a 401 again, anonymous access or not.
  assert.equal(code(() => new ApiKeyAuth(keys, { enabled: true, tier: 'free' }).authenticate('Bearer none', undefined, '1.2.3.4')), 'INVALID_API_KEY');
});

test('the admin token is checked against its hash', () => {
  assert.equal(code(() => new AdminAuth(undefined).check('Bearer x')), 'FORBIDDEN');
  const admin = new AdminAuth(sha256Hex('s3cret-token'));
  assert.equal(code(() => admin.check('Bearer s3cret-token')), null);
  for (const h of [undefined, 'Bearer s3cret-tokeN', 'Bearer ', 's3cret-token', `Bearer ${'x'.repeat(10_000)}`]) {
    assert.equal(code(() => admin.check(h)), 'INVALID_API_KEY', String(h).slice(0, 30));
  }
});
