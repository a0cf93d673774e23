import t from 'tap'
import { deriveKey, hashSecret, randomToken, safeEqual, seal, unseal } from '../../lib/crypto.js'
import { CODE_VERIFIER_PATTERN, S256_CHALLENGE_PATTERN, createPkcePair, s256, verifyS256 } from '../../lib/pkce.js'

const SECRET = 'test-secret-that-is-at-least-32-characters-long'
const OTHER_SECRET = 'another-secret-that-is-at-least-32-characters'

/** Flips one base64url character of `text` at `index` into a different valid one. */
function flip (text: string, index: number): string {
  const c = text[index]
  return text.slice(0, index) + (c === 'A' ? 'B' : 'A') + text.slice(index + 1)
}

t.test('OAuth 2.1 §7.7 randomToken: 256 bits as 43 base64url characters after the prefix, unique', async (t) => {
  const plain = randomToken()
  t.match(plain, /^[A-Za-z0-9_-]{43}$/)
  for (const prefix of ['gwa_', 'gwr_', 'gws_', 'gwc_']) {
    const token = randomToken(prefix)
    t.equal(token.length, prefix.length + 43, prefix)
    t.ok(token.startsWith(prefix), prefix)
    t.match(token.slice(prefix.length), /^[A-Za-z0-9_-]{43}$/, prefix)
    t.equal(Buffer.from(token.slice(prefix.length), 'base64url').length, 32, `${prefix}: 32 bytes`)
  }
  const many = new Set(Array.from({ length: 1000 }, () => randomToken('x_')))
  t.equal(many.size, 1000, 'no collisions in 1000 draws')
})

