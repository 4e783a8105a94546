// Dynamic's published JS client (@dynamic-labs-sdk/client 1.27.1, unchanged) against stepup-server serve --dev.
//
// Every step calls the client's own functions and checks what it made of the server's answers: above all that
// the client is still signed in after each step-up (it replaces its session with every verify answer's
// `minifiedJwt`), and that each elevated token opens the protected resource. The first failing step ends the run
// with exit code 1; each step prints `ok - <step>` or `not ok - <step>: <why>` (TAP-like), which the Rust test
// (tests/server/dynamic_js.rs) shows when it fails.
//
// Environment: STEPUP_BASE_URL (http://127.0.0.1:PORT), STEPUP_ENVIRONMENT_ID, STEPUP_ADMIN_TOKEN,
// STEPUP_BACKEND_KEY (the app backend's Ed25519 private key, PEM), STEPUP_BACKEND_ISSUER.
import * as sdk from '@dynamic-labs-sdk/client';

import { admin } from './lib/admin.mjs';
import { backend } from './lib/backend.mjs';
import { softwarePasskey } from './lib/passkey.mjs';
import { memoryKeychain, memoryStorage } from './lib/services.mjs';
import { currentStep, totpAt } from './lib/totp.mjs';
import { localEvmWallet } from './lib/wallet.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const baseUrl = env('STEPUP_BASE_URL');
const environmentId = env('STEPUP_ENVIRONMENT_ID');
const server = admin({ baseUrl, environmentId, token: env('STEPUP_ADMIN_TOKEN') });
const app = backend({ keyPath: env('STEPUP_BACKEND_KEY'), issuer: env('STEPUP_BACKEND_ISSUER'), audience: environmentId });

// The client leaves promises running in the background; one that fails must fail the run, not vanish.
process.on('unhandledRejection', (error) => {
  console.log(`not ok - unhandled rejection in the client: ${error?.stack ?? error}`);
  process.exit(1);
});

let failed = false;
async function step(name, body) {
  try {
    const detail = await body();
    console.log(`ok - ${name}${detail ? ` (${detail})` : ''}`);
  } catch (error) {
    failed = true;
    console.log(`not ok - ${name}: ${error?.stack ?? error}`);
    throw error;
  }
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}
function equal(actual, expected, what) {
  check(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
async function rejects(promise, errorClass, what) {
  try {
    await promise;
  } catch (error) {
    check(error instanceof errorClass, `${what}: expected ${errorClass.name}, got ${error?.name}: ${error?.message}`);
    return error;
  }
  throw new Error(`${what}: expected ${errorClass.name}, but it succeeded`);
}

/** A client as a Node app makes one: no window, so fetch, storage, keychain and passkeys are injected. */
function newClient(passkey) {
  return sdk.createDynamicClient({
    environmentId,
    autoInitialize: false,
    logLevel: 'error',
    // The wallet message's domain and URI come from here; the dev environment's app is http://localhost.
    metadata: { universalLink: 'http://localhost', name: 'Stepup Conformance' },
    coreConfig: {
      apiBaseUrl: baseUrl,
      fetch: globalThis.fetch,
      storageAdapter: memoryStorage(),
      keychain: memoryKeychain(),
      passkey,
    },
  });
}

/** The client is signed in as `userId`, and the session it holds is one the server accepts. */
async function signedIn(client, userId) {
  check(client.user, 'the client has no user: it signed out');
  equal(client.user.id, userId, 'the client user');
  check(client.token, 'the client holds no session token');
  const response = await fetch(`${baseUrl}/sdk/${environmentId}/users`, {
    headers: { authorization: `Bearer ${client.token}` },
  });
  equal(response.status, 200, "GET /users with the client's session");
}

/** Calls the protected resource for `scope` with the client's session and its elevated token for the scope. */
async function openProtected(client, scope) {
  const token = sdk.getElevatedAccessToken({ scope }, client);
  check(token, `the client holds no elevated token for ${scope}`);
  const response = await fetch(`${baseUrl}/sdk/${environmentId}/protected/${scope}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${client.token}`, 'x-dyn-elevated-access-token': token },
  });
  const body = await response.text();
  equal(response.status, 200, `the protected ${scope} resource (${body})`);
  return JSON.parse(body);
}

