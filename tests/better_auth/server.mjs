// A real Better Auth server for the Python test-suite: it signs real JWTs with the `jwt`
// plugin so that the API's verification is tested against the real issuer, not a mock.
//
// Configuration (all from the environment, set by harness.py):
//   BA_DATABASE_URL  libpq URL; TCP (postgresql://u@127.0.0.1:5432/db) or unix socket
//                    (postgresql://u:@/db?host=/socket/dir), both understood by `pg`
//   BA_PORT          port to listen on (127.0.0.1 only); default 3000
//   BA_BASE_URL      default http://127.0.0.1:$BA_PORT; Better Auth uses it as JWT iss and aud
//   BA_SECRET        Better Auth secret (encrypts the private JWKS keys at rest)
//   BA_JWT_ALG       EdDSA (default), ES256, ES512, RS256 or PS256
//   BA_SKIP_MIGRATE  "1" to skip the schema migration on start
//   BA_RESET_JWKS    "1" to delete all stored signing keys on start (see below)
//   BA_WATCH_STDIN   "1" to exit when stdin reaches end-of-file (see below)
//   BA_STATIC_DIR    serve this directory's files under /e2e/ (the browser test's page and its
//                    compiled client: tests/e2e/browser), so that the page has Better Auth's
//                    origin; unset (the default) serves nothing but Better Auth
//
// `node server.mjs --migrate-only` migrates the schema and exits.
// Otherwise prints exactly one line "READY <port>" on stdout once it is listening.

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { bearer, jwt } from "better-auth/plugins";
import pg from "pg";

const ALGS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"];

function fail(message) {
  console.error(`better-auth test server: ${message}`);
  process.exit(1);
}

const databaseUrl = process.env.BA_DATABASE_URL;
if (!databaseUrl) fail("BA_DATABASE_URL is required");
const port = Number(process.env.BA_PORT ?? 3000);
const baseURL = process.env.BA_BASE_URL ?? `http://127.0.0.1:${port}`;
const alg = process.env.BA_JWT_ALG ?? "EdDSA";
if (!ALGS.includes(alg)) fail(`BA_JWT_ALG must be one of ${ALGS.join(", ")}, got ${alg}`);

// `pg` parses the URL itself (pg-connection-string): a `?host=/dir` query parameter is taken as
// the unix-socket directory, which is what embedded-postgres hands out.
const pool = new pg.Pool({ connectionString: databaseUrl, max: 5 });

const options = {
  baseURL,
  secret: process.env.BA_SECRET ?? "todo-api-tests-better-auth-secret-0123456789",
  database: pool,
  emailAndPassword: { enabled: true, requireEmailVerification: false },
  user: { deleteUser: { enabled: true } },
  plugins: [jwt({ jwks: { keyPairConfig: { alg } } }), bearer()],
  // Tests fire many requests from one address; the limiter would make them flaky.
  rateLimit: { enabled: false },
  // Never phone home from a test run (it is off by default; say so explicitly).
  telemetry: { enabled: false },
};

async function migrate() {
  // Same plan as `npx @better-auth/cli migrate`: create missing tables, add missing columns.
  const { runMigrations, schemaProblems } = await getMigrations(options);
  await runMigrations();
  // Problems it cannot fix (e.g. an extra NOT NULL column without default on "user") would
  // otherwise surface at the first request as a SCHEMA_MISMATCH crash of the whole process.
  if (schemaProblems.length) fail(`schema problems:\n  ${schemaProblems.join("\n  ")}`);
}

if (process.argv.includes("--migrate-only")) {
  try {
    await migrate();
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
  await pool.end();
  process.exit(0);
}

if (process.env.BA_SKIP_MIGRATE !== "1") await migrate();

// The jwt plugin signs with the newest stored key whatever its algorithm: a database that already
// holds an EdDSA key keeps getting EdDSA tokens after a restart with BA_JWT_ALG=RS256. Deleting
// the stored keys makes the first token request mint a key pair of the configured algorithm.
if (process.env.BA_RESET_JWKS === "1") await pool.query("DELETE FROM jwks");

const auth = betterAuth(options);
const authHandler = toNodeHandler(auth);
const staticDir = process.env.BA_STATIC_DIR ? path.resolve(process.env.BA_STATIC_DIR) : null;
const STATIC_PREFIX = "/e2e/";
const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
};

async function serveStatic(request, response) {
  let file = null;
  try {
    const { pathname } = new URL(request.url, "http://localhost"); // resolves "." and ".."
    if (pathname.startsWith(STATIC_PREFIX)) {
      const relative = decodeURIComponent(pathname.slice(STATIC_PREFIX.length)) || "index.html";
      const resolved = path.resolve(staticDir, relative);
      if (resolved.startsWith(staticDir + path.sep)) file = resolved; // nothing outside the folder
    }
  } catch {
    // a malformed URL or escape: 404 below
  }
  const body = file && (await readFile(file).catch(() => null));
  if (!body) {
    response.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
    return;
  }
  const type = CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream";
  response.writeHead(200, { "Content-Type": type, "Cache-Control": "no-store" });
  response.end(request.method === "HEAD" ? undefined : body);
}

const server = http.createServer((request, response) => {
  const isStatic = request.url.startsWith(STATIC_PREFIX) && ["GET", "HEAD"].includes(request.method);
  if (staticDir && isStatic) serveStatic(request, response).catch(() => response.destroy());
  else authHandler(request, response);
});

// The harness stops us with SIGTERM (or SIGINT when run by hand): close quickly and quietly.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    pool.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
// With BA_WATCH_STDIN=1 (set by harness.py, which hands us a pipe as stdin) we exit when that
// pipe closes, i.e. when the parent (pytest) died without stopping us: no orphan keeps the port
// and the database busy. Opt-in, because stdin is often /dev/null when run by hand or in CI.
if (process.env.BA_WATCH_STDIN === "1") {
  process.stdin.on("end", () => process.kill(process.pid, "SIGTERM"));
  process.stdin.resume();
}

server.on("error", (error) => fail(error.message));
server.listen(port, "127.0.0.1", () => {
  console.log(`READY ${server.address().port}`);
});
