/**
 * A typed browser client for the Todo API that signs in with Better Auth.
 *
 * Better Auth runs on the page's own origin (in Next.js: the `/api/auth/[...all]` route), so its
 * session is a cookie; the Todo API runs on another origin and wants `Authorization: Bearer
 * <JWT>`, the JWT coming from Better Auth's `jwt` plugin (`GET /api/auth/token`).
 *
 * Every type below comes from the API's OpenAPI document (`src/generated/api.d.ts`, written by
 * openapi-typescript from `/openapi.json`): when the API changes in a way that breaks this
 * client, `tsc` fails.
 */
import type { components, paths } from "./generated/api.js";

export type Todo = components["schemas"]["TodoRead"];
export type NewTodo = components["schemas"]["TodoCreate"];
export type TodoChanges = components["schemas"]["TodoUpdate"];
export type TodoPage = components["schemas"]["TodoPage"];
export type User = components["schemas"]["UserRead"];
export type Problem = components["schemas"]["Problem"];
export type TodoQuery = NonNullable<paths["/todos"]["get"]["parameters"]["query"]>;

// Request headers as the schema names them: if the API renames or drops one, this stops compiling.
type CreateHeaders = NonNullable<paths["/todos"]["post"]["parameters"]["header"]>;
type UpdateHeaders = NonNullable<paths["/todos/{todo_id}"]["patch"]["parameters"]["header"]>;
type DeleteHeaders = NonNullable<paths["/todos/{todo_id}"]["delete"]["parameters"]["header"]>;

// Response headers the schema documents (without the generated catch-all `[name: string]`).
type Documented<Headers> = keyof {
  [Name in keyof Headers as string extends Name ? never : Name]: Headers[Name];
} &
  string;
type CreatedHeader = Documented<paths["/todos"]["post"]["responses"][201]["headers"]>;
type FetchedHeader = Documented<paths["/todos/{todo_id}"]["get"]["responses"][200]["headers"]>;
type UpdatedHeader = Documented<paths["/todos/{todo_id}"]["patch"]["responses"][200]["headers"]>;

/** A todo with the ETag of its version: send it back as If-Match to change or delete it. */
export interface Versioned {
  todo: Todo;
  etag: string;
}

export interface Created extends Versioned {
  /** The new todo's URL, relative to the API (`/todos/<id>`). */
  location: string;
  /** True when the API answered with the response stored for this Idempotency-Key. */
  replayed: boolean;
}

// --- Better Auth: same origin as the page, cookie session --------------------------------------

export interface AuthUser {
  id: string;
  email: string;
  name: string;
}

/** `authBase` is Better Auth's origin; "" when it is the page's own (the usual Next.js setup). */
export async function signUp(
  authBase: string,
  user: { email: string; password: string; name: string },
): Promise<AuthUser> {
  return (await authPost(authBase, "/sign-up/email", user)).user;
}

export async function signIn(
  authBase: string,
  credentials: { email: string; password: string },
): Promise<AuthUser> {
  return (await authPost(authBase, "/sign-in/email", credentials)).user;
}

export async function signOut(authBase: string): Promise<void> {
  await authPost(authBase, "/sign-out", {});
}

/** A fresh JWT for the signed-in session, from the `jwt` plugin's `GET /api/auth/token`. */
export async function fetchApiToken(authBase: string): Promise<string> {
  const response = await fetch(`${authBase}/api/auth/token`, { credentials: "include" });
  if (!response.ok) {
    throw new Error(`Better Auth /token answered ${response.status}: signed in?`);
  }
  const { token } = (await response.json()) as { token?: string };
  if (!token) throw new Error("Better Auth /token returned no token: is the jwt plugin on?");
  return token;
}

