// Between the host's request/response records and the Web's Request/Response.
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
const NativeResponse = globalThis.Response;
const STATUS = Symbol("status");

/**
 * Response, as Cloudflare's: it takes status 101 with `webSocket` (the answer that completes a
 * WebSocket upgrade), which the Web's Response refuses.
 */
export class Response extends NativeResponse {
  constructor(body, init) {
    const status = init?.status;
    const special = status !== undefined && (status < 200 || status > 599);
    super(body, special ? { ...init, status: 200 } : init);
    if (special) this[STATUS] = status;
    this.webSocket = init?.webSocket ?? null;
  }

  get status() {
    return this[STATUS] ?? super.status;
  }

  get ok() {
    return this.status >= 200 && this.status < 300;
  }
}

/** The Web Request for the host's `request` record. */
export function toRequest(request) {
  const headers = new Headers();
  for (const [name, value] of request.headers) headers.append(name, fromUtf8.decode(value));
  const host = headers.get("host") ?? "localhost";
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const web = new Request(`http://${host}${request.path}`, {
    method: request.method,
    headers,
    body: hasBody && request.body.length > 0 ? request.body : undefined,
  });
  // A Web Request drops the headers a browser may not set (Upgrade, Host, Connection...); an
  // object needs them all (`upgrade: websocket`, as at Cloudflare).
  Object.defineProperty(web, "headers", { value: headers, enumerable: true });
  return web;
}

/** The host's `response` record for what a handler returned. */
export async function fromResponse(response) {
  if (!(response instanceof NativeResponse)) {
    throw new TypeError(`fetch() must return a Response, not ${response === null ? "null" : typeof response}`);
  }
  const headers = [];
  response.headers.forEach((value, name) => headers.push([name, utf8.encode(value)]));
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers, body };
}

/** The host's `request` record for a Request sent to another object (path and query only). */
export async function toRecord(request) {
  const url = new URL(request.url);
  const headers = [];
  request.headers.forEach((value, name) => headers.push([name, utf8.encode(value)]));
  const body = new Uint8Array(await request.arrayBuffer());
  return { method: request.method, path: url.pathname + url.search, headers, body };
}

/** The Response for the host's `response` record (another object's answer). */
export function fromRecord(record) {
  const headers = new Headers();
  for (const [name, value] of record.headers) headers.append(name, fromUtf8.decode(value));
  const nullBody = record.status === 101 || record.status === 204 || record.status === 304;
  return new Response(nullBody ? null : record.body, { status: record.status, headers });
}
