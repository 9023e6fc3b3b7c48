// The component's `handler` export: each event of the host calls the object's method of the
// same name. The object is made on the first event of an instance (after a wake, as at
// Cloudflare, the constructor runs again).
import * as state from "opendo:durable-object/state@0.1.0";
import { fromResponse, toRequest } from "./http.js";
import { decode, encode } from "./encoding.js";
import { makeEnv, RPC_HEADER } from "./namespaces.js";
import { DurableObject, DurableObjectState } from "./object.js";
import { forget, socketFor } from "./websockets.js";

function squash(name) {
  return name.toLowerCase().replace(/[-_]/g, "");
}

/** The class to run: the module's only DurableObject class, or the one named like the namespace. */
function pickClass(module, namespace) {
  const classes = Object.entries(module).filter(
    ([, value]) => typeof value === "function" && value.prototype instanceof DurableObject,
  );
  const named = classes.filter(([name, value]) => squash(name) === squash(namespace) || squash(value.name) === squash(namespace));
  if (named.length === 1) return named[0][1];
  if (classes.length === 1) return classes[0][1];
  const names = classes.map(([name]) => name).join(", ");
  throw new Error(
    classes.length === 0
      ? "the module exports no class that extends DurableObject (import { DurableObject } from \"cloudflare:workers\")"
      : `the module exports several DurableObject classes (${names}): name the namespace after one of them`,
  );
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
/** The response header that undoes the event's writes (`opendo_runtime::ROLLBACK_HEADER`). */
const ROLLBACK_HEADER = "opendo-rollback";
/** Methods a stub cannot call: the handlers, which events of their own run. */
const HANDLERS = new Set(["constructor", "fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError"]);

/** Whether `method` is a method of the object's own class (not of DurableObject, not a handler). */
function callable(object, method) {
  if (HANDLERS.has(method)) return false;
  for (let proto = Object.getPrototypeOf(object); proto && proto !== DurableObject.prototype; proto = Object.getPrototypeOf(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, method);
    if (descriptor !== undefined) return typeof descriptor.value === "function";
  }
  return false;
}

function errorText(error) {
  if (error instanceof Error) return error.stack ? `${error}\n${error.stack}` : String(error);
  return String(error);
}

function messageData(message) {
  return message.tag === "text" ? message.val : new Uint8Array(message.val).buffer;
}

export function handlerFor(module) {
  let ctx;
  let object;

  function instance() {
    if (object === undefined) {
      const Class = pickClass(module, state.namespace());
      ctx = new DurableObjectState();
      object = new Class(ctx, makeEnv());
    }
    return object;
  }

  async function run(method, ...args) {
    const target = instance();
    // Only awaited when there is work: each await is a promise job, a real share of a small event.
    if (ctx.busy) await ctx.settle();
    const result = typeof target[method] === "function" ? await target[method](...args) : undefined;
    if (ctx.busy) await ctx.settle();
    return result;
  }

  // Handlers that return `result<_, string>`: a throw becomes the error message, which the
  // runtime logs, and the event's writes roll back.
  async function guarded(method, ...args) {
    try {
      await run(method, ...args);
    } catch (error) {
      throw errorText(error);
    }
  }

  // A call of one of the object's methods by a stub (RPC). A throw is answered to the caller
  // (as Cloudflare does) and, as any uncaught exception here, undoes the event's writes.
  async function call(method, request) {
    const target = instance();
    const answer = (outcome, value, headers = []) => ({
      status: outcome === "ok" ? 200 : 500,
      headers: [[RPC_HEADER, utf8.encode(outcome)], ...headers],
      body: encode(value),
    });
    try {
      if (!callable(target, method)) throw new TypeError(`${target.constructor.name} has no method ${method}() to call`);
      const args = decode(request.body);
      return answer("ok", await run(method, ...(Array.isArray(args) ? args : [])));
    } catch (error) {
      const thrown = error instanceof Error ? { name: error.name, message: error.message } : { name: "Error", message: String(error) };
      return answer("error", thrown, [[ROLLBACK_HEADER, utf8.encode("1")]]);
    }
  }

  return {
    async fetch(request) {
      const rpc = request.headers.find(([name]) => name.toLowerCase() === RPC_HEADER);
      if (rpc !== undefined) return call(fromUtf8.decode(rpc[1]), request);
      const target = instance();
      if (typeof target.fetch !== "function") {
        return { status: 501, headers: [], body: new TextEncoder().encode("this object has no fetch() method\n") };
      }
      return fromResponse(await run("fetch", toRequest(request)));
    },

    async alarm(info) {
      await guarded("alarm", { retryCount: info.retryCount, isRetry: info.isRetry });
    },

    async websocketMessage(socket, message) {
      await guarded("webSocketMessage", socketFor(socket), messageData(message));
    },

    async websocketClose(socket, code, reason, wasClean) {
      try {
        await guarded("webSocketClose", socketFor(socket), code, reason, wasClean);
      } finally {
        forget(socket);
      }
    },

    async websocketError(socket, message) {
      try {
        await guarded("webSocketError", socketFor(socket), new Error(message));
      } finally {
        forget(socket);
      }
    },
  };
}
