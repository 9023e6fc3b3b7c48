// The component's `handler` export: each event of the host calls the object's method of the
// same name. The object is made on the first event of an instance (after a wake, as at
// Cloudflare, the constructor runs again).
import * as state from "opendo:durable-object/state@0.1.0";
import { fromResponse, toRequest } from "./http.js";
import { makeEnv } from "./namespaces.js";
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
    await ctx.settle();
    const result = typeof target[method] === "function" ? await target[method](...args) : undefined;
    await ctx.settle();
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

  return {
    async fetch(request) {
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