/** Sends a code by `send` and answers it with `verifyOTP` (optionally for scopes). */
async function otp(client, send, to, requestedScopes) {
  const verification = await send();
  const verificationToken = await server.codeFor(to, verification.verificationUUID);
  return sdk.verifyOTP({ otpVerification: verification, verificationToken, requestedScopes }, client);
}

/** TOTP codes are accepted one step apart, each step once: hand out fresh steps without waiting 30 s. */
function totpSteps(secret) {
  let last = -Infinity;
  return () => {
    const step = Math.max(last + 1, currentStep() - 1);
    last = step;
    return totpAt(secret, step);
  };
}

async function withMfaPerson() {
  const passkey = softwarePasskey({ origin: 'http://localhost' });
  const client = newClient(passkey);
  const email = `dynamic-js-${Date.now()}@example.com`;
  let userId;
  let device;
  let nextCode;
  let recoveryCodes;

  await step('initializeClient reads /settings', async () => {
    await sdk.initializeClient(client);
    equal(client.initStatus, 'finished', 'initStatus');
    check(client.projectSettings?.security?.mfa, 'security.mfa in the project settings');
    return `MFA methods ${JSON.stringify(client.projectSettings.security.mfa.availableMethods)}`;
  });

  await step('sign-in by email OTP (sendEmailOTP + verifyOTP)', async () => {
    await otp(client, () => sdk.sendEmailOTP({ email }, client), email);
    check(client.user, 'signed in');
    userId = client.user.id;
    await signedIn(client, userId);
  });

  await step('checkStepUpAuth: credential:link needs step-up, by email', async () => {
    const check_ = await sdk.checkStepUpAuth({ scope: 'credential:link' }, client);
    equal(check_.isRequired, true, 'isRequired');
    check(check_.credentials.some((c) => c.format === 'email'), `an email credential in ${JSON.stringify(check_)}`);
  });

  await step('verifyOTP with requestedScopes: elevated, still signed in', async () => {
    await otp(client, () => sdk.sendEmailOTP({ email }, client), email, ['credential:link']);
    await signedIn(client, userId);
  });

  await step('getElevatedAccessToken and the protected resource', async () => {
    const token = sdk.getElevatedAccessToken({ scope: 'credential:link', consume: false }, client);
    check(token && token.split('.').length === 3, 'a JWT');
    const body = await openProtected(client, 'credential:link');
    equal(body.amr[0], 'email', 'amr');
    const again = await sdk.checkStepUpAuth({ scope: 'credential:link' }, client);
    equal(again.isRequired, false, 'isRequired while the token is held');
  });

  await step('registerTotpMfaDevice + authenticateTotpMfaDevice', async () => {
    device = await sdk.registerTotpMfaDevice(client);
    check(device.id && device.secret && device.uri.startsWith('otpauth://'), `a device: ${JSON.stringify({ ...device, secret: '…', uri: '…' })}`);
    nextCode = totpSteps(device.secret);
    await sdk.authenticateTotpMfaDevice({ deviceId: device.id, code: nextCode() }, client);
    await signedIn(client, userId);
  });

  await step('a wrong TOTP code is MfaInvalidOtpError', async () => {
    const wrong = String((Number(totpAt(device.secret, currentStep())) + 1) % 1_000_000).padStart(6, '0');
    await rejects(sdk.authenticateTotpMfaDevice({ deviceId: device.id, code: wrong }, client), sdk.MfaInvalidOtpError, 'a wrong code');
    await signedIn(client, userId);
  });

  await step('getMfaMethods, getMfaDevices, setDefaultMfaDevice', async () => {
    const methods = await sdk.getMfaMethods(client);
    equal(methods.userHasVerifiedMfaMethods, true, 'userHasVerifiedMfaMethods');
    equal(methods.devices.length, 1, 'devices');
    const devices = await sdk.getMfaDevices(client);
    equal(devices.length, 1, 'getMfaDevices');
    equal(devices[0].id, device.id, 'the device');
    await sdk.setDefaultMfaDevice({ deviceId: device.id }, client);
    const again = await sdk.getMfaDevices(client);
    equal(again[0]._default, true, 'the default device');
  });

  await step('isMfaRequiredForAction follows the server policy', async () => {
    equal(await sdk.isMfaRequiredForAction({ mfaAction: 'wallet.waas.export' }, client), true, 'wallet.waas.export');
  });

  await step('getMfaRecoveryCodes: ten codes, with the session the TOTP answer re-issued', async () => {
    const answer = await sdk.getMfaRecoveryCodes(client);
    equal(answer.recoveryCodes.length, 10, 'recovery codes');
    recoveryCodes = answer.recoveryCodes;
  });

  await step('TOTP step-up (authenticateTotpMfaDevice with requestedScopes)', async () => {
    const required = await sdk.checkStepUpAuth({ scope: 'wallet:export' }, client);
    equal(required.isRequired, true, 'isRequired');
    check(required.credentials.some((c) => c.format === 'totp'), 'a TOTP credential');
    check(!required.credentials.some((c) => c.format === 'email'), 'no email for a user with MFA');
    await sdk.authenticateTotpMfaDevice({ code: nextCode(), requestedScopes: ['wallet:export'] }, client);
    await signedIn(client, userId);
    const body = await openProtected(client, 'wallet:export');
    equal(body.singleUse, true, 'wallet:export is single-use');
    check(!sdk.getElevatedAccessToken({ scope: 'wallet:export' }, client), 'a single-use token is handed out once');
  });

  await step('a recovery code for a step-up (authenticateMfaRecoveryCode)', async () => {
    await sdk.authenticateMfaRecoveryCode({ code: recoveryCodes[0], requestedScopes: ['user:delete'] }, client);
    await signedIn(client, userId);
    await openProtected(client, 'user:delete');
    await rejects(
      sdk.authenticateMfaRecoveryCode({ code: recoveryCodes[0], requestedScopes: ['user:delete'] }, client),
      sdk.MfaInvalidOtpError,
      'a spent recovery code',
    );
  });

  await step('acknowledgeRecoveryCodes', async () => {
    await sdk.acknowledgeRecoveryCodes(client);
    equal(sdk.isPendingRecoveryCodesAcknowledgment(client), false, 'pending acknowledgement');
    await signedIn(client, userId);
  });

  await step('createNewMfaRecoveryCodes: ten new codes', async () => {
    const answer = await sdk.createNewMfaRecoveryCodes(client);
    equal(answer.recoveryCodes.length, 10, 'new codes');
    check(!answer.recoveryCodes.includes(recoveryCodes[1]), 'the old codes are replaced');
    recoveryCodes = answer.recoveryCodes;
  });

  let passkeyId;
  await step('registerPasskey (with the credential:link token held)', async () => {
    await sdk.registerPasskey({}, client);
    await signedIn(client, userId);
    const passkeys = await sdk.getPasskeys(client);
    equal(passkeys.length, 1, 'passkeys');
    passkeyId = passkeys[0].id;
  });

  await step('authenticatePasskeyMFA with requestedScopes', async () => {
    await sdk.authenticatePasskeyMFA({ requestedScopes: ['credential:unlink'] }, client);
    await signedIn(client, userId);
    check(sdk.getElevatedAccessToken({ scope: 'credential:unlink', consume: false }, client), 'a credential:unlink token');
  });

  await step('deletePasskey', async () => {
    await sdk.deletePasskey({ passkeyId }, client);
    equal((await sdk.getPasskeys(client)).length, 0, 'passkeys left');
  });

  await step('deleteMfaDevice (credential:unlink by TOTP)', async () => {
    await sdk.authenticateTotpMfaDevice({ code: nextCode(), requestedScopes: ['credential:unlink'] }, client);
    await sdk.deleteMfaDevice({ deviceId: device.id }, client);
    equal((await sdk.getMfaDevices(client)).length, 0, 'devices left');
    await signedIn(client, userId);
  });

  await step('logout ends the session on the server', async () => {
    const token = client.token;
    await sdk.logout(client);
    equal(client.user, null, 'the client user after logout');
    const response = await fetch(`${baseUrl}/sdk/${environmentId}/users`, { headers: { authorization: `Bearer ${token}` } });
    equal(response.status, 401, 'the old session after logout');
  });
}

