// A local, Okta-shaped OpenID Connect provider for the qcs-jupyter demo and end-to-end tests.
//
// Usage: node idp.mjs config.json
//
// Everything is configured by the JSON file (see ../localidp.py, which writes it):
//   host, port, issuer ("https://127.0.0.1:PORT/oauth2/default"), tls {cert, key} (optional),
//   access_token_ttl, refresh_token_ttl, id_token_ttl (optional, default 3600),
//   rotate_refresh_tokens, audience (optional, default "api://qcs", QCS's), jwks (optional),
//   clients [{client_id, client_secret?, redirect_uris, token_endpoint_auth_method?,
//             post_logout_redirect_uris?}]
//
// Routes (relative to the issuer): /.well-known/openid-configuration, /v1/authorize, /v1/token,
// /v1/userinfo, /v1/keys, /v1/logout, /v1/revoke, /v1/introspect, /interaction/:uid (login form).
// Test-only, at the server root: GET /__stats, POST /__reset_stats, GET /__health.
//
// This is a demo: any login name with any password signs in, and consent is granted automatically.
// Logs never contain token values.

import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import Provider from 'oidc-provider';
// oidc-provider's in-memory store (its default adapter) and the LRU it keeps it in: a store of 1,000 entries
// (the default) forgets the grants of a few hundred users' logins, and their refresh tokens then fail.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const log = (...args) => console.error(`[idp ${new Date().toISOString()}]`, ...args);

if (process.argv.length < 3) {
  console.error('usage: node idp.mjs config.json');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const issuer = String(cfg.issuer).replace(/\/+$/, '');
const issuerPath = new URL(issuer).pathname.replace(/\/+$/, ''); // '' or '/oauth2/default'
const host = cfg.host ?? '127.0.0.1';
const port = Number(cfg.port);
const accessTokenTTL = Number(cfg.access_token_ttl ?? 3600);
const refreshTokenTTL = Number(cfg.refresh_token_ttl ?? 30 * 24 * 3600);
const idTokenTTL = Number(cfg.id_token_ttl ?? 3600);
const rotateRefreshTokens = Boolean(cfg.rotate_refresh_tokens ?? false);
const audience = cfg.audience ?? 'api://qcs';
const SCOPES = ['openid', 'offline_access', 'profile', 'email'];

// ---------------------------------------------------------------------------------------------
// Signing key: from config (a private JWKS) or a fresh RSA key per run.
let signingJwk;
if (cfg.jwks?.keys?.length) {
  [signingJwk] = cfg.jwks.keys;
} else {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  signingJwk = privateKey.export({ format: 'jwk' });
}
signingJwk = { ...signingJwk, alg: 'RS256', use: 'sig' };
signingJwk.kid ??= crypto.createHash('sha256').update(signingJwk.n).digest('base64url').slice(0, 16);
const publicKey = crypto.createPublicKey({ key: signingJwk, format: 'jwk' });

// ---------------------------------------------------------------------------------------------
// Accounts: whatever login name was typed becomes the account id.
function titleCase(login) {
  return login.split(/[._\-\s]+/).filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1)).join(' ') || login;
}
function accountClaims(login) {
  return {
    sub: login,
    name: titleCase(login),
    email: `${login}@example.org`,
    email_verified: true,
    preferred_username: login,
  };
}

// ---------------------------------------------------------------------------------------------
// Test statistics.
function freshStats() {
  return {
    token_requests: {},
    token_ok: {},
    token_failed: {},
    refresh_ok: 0,
    refresh_failed: 0,
    userinfo_ok: 0,
    userinfo_failed: 0,
    introspect_active: 0,
    introspect_inactive: 0,
    // The same token counts per account (login name), so a test can count one user's refreshes while other
    // users' servers refresh too: {login: {token_requests: {grant_type: n}, refresh_ok: n, refresh_failed: n}}.
    by_account: {},
  };
}
let stats = freshStats();

