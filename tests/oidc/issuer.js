// Test-only OIDC issuer (discovery + JWKS) driven over stdin/stdout by the e2e tests.
//
// Usage: node issuer.js <port>
// Listens on 127.0.0.1:<port>; issuer URL is http://127.0.0.1:<port>.
// Reads one JSON command per line on stdin, writes one JSON reply per line on
// stdout. The first line written is {"ready":true,"issuer":"..."}.
//
//   {"cmd":"sign","claims":{...},"kid":"k"?,"omit_kid":true?} -> {"token":"..."}
//       RS256 with the current key (or `kid`); claims are used as-is.
//   {"cmd":"rotate"}             -> {"kid":"..."}  new current key, old keys leave the JWKS
//   {"cmd":"add_key"}            -> {"kid":"..."}  new current key, old keys stay
//   {"cmd":"outage","on":bool}   -> {"ok":true}    stop / restart the HTTP server
//   {"cmd":"jwks"}               -> {"keys":[...]} the public JWKS as served
//   {"cmd":"discovery_issuer","issuer":"..."|null} -> {"ok":true}
//       the `issuer` the discovery document names (null: the real one)
//   {"cmd":"pad_jwks","bytes":N} -> {"ok":true}  append a junk entry of about
//       N bytes to the served JWKS (0: none); the real keys stay usable
// Errors reply {"error":"..."}. The process exits when stdin closes.
import { OAuth2Server } from 'oauth2-mock-server';
import { createInterface } from 'node:readline';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node issuer.js <port>');
  process.exit(2);
}
const host = '127.0.0.1';
const issuerUrl = `http://${host}:${port}`;

const server = new OAuth2Server();
const store = server.issuer.keys;
// The library's key store cannot delete keys; `rotate` must drop old keys from
// the served JWKS, so the store's JSON view hides retired kids.
const retired = new Set();
const fullJwks = store.toJSON.bind(store);
store.toJSON = (priv) => fullJwks(priv).filter((k) => !retired.has(k.kid));

let current = (await store.generate('RS256')).kid;

let discoveryIssuer = null;
server.service.on('beforeWellKnownOpenIdConfiguration', (response) => {
  if (discoveryIssuer !== null) response.body.issuer = discoveryIssuer;
});
let padding = 0;
const servedJwks = store.toJSON.bind(store);
store.toJSON = (priv) => {
  const keys = servedJwks(priv);
  return padding > 0 ? [...keys, { kty: 'x-padding', pad: 'a'.repeat(padding) }] : keys;
};

async function start() {
  server.issuer.url = issuerUrl; // start() would default to http://localhost:<port>
  await server.start(port, host);
}

async function handle(msg) {
  switch (msg.cmd) {
    case 'sign': {
      const claims = msg.claims ?? {};
      return {
        token: await server.issuer.buildToken({
          kid: msg.kid ?? current,
          scopesOrTransform: (header, payload) => {
            for (const k of Object.keys(payload)) delete payload[k];
            Object.assign(payload, claims);
            if (msg.omit_kid) delete header.kid;
          },
        }),
      };
    }
    case 'rotate': {
      for (const k of store.toJSON()) retired.add(k.kid);
      current = (await store.generate('RS256')).kid;
      return { kid: current };
    }
    case 'add_key':
      current = (await store.generate('RS256')).kid;
      return { kid: current };
    case 'outage':
      if (msg.on && server.listening) {
        await server.stop();
        server.issuer.url = issuerUrl; // stop() clears it; tokens are still signed
      }
      if (!msg.on && !server.listening) await start();
      return { ok: true };
    case 'jwks':
      return { keys: store.toJSON() };
    case 'discovery_issuer':
      discoveryIssuer = msg.issuer ?? null;
      return { ok: true };
    case 'pad_jwks':
      padding = Number(msg.bytes) || 0;
      return { ok: true };
    default:
      return { error: `unknown command \`${msg.cmd}\`` };
  }
}

await start();
console.log(JSON.stringify({ ready: true, issuer: issuerUrl }));

const rl = createInterface({ input: process.stdin });
// Commands are answered strictly in order, one line each.
let queue = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let reply;
    try {
      reply = await handle(JSON.parse(line));
    } catch (err) {
      reply = { error: String(err?.message ?? err) };
    }
    console.log(JSON.stringify(reply));
  });
});
rl.on('close', () => queue.then(() => process.exit(0)));