async function withReauthPerson() {
  const client = newClient(undefined);
  const phoneNumber = String(Date.now()).slice(-10);
  const phone = `+1${phoneNumber}`;
  let userId;
  let wallet;

  await step('initializeClient (a second client)', async () => {
    await sdk.initializeClient(client);
  });

  await step('sign-in by SMS OTP (sendSmsOTP + verifyOTP)', async () => {
    await otp(client, () => sdk.sendSmsOTP({ isoCountryCode: 'US', phoneNumber }, client), phone);
    check(client.user, 'signed in');
    userId = client.user.id;
    await signedIn(client, userId);
  });

  await step('an external EVM wallet is listed as a wallet account (chain eip155)', async () => {
    wallet = localEvmWallet(client, 'Node EVM Wallet');
    const linked = await server.linkWallet(userId, {
      address: wallet.address,
      chain: 'EVM',
      walletName: 'Node EVM Wallet',
      walletProvider: 'browserExtension',
    });
    equal(linked.chain, 'eip155', 'the credential chain');
    // The client learns of the wallet from the next user it is given: an SMS step-up's answer.
    await otp(client, () => sdk.sendSmsOTP({ isoCountryCode: 'US', phoneNumber }, client), phone, ['wallet:sign']);
    await signedIn(client, userId);
    await openProtected(client, 'wallet:sign');
    const accounts = sdk.getWalletAccounts(client);
    const account = accounts.find((a) => a.address.toLowerCase() === wallet.address.toLowerCase());
    check(account, `the wallet among ${JSON.stringify(accounts)}`);
    equal(account.chain, 'EVM', 'the account chain');
    equal(account.walletProviderKey, wallet.providerKey, 'the wallet provider key');
    wallet.account = account;
  });

  await step('verifyWalletAccount with requestedScopes (external EVM wallet)', async () => {
    await sdk.verifyWalletAccount({ walletAccount: wallet.account, requestedScopes: ['wallet:export'] }, client);
    equal(wallet.signed.length, 1, 'messages signed');
    check(wallet.signed[0].startsWith('localhost wants you to sign in with your Ethereum account:'), 'an EIP-4361 message');
    await signedIn(client, userId);
    const body = await openProtected(client, 'wallet:export');
    equal(body.amr[0], 'wallet', 'amr');
  });

  await step('requestExternalAuthElevatedToken (the app backend vouches)', async () => {
    await sdk.requestExternalAuthElevatedToken({ externalJwt: app.vouch(userId, 'wallet:delegate') }, client);
    const body = await openProtected(client, 'wallet:delegate');
    equal(body.amr[0], 'external', 'amr');
    await signedIn(client, userId);
    await rejects(
      sdk.requestExternalAuthElevatedToken({ externalJwt: app.vouch('someone-else', 'wallet:delegate') }, client),
      sdk.InvalidExternalAuthError,
      "a JWT for another user",
    );
  });

  await step('logout', async () => {
    await sdk.logout(client);
    equal(client.user, null, 'the client user after logout');
  });
}

try {
  await withMfaPerson();
  await withReauthPerson();
} catch {
  // The failing step said why.
}
console.log(failed ? '# FAILED' : '# all steps passed');
process.exit(failed ? 1 : 0);
