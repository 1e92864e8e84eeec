// The browser test's page script: runs the client of todo-client.ts the way an app would and
// reports what the page saw, as JSON, to tests/e2e/browser/test_browser.py (which calls
// `window.e2e.*` over the DevTools protocol and asserts on the result).
import {
  ApiError,
  TodoApi,
  betterAuthTokens,
  fetchApiToken,
  signIn,
  signUp,
  type TokenSource,
} from "./todo-client.js";

export interface Failure {
  step: string;
  name: string;
  message: string;
  status?: number;
}

export interface Report {
  origin: string;
  steps: Record<string, unknown>;
  milliseconds: Record<string, number>; // how long each step took
  failure: Failure | null;
}

/** Runs `steps` in order, recording each one's result; stops at the first that throws. */
async function record(steps: [string, () => Promise<unknown>][]): Promise<Report> {
  const report: Report = { origin: location.origin, steps: {}, milliseconds: {}, failure: null };
  for (const [step, run] of steps) {
    const start = performance.now();
    try {
      report.steps[step] = (await run()) ?? null;
    } catch (error) {
      report.failure = { step, ...describe(error) };
      break;
    } finally {
      report.milliseconds[step] = Math.round(performance.now() - start);
    }
  }
  return report;
}

function describe(error: unknown): Omit<Failure, "step"> {
  if (error instanceof ApiError) {
    return { name: error.name, message: error.message, status: error.status };
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: typeof error, message: String(error) };
}

/** The answer of a call that should fail, as data. */
async function failureOf(call: () => Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await call();
  } catch (error) {
    if (error instanceof ApiError) {
      const problem = error.problem;
      return {
        name: error.name,
        status: error.status,
        contentType: error.contentType,
        problemType: error.problemType ?? null,
        problem: problem && { type: problem.type, status: problem.status, title: problem.title },
      };
    }
    return describe(error);
  }
  throw new Error("the call succeeded; it should have failed");
}

export interface AllowedConfig {
  apiBase: string;
  email: string;
  password: string;
  name: string;
  /** False: the account exists already, only sign in. */
  signUp?: boolean;
}

/** The whole flow from an origin the API allows: sign up and in, then every todo call. */
export async function allowedOrigin(config: AllowedConfig): Promise<Report> {
  const authBase = location.origin; // Better Auth serves this page
  const tokens = betterAuthTokens(authBase);
  const api = new TodoApi(config.apiBase, tokens);
  const title = "Buy milk";
  const key = crypto.randomUUID();
  let id = "";
  let etag = "";
  let firstEtag = "";
  return record([
    ["signUp", async () => (config.signUp === false ? "skipped" : signUp(authBase, config))],
    ["signIn", () => signIn(authBase, config)],
    [
      "token",
      async () => {
        const token = await tokens.token();
        const [header = "", payload = ""] = token.split(".").slice(0, 2).map(fromBase64Url);
        const parts = token.split(".").length;
        return { parts, header: JSON.parse(header), payload: JSON.parse(payload) };
      },
    ],
    [
      "sessionJwt",
      async () => {
        // The jwt plugin also sends the JWT in get-session's `set-auth-jwt` header.
        const response = await fetch(`${authBase}/api/auth/get-session`, { credentials: "include" });
        const jwt = response.headers.get("set-auth-jwt");
        if (!jwt) throw new Error("get-session sent no readable set-auth-jwt header");
        const once: TokenSource = { token: async () => jwt, forget() {} };
        return { status: response.status, meId: (await new TodoApi(config.apiBase, once).me()).id };
      },
    ],
    ["me", () => api.me()],
    [
      "create",
      async () => {
        const created = await api.create({ title, priority: "high", tags: ["home"] }, key);
        ({ etag } = created);
        firstEtag = etag;
        id = created.todo.id;
        return { ...created, title: created.todo.title };
      },
    ],
    [
      "replay",
      async () => {
        const again = await api.create({ title, priority: "high", tags: ["home"] }, key);
        return { id: again.todo.id, etag: again.etag, location: again.location, replayed: again.replayed };
      },
    ],
    [
      "list",
      async () => {
        const page = await api.list({ tag: ["home"], completed: false });
        return { ids: page.items.map((todo) => todo.id), next_cursor: page.next_cursor };
      },
    ],
    ["get", async () => (await api.get(id)).etag],
    [
      "patch",
      async () => {
        const updated = await api.update(id, { title: "Buy oat milk", completed: true }, etag);
        etag = updated.etag;
        const { title, completed, version } = updated.todo;
        return { etag, title, completed, version };
      },
    ],
    ["stalePatch", () => failureOf(() => api.update(id, { title: "lost update" }, firstEtag))],
    ["staleDelete", () => failureOf(() => api.delete(id, firstEtag))],
    ["delete", () => api.delete(id, etag).then(() => "deleted")],
    ["afterDelete", async () => ({ ids: (await api.list()).items.map((todo) => todo.id) })],
    ["getDeleted", () => failureOf(() => api.get(id))],
    // The token is a bearer token: the API never needs (or gets) Better Auth's cookie.
    ["tokenAgain", async () => (await fetchApiToken(authBase)).split(".").length],
  ]);
}

export interface DisallowedConfig {
  apiBase: string;
  token: string;
  todoId: string;
  etag: string;
}

/** The same calls from an origin the API does not allow: the browser must refuse each one. */
export async function disallowedOrigin(config: DisallowedConfig): Promise<Report> {
  const tokens: TokenSource = { token: async () => config.token, forget() {} };
  const api = new TodoApi(config.apiBase, tokens);
  const { todoId, etag } = config;
  return record([
    ["me", () => failureOf(() => api.me())],
    ["list", () => failureOf(() => api.list())],
    ["create", () => failureOf(() => api.create({ title: "from a disallowed origin" }))],
    ["get", () => failureOf(() => api.get(todoId))],
    ["patch", () => failureOf(() => api.update(todoId, { title: "hijacked" }, etag))],
    ["delete", () => failureOf(() => api.delete(todoId, etag))],
  ]);
}

function fromBase64Url(part: string): string {
  return atob(part.replace(/-/g, "+").replace(/_/g, "/"));
}

declare global {
  interface Window {
    e2e?: { allowedOrigin: typeof allowedOrigin; disallowedOrigin: typeof disallowedOrigin };
  }
}

window.e2e = { allowedOrigin, disallowedOrigin };
