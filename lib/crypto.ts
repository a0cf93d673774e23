import {
  createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hash,
  hkdfSync, randomBytes, timingSafeEqual, type KeyObject
} from 'node:crypto'

/** 32 random bytes (256 bits, above the 2^-160 guessing bound of OAuth 2.1 §7.7), base64url. */
export function randomToken (prefix = ''): string {
  return prefix + randomBytes(32).toString('base64url')
}

/**
 * The id under which a secret (token, code, client secret) is stored: its SHA-256, never the secret.
 * One-shot `crypto.hash` (Node ≥ 20.12): a quarter of createHash's cost, and it runs on every /mcp request.
 */
export function hashSecret (secret: string): string {
  return hash('sha256', secret, 'base64url')
}

/**
 * Compares two strings in time that depends only on their lengths' hash, not on where they differ:
 * both sides are hashed first, so lengths leak nothing either.
 */
export function safeEqual (a: string, b: string): boolean {
  return timingSafeEqual(hash('sha256', a, 'buffer'), hash('sha256', b, 'buffer'))
}

/** Derives a purpose-bound 32-byte key from the operator's secret (HKDF-SHA256). */
export function deriveKey (secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'mcp-oauth-gateway', purpose, 32))
}

const SEALED_VERSION = 'v1'

/**
 * AES-256-GCM. The output is `v1.<iv>.<ciphertext+tag>`; `aad` binds the ciphertext to its record
 * (a grant id), so a sealed value cannot be moved to another record.
 */
export function seal (key: Buffer, plaintext: string, aad: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return `${SEALED_VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`
}

/** Opens what `seal` made with one of `keys` (the first that authenticates). Throws when none does. */
export function unseal (keys: readonly Buffer[], sealed: string, aad: string): string {
  const [version, iv, body] = sealed.split('.')
  if (version !== SEALED_VERSION || iv === undefined || body === undefined) throw new Error('not a sealed value')
  const raw = Buffer.from(body, 'base64url')
  if (raw.length < 16) throw new Error('not a sealed value')
  for (const key of keys) {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
      decipher.setAAD(Buffer.from(aad))
      decipher.setAuthTag(raw.subarray(raw.length - 16))
      return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      // wrong key or tampered: try the next key
    }
  }
  throw new Error('sealed value does not authenticate')
}

/*
 * Sealing to a public key (X25519, HKDF-SHA256, AES-256-GCM: ECIES in the shape of HPKE's base mode), for
 * upstream tokens shared by several grants: whoever renews the tokens can seal them for every grant that
 * holds them, and only each grant's own key opens its copy.
 */

const SEALED_TO_VERSION = 'x1'
// The fixed PKCS#8 header of a raw X25519 private key (RFC 8410): how Node takes one without its public half.
const X25519_PKCS8_HEADER = Buffer.from('302e020100300506032b656e04220420', 'hex')

/** The X25519 public key a grant's 32-byte key stands for (the private key is derived, so nothing else is stored). */
export function holderPublicKey (grantKey: Buffer): string {
  const der = Buffer.concat([X25519_PKCS8_HEADER, holderSecret(grantKey)])
  return rawPublicKey(createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })))
}

/** Seals `plaintext` so that only the holder of `publicKey`'s private key opens it; `aad` binds it to its record. */
export function sealTo (publicKey: string, plaintext: string, aad: string): string {
  const ephemeral = generateKeyPairSync('x25519')
  const ephemeralPublic = rawPublicKey(ephemeral.publicKey)
  const key = sharedKey(ephemeral.privateKey, publicKey, ephemeralPublic, publicKey)
  return `${SEALED_TO_VERSION}.${ephemeralPublic}.${seal(key, plaintext, aad)}`
}

/**
 * Opens what sealTo() sealed to the public key of `grantKey` (given too: importing a key with its public half is
 * ten times faster than deriving it, and this runs on every token-cache miss). Throws when it does not authenticate.
 */
export function openSealedTo (grantKey: Buffer, publicKey: string, sealed: string, aad: string): string {
  const [version, ephemeralPublic] = sealed.split('.', 2)
  if (version !== SEALED_TO_VERSION || ephemeralPublic === undefined) throw new Error('not a sealed value')
  const inner = sealed.slice(version.length + ephemeralPublic.length + 2)
  const d = holderSecret(grantKey).toString('base64url')
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: publicKey }, format: 'jwk' })
  return unseal([sharedKey(privateKey, ephemeralPublic, ephemeralPublic, publicKey)], inner, aad)
}

/** A grant's X25519 private key: derived from its key, so that key never serves two purposes. */
function holderSecret (grantKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', grantKey, '', 'mcp-oauth-gateway upstream holder', 32))
}

/**
 * The AES key both sides derive: HKDF over the X25519 secret, salted with both public keys (the sender's
 * ephemeral one first), so a key is bound to the exchange it came from.
 */
function sharedKey (
  privateKey: KeyObject,
  peerPublic: string,
  ephemeralPublic: string,
  recipientPublic: string
): Buffer {
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerPublic }, format: 'jwk' })
  const secret = diffieHellman({ privateKey, publicKey })
  const salt = Buffer.concat([Buffer.from(ephemeralPublic, 'base64url'), Buffer.from(recipientPublic, 'base64url')])
  return Buffer.from(hkdfSync('sha256', secret, salt, 'mcp-oauth-gateway sealed-to', 32))
}

function rawPublicKey (publicKey: KeyObject): string {
  return publicKey.export({ format: 'jwk' }).x as string
}
