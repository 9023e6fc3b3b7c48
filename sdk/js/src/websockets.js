// Hibernatable WebSockets: `ctx.acceptWebSocket`, `ctx.getWebSockets`, auto-responses, and the
// WebSocket objects handlers receive. The runtime owns the connections; a WebSocket here is a
// handle on one of them by its socket number, valid across hibernation.
import * as websockets from "opendo:durable-object/websockets@0.1.0";
import { decode, encode } from "./encoding.js";
import { hostCall } from "./errors.js";

const handles = new Map();

/** The WebSocket object of socket `id` (the same object for as long as the instance lives). */
export function socketFor(id) {
  let ws = handles.get(id);
  if (ws === undefined) {
    ws = new WebSocket();
    ws.socket = id;
    handles.set(id, ws);
  }
  return ws;
}

export function forget(id) {
  handles.delete(id);
}

function ownSocket(ws) {
  if (!(ws instanceof WebSocket) || ws.socket === undefined) {
    throw new TypeError("not a WebSocket this object accepted (pass the server end of a WebSocketPair to ctx.acceptWebSocket)");
  }
  return ws.socket;
}

/** One end of a WebSocketPair, or a socket accepted by the object. */
export class WebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /** The socket number, once accepted. */
  socket = undefined;

  get readyState() {
    if (this.socket === undefined) return WebSocket.CONNECTING;
    return websockets.tags(this.socket) === undefined ? WebSocket.CLOSED : WebSocket.OPEN;
  }

  send(message) {
    const id = ownSocket(this);
    let value;
    if (typeof message === "string") value = { tag: "text", val: message };
    else if (message instanceof ArrayBuffer) value = { tag: "binary", val: new Uint8Array(message) };
    else if (ArrayBuffer.isView(message)) value = { tag: "binary", val: new Uint8Array(message.buffer, message.byteOffset, message.byteLength) };
    else throw new TypeError("send takes a string, an ArrayBuffer or a typed array");
    hostCall(() => websockets.send(id, value));
  }

  close(code = 1000, reason = "") {
    hostCall(() => websockets.close(ownSocket(this), code, reason));
  }

  serializeAttachment(value) {
    hostCall(() => websockets.setAttachment(ownSocket(this), value === undefined ? undefined : encode(value)));
  }

  deserializeAttachment() {
    const bytes = websockets.getAttachment(ownSocket(this));
    return bytes === undefined ? null : decode(bytes);
  }

  /** Sockets accepted by `ctx.acceptWebSocket` need no `accept()`; kept for code that calls it. */
  accept() {}
}

/** `new WebSocketPair()`: `[client, server]`; the object accepts the server end. */
export class WebSocketPair {
  constructor() {
    this[0] = new WebSocket();
    this[1] = new WebSocket();
  }

  *[Symbol.iterator]() {
    yield this[0];
    yield this[1];
  }
}

/** A request text the runtime answers itself, without waking the object. */
export class WebSocketRequestResponsePair {
  #request;
  #response;

  constructor(request, response) {
    this.#request = request;
    this.#response = response;
  }

  get request() {
    return this.#request;
  }

  get response() {
    return this.#response;
  }
}

export function acceptWebSocket(ws, tags = []) {
  if (!(ws instanceof WebSocket)) throw new TypeError("acceptWebSocket takes the server end of a WebSocketPair");
  if (ws.socket !== undefined) throw new TypeError("this WebSocket was already accepted");
  const id = hostCall(() => websockets.accept(tags));
  ws.socket = id;
  handles.set(id, ws);
}

export function getWebSockets(tag) {
  return Array.from(websockets.listSockets(tag), socketFor);
}

export function getTags(ws) {
  return websockets.tags(ownSocket(ws)) ?? [];
}

export function setAutoResponse(pair) {
  const value = pair == null ? undefined : { request: pair.request, response: pair.response };
  hostCall(() => websockets.setAutoResponse(value));
}

export function getAutoResponse() {
  const pair = websockets.getAutoResponse();
  return pair === undefined ? null : new WebSocketRequestResponsePair(pair.request, pair.response);
}

export function getAutoResponseTimestamp(ws) {
  const time = websockets.autoResponseTimestamp(ownSocket(ws));
  return time === undefined ? null : new Date(Number(time));
}
