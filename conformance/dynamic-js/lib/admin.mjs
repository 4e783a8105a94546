// The reference server's admin API, for what a real deployment does out of band: reading the code a person
// would find in their inbox or on their phone (the dev outbox), and linking an external wallet to a user.
export function admin({ baseUrl, environmentId, token }) {
  const call = async (method, path, body) => {
    const response = await fetch(`${baseUrl}/admin/environments/${environmentId}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`admin ${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  };
  return {
    /** The code of verification `verificationUUID` sent to `to` (an email address or `+<cc><number>`). */
    async codeFor(to, verificationUUID) {
      const messages = await call('GET', `/outbox?to=${encodeURIComponent(to)}`);
      const message = messages.find((m) => m.verificationUUID === verificationUUID);
      if (!message) throw new Error(`no code for ${verificationUUID} in the outbox of ${to}`);
      return message.code;
    },
    /** Links an external wallet (as an admin would, or as an earlier sign-in with it would have). */
    linkWallet(userId, wallet) {
      return call('POST', `/users/${userId}/wallets`, wallet);
    },
  };
}
