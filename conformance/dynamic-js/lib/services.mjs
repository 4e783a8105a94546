// The browser services Dynamic's client needs, for Node: a keychain (session and device keys) and a storage
// adapter, both in memory. The client generates a P-256 session key at init and sends its public key with every
// request; the keychain's contract (compressed public key as hex, P1363 signature as hex) is the client's own
// (`KeychainService` in @dynamic-labs-sdk/client 1.27.1).
import { webcrypto } from 'node:crypto';

const subtle = webcrypto.subtle;
const hex = (bytes) => Buffer.from(new Uint8Array(bytes)).toString('hex');

/** The compressed SEC1 form of an uncompressed P-256 point (0x04 || X || Y). */
function compress(raw) {
  const point = new Uint8Array(raw);
  const out = point.slice(0, 33);
  out[0] = 0x02 | (point[64] & 1);
  return out;
}

/** A `KeychainService` holding its keys in memory. */
export function memoryKeychain() {
  const keys = new Map();
  const remember = async (name, privateKey, publicKey) => {
    const publicKeyHex = hex(compress(await subtle.exportKey('raw', publicKey)));
    keys.set(name, { privateKey, publicKeyHex });
    return publicKeyHex;
  };
  return {
    async generateKey(name) {
      const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      return remember(name, pair.privateKey, pair.publicKey);
    },
    async getPublicKey(name) {
      return keys.get(name)?.publicKeyHex ?? null;
    },
    async hasKey(name) {
      return keys.has(name);
    },
    async importKey(name, jwk) {
      const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
      const privateKey = await subtle.importKey('jwk', jwk, algorithm, false, ['sign']);
      const { crv, kty, x, y } = jwk;
      const publicKey = await subtle.importKey('jwk', { crv, kty, x, y }, algorithm, true, ['verify']);
      return remember(name, privateKey, publicKey);
    },
    async removeKey(name) {
      keys.delete(name);
    },
    async sign(name, message) {
      const key = keys.get(name);
      if (!key) throw new Error(`KeyNotFound: ${name}`);
      const signature = await subtle.sign(
        { name: 'ECDSA', hash: { name: 'SHA-256' } },
        key.privateKey,
        new TextEncoder().encode(message),
      );
      return hex(signature);
    },
  };
}

/** A `StorageAdapter` over a Map: a fresh one per run, so no earlier run's session is restored. */
export function memoryStorage() {
  const map = new Map();
  return {
    getItem: async (key) => (map.has(key) ? map.get(key) : null),
    setItem: async (key, value) => {
      map.set(key, value);
    },
    removeItem: async (key) => {
      map.delete(key);
    },
  };
}
