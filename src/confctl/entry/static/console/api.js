// The console's fetch wrapper over confctl's public API: bearer token, JSON in and out, problem details
// (RFC 9457, application/problem+json) turned into a typed ApiError, and Idempotency-Keys for actions.
import { ROOT } from "./session.js"; // the prefix a proxy serves confctl under, "" at the top

// A refusal: the answer's problem JSON, or what can be said of a non-JSON error answer.
export class ApiError extends Error {
  constructor({ status, code, title, detail, type = null, problem = null }) {
    super(`${status} ${code}: ${detail}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.type = type;
    this.problem = problem;
  }
}

// No answer at all (connection refused or dropped): the request may or may not have been carried out.
export class NetworkError extends Error {
  constructor(cause) {
    super(`confctl did not answer: ${cause?.message ?? cause}`);
    this.name = "NetworkError";
    this.cause = cause;
  }
}

// One key per user action. crypto.randomUUID exists only in secure contexts (https or localhost); a console
// served over plain http on a LAN address still has crypto.getRandomValues.
export function newIdempotencyKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (body && typeof body === "object" && typeof body.code === "string") {
    return new ApiError({
      status: body.status ?? response.status, code: body.code, title: body.title ?? body.code,
      detail: body.detail ?? "", type: body.type ?? null, problem: body,
    });
  }
  return new ApiError({
    status: response.status, code: `http_${response.status}`, title: response.statusText || "Error",
    detail: `confctl answered ${response.status}`,
  });
}

// A success's JSON body, or null. A 204, an empty body, or one that is not JSON (a proxy on the way may strip or
// replace it) is still a success: the action was accepted, and what it did shows in the events, not here.
async function bodyOf(response) {
  if (response.status === 204) return null;
  let text;
  try {
    text = await response.text();
  } catch {
    return null; // the body was cut off: the status line already said it was accepted
  }
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// A read answered 2xx without the JSON document it asks for (a proxy in the way, not confctl): read it again.
export class BadAnswer extends Error {
  constructor(path) {
    super(`${path}: the answer had no JSON body`);
    this.name = "BadAnswer";
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const RETRY_MS = [300, 1000]; // an action whose request got no answer is repeated with its same key

export class Api {
  // getToken() gives the bearer token of the moment (the browser token the console signed in with).
  constructor(getToken) {
    this.getToken = getToken;
  }

  async request(method, path, { body, idempotencyKey } = {}) {
    const headers = { Accept: "application/json, application/problem+json" };
    const token = this.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let response;
    try {
      response = await fetch(ROOT + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new NetworkError(error);
    }
    if (!response.ok) throw await problemOf(response);
    return bodyOf(response);
  }

  // A read: its answer must be the JSON document asked for (a success without one is retried like no answer).
  async get(path) {
    const body = await this.request("GET", path);
    if (body === null) throw new BadAnswer(path);
    return body;
  }

  // One user action: a fresh Idempotency-Key, reused by the retries after a network error (so a request that
  // did reach confctl is not carried out twice, where the route takes keys).
  async act(method, path, body) {
    const idempotencyKey = newIdempotencyKey();
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.request(method, path, { body, idempotencyKey });
      } catch (error) {
        if (!(error instanceof NetworkError) || attempt >= RETRY_MS.length) throw error;
        await sleep(RETRY_MS[attempt]);
      }
    }
  }
}

// A path segment: labels and ids may hold characters that mean something in a URL.
export const seg = (value) => encodeURIComponent(value);
