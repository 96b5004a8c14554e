// The comparison peer of bench/compare.sh: panva's oidc-provider doing the job of tokend's
// token path: client_credentials with client_secret_basic, RFC 9068 JWT access tokens for one
// resource, 30 minutes, signed with PEER_ALG (ES256 | EdDSA | RS256). Loopback only.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3000);
const alg = process.env.PEER_ALG || process.env.AT_ALG || 'ES256';
const audience = 'https://api.example.test';

// Fresh keys per run: a benchmark needs no stable JWKS.
const keyFor = {
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: () => generateKeyPairSync('ed25519'),
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
};
if (!keyFor[alg]) throw new Error(`PEER_ALG must be one of ${Object.keys(keyFor).join(', ')}`);
const signing = { ...keyFor[alg]().privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `peer-${alg}` };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench-client',
    client_secret: 'bench-secret-0123456789abcdef',   // test-only, loopback-only
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    // Only one key exists, so ID tokens (unused here) must name its algorithm too.
    id_token_signed_response_alg: alg,
    scope: 'read write',
  }],
  jwks: { keys: [signing] },
  cookies: { keys: ['peer-cookie-key-for-benchmarks-only'] },
  scopes: ['read', 'write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== audience) throw new Provider.errors.InvalidTarget();
        return { scope: 'read write', audience, accessTokenTTL: 1800, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
      },
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`peer: oidc-provider, ${alg} JWT access tokens, http://127.0.0.1:${port}`));