// ---------------------------------------------------------------------------------------------
// A client with "resource_server": true logs nobody in; it only introspects (a QCS API stand-in).
const clients = (cfg.clients ?? []).map((c) => ({
  client_id: c.client_id,
  ...(c.client_secret ? { client_secret: c.client_secret } : {}),
  redirect_uris: c.resource_server ? [] : c.redirect_uris,
  post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
  grant_types: c.resource_server ? [] : ['authorization_code', 'refresh_token'],
  response_types: c.resource_server ? [] : ['code'],
  token_endpoint_auth_method: c.token_endpoint_auth_method
    ?? (c.client_secret ? 'client_secret_post' : 'none'),
}));

const store = new LRU({ maxSize: 200000 });

const provider = new Provider(issuer, {
  clients,
  adapter: (model) => new MemoryAdapter(model, store),
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: SCOPES,
  responseTypes: ['code'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // Put the profile/email claims into the id_token as Okta does.
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    return { accountId: id, async claims() { return accountClaims(id); } };
  },
  routes: {
    authorization: '/v1/authorize',
    token: '/v1/token',
    userinfo: '/v1/userinfo',
    jwks: '/v1/keys',
    end_session: '/v1/logout',
    revocation: '/v1/revoke',
    introspection: '/v1/introspect',
  },
  features: {
    devInteractions: { enabled: true }, // login form; consent is auto-granted below
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true }, // advertised; served by this file (JWT access tokens)
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== audience) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: SCOPES.join(' '),
          audience,
          accessTokenTTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Okta-like extra claims in the access token.
  async extraTokenClaims(_ctx, token) {
    if (token.kind !== 'AccessToken') return undefined;
    return { cid: token.clientId, uid: token.accountId, scp: token.scope ? token.scope.split(' ') : [] };
  },
  rotateRefreshToken: rotateRefreshTokens,
  clockTolerance: 0,
  ttl: {
    AccessToken: accessTokenTTL,
    IdToken: idTokenTTL,
    RefreshToken: refreshTokenTTL,
    AuthorizationCode: 60,
    Interaction: 3600,
    Session: Math.max(refreshTokenTTL, 3600),
    Grant: Math.max(refreshTokenTTL, 3600),
  },
});

function countToken(ctx, ok, err) {
  const gt = ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type ?? 'unknown';
  stats.token_requests[gt] = (stats.token_requests[gt] ?? 0) + 1;
  const bucket = ok ? stats.token_ok : stats.token_failed;
  bucket[gt] = (bucket[gt] ?? 0) + 1;
  if (gt === 'refresh_token') {
    if (ok) stats.refresh_ok += 1; else stats.refresh_failed += 1;
  }
  const entities = ctx.oidc?.entities ?? {};
  const account = entities.Account?.accountId ?? entities.RefreshToken?.accountId
    ?? entities.AuthorizationCode?.accountId ?? '?';
  const mine = stats.by_account[account] ??= { token_requests: {}, refresh_ok: 0, refresh_failed: 0 };
  mine.token_requests[gt] = (mine.token_requests[gt] ?? 0) + 1;
  if (gt === 'refresh_token') {
    if (ok) mine.refresh_ok += 1; else mine.refresh_failed += 1;
  }
  const client = ctx.oidc?.client?.clientId ?? ctx.oidc?.params?.client_id ?? '?';
  if (ok) {
    log(`token ${gt} client=${client} ok`);
  } else {
    log(`token ${gt} client=${client} failed: ${err?.error ?? err?.name} (${err?.error_description ?? err?.message})`);
  }
}
provider.on('grant.success', (ctx) => countToken(ctx, true));
provider.on('grant.error', (ctx, err) => countToken(ctx, false, err));
provider.on('server_error', (ctx, err) => {
  if (ctx.oidc?.route === 'token') countToken(ctx, false, err);
  log(`server_error on ${ctx.method} ${ctx.path}: ${err?.message}`);
});
provider.on('authorization.success', (ctx) => log(`authorize ok client=${ctx.oidc?.client?.clientId}`));
provider.on('authorization.error', (_ctx, err) => log(`authorize error: ${err?.error} (${err?.error_description})`));
provider.on('grant.revoked', () => log('grant revoked'));