async function authPost(
  authBase: string,
  path: string,
  body: object,
): Promise<{ user: AuthUser }> {
  const response = await fetch(`${authBase}/api/auth${path}`, {
    method: "POST",
    credentials: "include", // the session cookie; needed only when Better Auth is cross-origin
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const error = (await response.json().catch(() => ({}))) as { message?: string };
    throw new Error(`Better Auth ${path} answered ${response.status}: ${error.message ?? ""}`);
  }
  return (await response.json()) as { user: AuthUser };
}

// --- Tokens: fetched once, reused until shortly before they expire ----------------------------

export interface TokenSource {
  token(): Promise<string>;
  /** Drop the cached token (after a 401: the next call fetches a new one). */
  forget(): void;
}

export function betterAuthTokens(authBase: string, marginSeconds = 30): TokenSource {
  let cached: { token: string; expires: number } | null = null;
  let pending: Promise<string> | null = null;
  return {
    async token() {
      if (cached && cached.expires - marginSeconds > Date.now() / 1000) return cached.token;
      pending ??= fetchApiToken(authBase)
        .then((token) => {
          cached = { token, expires: expiresAt(token) };
          return token;
        })
        .finally(() => {
          pending = null;
        });
      return pending;
    },
    forget() {
      cached = null;
    },
  };
}

/** The `exp` claim (seconds since the epoch); read only to know when to refresh. */
function expiresAt(jwt: string): number {
  const payload = jwt.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  const { exp } = JSON.parse(json) as { exp?: number };
  return exp ?? 0;
}

// --- The Todo API: another origin, bearer JWT ---------------------------------------------------

/** A non-2xx answer. The API answers errors as application/problem+json (RFC 9457). */
export class ApiError extends Error {
  readonly status: number;
  readonly contentType: string;
  readonly problem: Problem | null;

  constructor(status: number, contentType: string, problem: Problem | null) {
    super(problem ? `${status} ${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.contentType = contentType;
    this.problem = problem;
  }

  /** The problem type's name, e.g. "precondition-failed" (a `type` is `/problems#<name>`). */
  get problemType(): string | undefined {
    return this.problem?.type.split("#")[1];
  }
}

export class TodoApi {
  readonly #baseUrl: string;
  readonly #tokens: TokenSource;

  /** `baseUrl`: the API's origin, e.g. "https://api.example.com" (no trailing slash). */
  constructor(baseUrl: string, tokens: TokenSource) {
    this.#baseUrl = baseUrl;
    this.#tokens = tokens;
  }

  async me(): Promise<User> {
    return (await this.#send("GET", "/users/me")).json() as Promise<User>;
  }

  async list(query: TodoQuery = {}): Promise<TodoPage> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (item !== null && item !== undefined) search.append(name, String(item));
      }
    }
    const suffix = search.size ? `?${search}` : "";
    return (await this.#send("GET", `/todos${suffix}`)).json() as Promise<TodoPage>;
  }

  /** Safe to retry with the same key: the API answers the stored response (for 24 h). */
  async create(todo: NewTodo, idempotencyKey: string = crypto.randomUUID()): Promise<Created> {
    const headers: CreateHeaders = { "idempotency-key": idempotencyKey };
    const response = await this.#send("POST", "/todos", { headers, body: todo });
    return {
      todo: (await response.json()) as Todo,
      etag: exposed<CreatedHeader>(response, "ETag"),
      location: exposed<CreatedHeader>(response, "Location"),
      replayed: response.headers.get("Idempotent-Replayed" satisfies CreatedHeader) === "true",
    };
  }

  async get(id: string): Promise<Versioned> {
    const response = await this.#send("GET", `/todos/${encodeURIComponent(id)}`);
    return { todo: (await response.json()) as Todo, etag: exposed<FetchedHeader>(response, "ETag") };
  }

  /** `etag`: the version the change is based on; a newer one on the server gives a 412. */
  async update(id: string, changes: TodoChanges, etag: string): Promise<Versioned> {
    const headers: UpdateHeaders = { "if-match": etag };
    const path = `/todos/${encodeURIComponent(id)}`;
    const response = await this.#send("PATCH", path, { headers, body: changes });
    return { todo: (await response.json()) as Todo, etag: exposed<UpdatedHeader>(response, "ETag") };
  }

  /** Without `etag` the todo is deleted whatever its version. */
  async delete(id: string, etag?: string): Promise<void> {
    const headers: DeleteHeaders = etag === undefined ? {} : { "if-match": etag };
    await this.#send("DELETE", `/todos/${encodeURIComponent(id)}`, { headers });
  }

  async #send(
    method: string,
    path: string,
    { headers = {}, body }: { headers?: Record<string, string | null | undefined>; body?: unknown } = {},
  ): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      const request = new Headers({ Authorization: `Bearer ${await this.#tokens.token()}` });
      for (const [name, value] of Object.entries(headers)) {
        if (value !== null && value !== undefined) request.set(name, value);
      }
      if (body !== undefined) request.set("Content-Type", "application/json");
      // No cookies go to the API (credentials: "omit"): it authenticates the bearer JWT only.
      const response = await fetch(`${this.#baseUrl}${path}`, {
        method,
        headers: request,
        body: body === undefined ? null : JSON.stringify(body),
        credentials: "omit",
      });
      if (response.ok) return response;
      // An expired or revoked JWT: get a new one once (safe: POSTs carry an Idempotency-Key).
      if (response.status === 401 && attempt === 1) {
        this.#tokens.forget();
        continue;
      }
      const contentType = response.headers.get("Content-Type") ?? "";
      const problem = contentType.startsWith("application/problem+json")
        ? ((await response.json()) as Problem)
        : null;
      throw new ApiError(response.status, contentType, problem);
    }
  }
}

/**
 * A response header the API documents. Cross-origin, JavaScript sees only the headers the API
 * lists in Access-Control-Expose-Headers (plus a few "safelisted" ones): ETag and Location are
 * not safelisted, so without that list `get()` returns null even though the header was sent.
 */
function exposed<Name extends string>(response: Response, name: Name): string {
  const value = response.headers.get(name);
  if (value === null) {
    throw new Error(
      `${response.status} response without a readable ${name} header: the API must list it ` +
        "in Access-Control-Expose-Headers (is this page's origin in the API's CORS_ORIGINS?)",
    );
  }
  return value;
}
