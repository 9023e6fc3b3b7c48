// open-do's `cloudflare:workers` in a front: the module's Worker (`export default`) answers every
// request. A front has no storage or sockets, so the module's Durable Object classes are only
// defined here; their objects run in the namespaces' own components.
import { Response } from "./http.js";

globalThis.Response = Response;

export { DurableObjectId, DurableObjectNamespace, DurableObjectStub } from "./namespaces.js";
export { encode, decode } from "./encoding.js";
export { WorkerEntrypoint } from "./entrypoint.js";
export { Response };

export class DurableObject {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** The request and response of a WebSocket auto-response (a value only, in a front). */
export class WebSocketRequestResponsePair {
  constructor(request, response) {
    this.request = request;
    this.response = response;
  }
}

export class WebSocketPair {
  constructor() {
    throw new Error("a front cannot make WebSockets: pass the upgrade request on to an object (stub.fetch(request))");
  }
}
