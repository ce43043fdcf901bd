// A real OpenID Connect provider for the login tests (npm oidc-provider v9, installed
// into tests/oidc by .ci/run). Usage: node provider.mjs CONFIG.json
// CONFIG: {"port", "client": {...}, "jwks": {"keys": [private JWKs]}, "accounts": {id: claims}}
// Its own development login page takes any password for a known account.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const provider = new Provider(`http://127.0.0.1:${cfg.port}`, {
  clients: [cfg.client],
  jwks: cfg.jwks,
  cookies: { keys: ['a test cookie key, not a secret'] },
  conformIdTokenClaims: false, // the profile, mail and groups go into the ID token itself
  claims: {
    openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Session: 3600,
         Interaction: 600, Grant: 3600 },
  loadExistingGrant: async (ctx) => { // consent is implied: no consent page in the tests
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
  findAccount: async (ctx, id) => { // read again each time: a test may change the groups
    const claims = JSON.parse(readFileSync(process.argv[2], 'utf8')).accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
});
provider.listen(cfg.port, '127.0.0.1', () => console.log('listening'));
