// An external EVM wallet for Dynamic's client in Node: a `WalletProvider` registered in the client's registry,
// signing with a local secp256k1 key (EIP-191 personal_sign). The server recovers the signer from the signature.
import { randomBytes } from 'node:crypto';

import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { formatWalletProviderKey, getWalletProviderRegistry, WalletProviderPriority } from '@dynamic-labs-sdk/client/core';

const hex = (bytes) => Buffer.from(bytes).toString('hex');

/** EIP-191 `personal_sign`: 65 bytes r || s || v (v = 27/28) as 0x-hex. */
function personalSign(key, message) {
  const body = new TextEncoder().encode(message);
  const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${body.length}`);
  const digest = keccak_256(new Uint8Array([...prefix, ...body]));
  const signature = secp256k1.sign(digest, key, { prehash: false, format: 'recovered' });
  return `0x${hex(signature.slice(1, 65))}${(27 + signature[0]).toString(16)}`;
}

/** A wallet named `displayName` with a fresh key, registered with `client`. */
export function localEvmWallet(client, displayName) {
  const key = randomBytes(32);
  const address = `0x${hex(keccak_256(secp256k1.getPublicKey(key, false).slice(1)).slice(-20))}`;
  const providerKey = formatWalletProviderKey({ chain: 'EVM', displayName, walletProviderType: 'browserExtension' });
  const signed = [];
  const walletProvider = {
    chain: 'EVM',
    groupKey: providerKey.split(':')[0],
    key: providerKey,
    walletProviderType: 'browserExtension',
    metadata: { displayName, icon: '' },
    connect: async () => ({ addresses: [{ address }] }),
    getConnectedAddresses: async () => ({ addresses: [address] }),
    getActiveNetworkId: async () => ({ networkId: '1' }),
    signMessage: async ({ message }) => {
      signed.push(message);
      return { signature: personalSign(key, message) };
    },
  };
  getWalletProviderRegistry(client).register({ priority: WalletProviderPriority.WALLET_SDK, walletProvider });
  return { address, providerKey, signed };
}
