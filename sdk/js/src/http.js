// Between the host's request/response records and the Web's Request/Response.
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
const NativeResponse = globalThis.Response;
const STATUS = Symbol("status");
const BODY = Symbol("body");

/**
 * A copy of the bytes of a body given as a string or bytes (as the Web's Response copies them),
 * or undefined for any other kind (a stream, a Blob, a form...).
 */
function bytesOf(body) {
  if (body === null || body === undefined) return new Uint8Array(0);
  if (typeof body === "string") return utf8.encode(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  return undefined;
}

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
    // Kept so that answering the host need not read the body back through its stream (several
    // promise jobs per event), and for clone().
    this[BODY] = bytesOf(body);
  }

  /** As the Web's, through this constructor (so that the answer takes the short way too). */
  static json(data, init = undefined) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Response.json: the data cannot be serialized as JSON");
    const headers = new Headers(init?.headers);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    return new Response(text, { ...init, headers });
  }

  get status() {
    return this[STATUS] ?? super.status;
  }

  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  /** The engine's own clone() of a Response traps; this one copies a body given as a string or bytes. */
  clone() {
    if (this.bodyUsed) throw new TypeError("Response.clone: the body has already been read");
    if (this[BODY] === undefined) {
      throw new TypeError("Response.clone: only a response whose body is a string or bytes can be cloned in open-do");
    }
    const init = { status: this.status, statusText: this.statusText, headers: new Headers(this.headers), webSocket: this.webSocket };
    return new Response(this[BODY], init);
  }
}

// The engine's own clone() traps (which would reset the object); a TypeError can be caught.
NativeResponse.prototype.clone = function clone() {
  throw new TypeError(
    "Response.clone: a response made by the engine (a fetch() answer) cannot be cloned in open-do: read its body once and make new Responses of the bytes",
  );
};

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

/**
 * The host's `response` record for what a handler returned: at once for a body given as a string
 * or bytes, else a promise of it.
 */
export function fromResponse(response) {
  if (!(response instanceof NativeResponse)) {
    throw new TypeError(`fetch() must return a Response, not ${response === null ? "null" : typeof response}`);
  }
  const headers = [];
  response.headers.forEach((value, name) => headers.push([name, utf8.encode(value)]));
  // A Response made by the engine (a `fetch()` answer, say) has no BODY.
  const given = response.bodyUsed ? undefined : response[BODY];
  if (given !== undefined) return { status: response.status, headers, body: given };
  return response.arrayBuffer().then((body) => ({ status: response.status, headers, body: new Uint8Array(body) }));
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
