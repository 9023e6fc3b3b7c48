// The DurableObject base class and its `ctx` (Cloudflare's DurableObjectState).
import * as state from "opendo:durable-object/state@0.1.0";
import { DurableObjectId } from "./namespaces.js";
import { DurableObjectStorage } from "./storage.js";
import * as sockets from "./websockets.js";

export class DurableObjectState {
  #pending = [];

  constructor() {
    this.id = new DurableObjectId(state.id(), state.name());
    this.storage = new DurableObjectStorage();
  }

  /** Events never overlap in open-do, so this only runs `work` (and the event awaits it). */
  blockConcurrencyWhile(work) {
    const done = Promise.resolve().then(work);
    this.#pending.push(done);
    return done;
  }

  /** The event ends only once `promise` settles. */
  waitUntil(promise) {
    this.#pending.push(Promise.resolve(promise));
  }

  acceptWebSocket(ws, tags) {
    sockets.acceptWebSocket(ws, tags);
  }

  getWebSockets(tag) {
    return sockets.getWebSockets(tag);
  }

  getTags(ws) {
    return sockets.getTags(ws);
  }

  setWebSocketAutoResponse(pair) {
    sockets.setAutoResponse(pair);
  }

  getWebSocketAutoResponse() {
    return sockets.getAutoResponse();
  }

  getWebSocketAutoResponseTimestamp(ws) {
    return sockets.getAutoResponseTimestamp(ws);
  }

  /** Whether `waitUntil` or `blockConcurrencyWhile` handed over work not yet awaited. */
  get busy() {
    return this.#pending.length > 0;
  }

  /** Waits for the promises of `waitUntil` and `blockConcurrencyWhile`, and fails if one failed. */
  async settle() {
    while (this.#pending.length > 0) {
      const pending = this.#pending;
      this.#pending = [];
      await Promise.all(pending);
    }
  }
}

/** The base class of an object: `this.ctx`, `this.env`, and `this.storage` (= `ctx.storage`). */
export class DurableObject {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
    this.storage = ctx.storage;
  }
}