t.test('OAuth 2.1 §4.3.1 / BCP §4.14 hashSecret: SHA-256 base64url, deterministic, never the secret itself', async (t) => {
  t.equal(hashSecret('abc'), 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0', 'FIPS 180-2 "abc" vector, base64url')
  const token = randomToken('gwr_')
  t.equal(hashSecret(token), hashSecret(token), 'deterministic')
  t.not(hashSecret(token), token)
  t.not(hashSecret(token), hashSecret(token + 'x'))
  t.match(hashSecret(''), /^[A-Za-z0-9_-]{43}$/)
})

t.test('BCP §2.5 / RFC 7636 §4.6 safeEqual: equal strings only, any lengths, no throw', async (t) => {
  t.equal(safeEqual('abc', 'abc'), true)
  t.equal(safeEqual('', ''), true)
  t.equal(safeEqual('abc', 'abd'), false)
  t.equal(safeEqual('abc', 'ab'), false, 'different lengths do not throw (timingSafeEqual would)')
  t.equal(safeEqual('', 'a'), false)
  t.equal(safeEqual('é', 'e\u0301'), false, 'no Unicode normalisation')
  const secret = randomToken()
  t.equal(safeEqual(secret, `${secret}`), true)
})

t.test('deriveKey (HKDF-SHA256): 32 bytes, deterministic, separated by purpose and by secret', async (t) => {
  const key = deriveKey(SECRET, 'upstream-token-seal')
  t.ok(Buffer.isBuffer(key))
  t.equal(key.length, 32)
  t.equal(key.toString('hex'), '49e0bf86cb702d63694cea611a045474395de28528aa17c854d076618a5cf926', 'pinned: a change would make every sealed upstream token unreadable after an upgrade')
  t.ok(deriveKey(SECRET, 'upstream-token-seal').equals(key), 'deterministic')
  t.notOk(deriveKey(SECRET, 'cookie-signing').equals(key), 'another purpose, another key')
  t.notOk(deriveKey(OTHER_SECRET, 'upstream-token-seal').equals(key), 'another secret, another key')
  t.notOk(deriveKey(SECRET, 'upstream-token-seal ').equals(key), 'purposes compare exactly')
})

t.test('seal/unseal (AES-256-GCM): round trip, v1.<iv>.<body> format, fresh IV each time', async (t) => {
  const key = deriveKey(SECRET, 'upstream-token-seal')
  for (const plaintext of ['gho_upstreamAccessToken123', '', 'ünïcødé ✓', JSON.stringify({ access: 'a', refresh: 'r' }), 'x'.repeat(10_000)]) {
    const sealed = seal(key, plaintext, 'grant:g1')
    t.match(sealed, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/)
    t.notOk(plaintext.length > 4 && sealed.includes(plaintext), 'plaintext not visible')
    t.equal(unseal([key], sealed, 'grant:g1'), plaintext)
  }
  const a = seal(key, 'same', 'aad')
  const b = seal(key, 'same', 'aad')
  t.not(a, b, 'a random 96-bit IV per seal')
  t.not(a.split('.')[1], b.split('.')[1])
})

t.test('seal/unseal: the AAD binds the ciphertext to its record; a wrong AAD fails', async (t) => {
  const key = deriveKey(SECRET, 'upstream-token-seal')
  const sealed = seal(key, 'gho_token', 'grant:g1')
  t.throws(() => unseal([key], sealed, 'grant:g2'), { message: 'sealed value does not authenticate' })
  t.throws(() => unseal([key], sealed, ''), { message: 'sealed value does not authenticate' })
  t.throws(() => unseal([key], sealed, 'grant:g1 '), { message: 'sealed value does not authenticate' })
})

t.test('seal/unseal: any tampering with IV, ciphertext or tag fails to authenticate', async (t) => {
  const key = deriveKey(SECRET, 'upstream-token-seal')
  const sealed = seal(key, 'gho_token_value', 'aad')
  const [version, iv, body] = sealed.split('.') as [string, string, string]
  const tampered = [
    `${version}.${flip(iv, 0)}.${body}`,
    `${version}.${iv}.${flip(body, 0)}`,
    `${version}.${iv}.${flip(body, body.length - 2)}`,
    `${version}.${iv}.${body.slice(0, -4)}`,
    `${version}.${iv}.${body}AAAA`,
    `${version}.${iv.slice(0, 8)}.${body}`,
    `${version}..${body}`
  ]
  for (const value of tampered) {
    t.throws(() => unseal([key], value, 'aad'), { message: 'sealed value does not authenticate' }, value)
  }
})

t.test('seal/unseal: key rotation, sealed with the old key, opened with [new, old]; not with [new] alone', async (t) => {
  const oldKey = deriveKey(OTHER_SECRET, 'upstream-token-seal')
  const newKey = deriveKey(SECRET, 'upstream-token-seal')
  const sealedOld = seal(oldKey, 'old-token', 'aad')
  t.equal(unseal([newKey, oldKey], sealedOld, 'aad'), 'old-token')
  t.equal(unseal([oldKey, newKey], sealedOld, 'aad'), 'old-token')
  t.throws(() => unseal([newKey], sealedOld, 'aad'), { message: 'sealed value does not authenticate' })
  t.throws(() => unseal([], sealedOld, 'aad'), { message: 'sealed value does not authenticate' }, 'no keys')
  const sealedNew = seal(newKey, 'new-token', 'aad')
  t.equal(unseal([newKey, oldKey], sealedNew, 'aad'), 'new-token')
  t.throws(() => unseal([deriveKey(SECRET, 'another-purpose')], sealedNew, 'aad'), { message: 'sealed value does not authenticate' }, 'a key for another purpose')
})

t.test('unseal: malformed input throws "not a sealed value"', async (t) => {
  const key = deriveKey(SECRET, 'upstream-token-seal')
  const good = seal(key, 'x', 'aad')
  const [, iv] = good.split('.') as [string, string, string]
  for (const value of ['', 'garbage', 'v1', 'v1.', `v1.${iv}`, `v2.${iv}.${good.split('.')[2] as string}`, `V1.${iv}.${good.split('.')[2] as string}`, `v1.${iv}.AAAA`, `v1.${iv}.`, '..']) {
    t.throws(() => unseal([key], value, 'aad'), { message: 'not a sealed value' }, JSON.stringify(value))
  }
})

t.test('RFC 7636 Appendix B: verifyS256 accepts the published verifier/challenge pair', async (t) => {
  const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
  const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
  t.equal(s256(verifier), challenge)
  t.equal(verifyS256(verifier, challenge), true)
  t.equal(verifyS256(verifier, flip(challenge, 0)), false, 'another challenge')
  t.equal(verifyS256(flip(verifier, 0), challenge), false, 'another verifier')
  t.equal(verifyS256(verifier, `${challenge}=`), false, 'padded challenge')
  t.equal(verifyS256(verifier, verifier), false, 'plain method is not S256')
})

t.test('RFC 7636 §4.1: malformed verifiers are refused even when the challenge is their own hash', async (t) => {
  const valid43 = 'a'.repeat(43)
  const cases: Array<[string, string]> = [
    ['a'.repeat(42), '42 characters'],
    ['a'.repeat(129), '129 characters'],
    ['', 'empty'],
    [`${'a'.repeat(42)}+`, '"+" is not unreserved'],
    [`${'a'.repeat(42)}/`, '"/"'],
    [`${'a'.repeat(42)}=`, '"="'],
    [`${'a'.repeat(42)} `, 'space'],
    [`${'a'.repeat(42)}\n`, 'newline'],
    [`${'a'.repeat(42)}é`, 'non-ASCII']
  ]
  for (const [verifier, why] of cases) {
    t.equal(verifyS256(verifier, s256(verifier)), false, why)
  }
  t.equal(verifyS256(valid43, s256(valid43)), true, '43 characters is the minimum')
  const max = `${'A'.repeat(124)}-._~`
  t.equal(max.length, 128)
  t.equal(verifyS256(max, s256(max)), true, '128 characters, all four unreserved symbols')
})

t.test('RFC 7636 §4.1/§4.2: the exported patterns and createPkcePair', async (t) => {
  const verifier = new RegExp(CODE_VERIFIER_PATTERN)
  const challenge = new RegExp(S256_CHALLENGE_PATTERN)
  const pairs = Array.from({ length: 20 }, () => createPkcePair())
  for (const pair of pairs) {
    t.match(pair.verifier, verifier)
    t.equal(pair.verifier.length, 64, '48 random bytes')
    t.match(pair.challenge, challenge)
    t.equal(pair.challenge, s256(pair.verifier))
    t.equal(verifyS256(pair.verifier, pair.challenge), true)
  }
  t.equal(new Set(pairs.map((p) => p.verifier)).size, 20, 'fresh each time')
  t.notOk(challenge.test('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c'), '42-character challenge')
  t.notOk(challenge.test('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM='), 'padded challenge')
})