// ---------------------------------------------------------------------------------------------
// /v1/userinfo for JWT access tokens (oidc-provider refuses structured tokens at its own endpoint).
function b64json(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}
function verifyAccessToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a JWT');
  const header = b64json(parts[0]);
  if (header.alg !== 'RS256') throw new Error('unexpected alg');
  if (header.kid && header.kid !== signingJwk.kid) throw new Error('unknown kid');
  const valid = crypto.verify(
    'sha256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    publicKey,
    Buffer.from(parts[2], 'base64url'),
  );
  if (!valid) throw new Error('bad signature');
  const payload = b64json(parts[1]);
  if (payload.iss !== issuer) throw new Error('wrong issuer');
  if (typeof payload.exp !== 'number' || Math.floor(Date.now() / 1000) >= payload.exp) {
    throw new Error('the access token has expired');
  }
  if (!payload.sub) throw new Error('no sub');
  return payload;
}
function sendJson(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}
function userinfo(req, res) {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) {
    stats.userinfo_failed += 1;
    log('userinfo: no bearer token');
    sendJson(res, 401, { error: 'invalid_request', error_description: 'no access token provided' }, {
      'WWW-Authenticate': `Bearer realm="${issuer}"`,
    });
    return;
  }
  let payload;
  try {
    payload = verifyAccessToken(m[1]);
  } catch (e) {
    stats.userinfo_failed += 1;
    log(`userinfo: invalid token (${e.message})`);
    sendJson(res, 401, { error: 'invalid_token', error_description: e.message }, {
      'WWW-Authenticate': `Bearer realm="${issuer}", error="invalid_token", error_description="${e.message}"`,
    });
    return;
  }
  stats.userinfo_ok += 1;
  log(`userinfo ok sub=${payload.sub}`);
  sendJson(res, 200, accountClaims(payload.sub));
}

// ---------------------------------------------------------------------------------------------
// /v1/introspect for JWT access tokens, as Okta answers it (oidc-provider refuses structured tokens
// there). The caller authenticates as a configured client: client_secret_basic, client_secret_post, or
// a public client by client_id. Anything else goes on to oidc-provider (refresh tokens).
function introspectionClient(req, params) {
  let id = params.get('client_id');
  let secret = params.get('client_secret');
  const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    id = decodeURIComponent(decoded.slice(0, colon));
    secret = decodeURIComponent(decoded.slice(colon + 1));
  }
  const client = clients.find((c) => c.client_id === id);
  if (!client) return null;
  if (client.client_secret) {
    const given = Buffer.from(secret ?? '');
    const want = Buffer.from(client.client_secret);
    if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) return null;
  }
  return client;
}
function introspectJwt(req, res, params) {
  const client = introspectionClient(req, params);
  if (!client) {
    log('introspect: client authentication failed');
    sendJson(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
    return;
  }
  let payload;
  try {
    payload = verifyAccessToken(params.get('token'));
  } catch (e) {
    stats.introspect_inactive += 1;
    log(`introspect by ${client.client_id}: inactive (${e.message})`);
    sendJson(res, 200, { active: false });
    return;
  }
  stats.introspect_active += 1;
  log(`introspect by ${client.client_id}: active sub=${payload.sub}`);
  sendJson(res, 200, {
    active: true,
    token_type: 'Bearer',
    scope: payload.scope,
    client_id: payload.client_id ?? payload.cid,
    username: payload.sub,
    sub: payload.sub,
    aud: payload.aud,
    iss: payload.iss,
    exp: payload.exp,
    iat: payload.iat,
    jti: payload.jti,
    uid: payload.uid,
  });
}

// ---------------------------------------------------------------------------------------------
// Consent is granted automatically (the same grant the devInteractions consent form would make).
async function autoConsent(req, res) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return false; // let oidc-provider render its own error
  }
  if (details.prompt.name !== 'consent') return false;
  const { prompt: { details: missing }, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  const savedGrantId = await grant.save();
  log(`consent auto-granted for ${session.accountId} to ${params.client_id}`);
  await provider.interactionFinished(req, res, { consent: { grantId: savedGrantId } }, {
    mergeWithLastSubmission: true,
  });
  return true;
}

// oidc-provider drops offline_access unless prompt contains "consent"; Okta does not need that,
// so add it here (consent is auto-granted anyway).
function withConsentPrompt(params) {
  const scopes = (params.get('scope') ?? '').split(' ');
  const prompt = (params.get('prompt') ?? '').split(' ').filter(Boolean);
  if (!scopes.includes('offline_access') || prompt.includes('consent') || prompt.includes('none')) {
    return false;
  }
  params.set('prompt', [...prompt, 'consent'].join(' '));
  return true;
}
async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const providerCallback = provider.callback();

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const { pathname } = url;

  if (pathname === '/__stats' && req.method === 'GET') {
    sendJson(res, 200, stats);
    return;
  }
  if (pathname === '/__reset_stats' && req.method === 'POST') {
    stats = freshStats();
    sendJson(res, 200, stats);
    return;
  }
  if (pathname === '/__health') {
    sendJson(res, 200, { ok: true, issuer });
    return;
  }

  if (issuerPath && pathname !== issuerPath && !pathname.startsWith(`${issuerPath}/`)) {
    sendJson(res, 404, { error: 'not_found' });
    return;
  }
  const sub = pathname.slice(issuerPath.length) || '/';

  if (sub === '/v1/userinfo' && (req.method === 'GET' || req.method === 'POST')) {
    userinfo(req, res);
    return;
  }

  if (sub === '/v1/introspect' && req.method === 'POST'
      && (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    const body = await readBody(req);
    const params = new URLSearchParams(body);
    if ((params.get('token') ?? '').split('.').length === 3) {
      introspectJwt(req, res, params);
      return;
    }
    req.body = body; // oidc-provider reads an already-consumed body from here
  }

  if (sub === '/v1/authorize') {
    if (req.method === 'GET') {
      if (withConsentPrompt(url.searchParams)) {
        req.url = `${pathname}?${url.searchParams}`;
      }
    } else if (req.method === 'POST'
        && (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      // Re-issue the POST as the equivalent GET so the added prompt reaches oidc-provider.
      const params = new URLSearchParams(await readBody(req));
      withConsentPrompt(params);
      req.method = 'GET';
      delete req.headers['content-type'];
      delete req.headers['content-length'];
      req.url = `${pathname}?${params}`;
    }
  }

  if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(sub)) {
    if (await autoConsent(req, res)) return;
  }

  // Mount oidc-provider under the issuer path.
  req.originalUrl = req.url;
  req.url = req.url.slice(issuerPath.length) || '/';
  if (req.url.startsWith('?')) req.url = `/${req.url}`;
  providerCallback(req, res);
}

function onRequest(req, res) {
  handle(req, res).catch((err) => {
    log(`internal error: ${err?.message}`);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
    else res.end();
  });
}

const server = cfg.tls
  ? https.createServer({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) }, onRequest)
  : http.createServer(onRequest);

server.listen(port, host, () => {
  log(`listening on ${cfg.tls ? 'https' : 'http'}://${host}:${port}, issuer ${issuer}, `
    + `access_token_ttl=${accessTokenTTL}s refresh_token_ttl=${refreshTokenTTL}s `
    + `rotate_refresh_tokens=${rotateRefreshTokens}, clients=${clients.map((c) => c.client_id).join(',')}`);
  process.stdout.write(`READY ${issuer}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
