// `this.env`: one binding per namespace the server runs, with Cloudflare's
// DurableObjectNamespace API (ids and stubs), and the namespace's `env` variables. Calls go
// through the host's `objects.fetch`: an ordinary event of the callee, whose answer arrives once
// it is durable.
import * as objects from "opendo:durable-object/objects@0.1.0";
import { getEnvironment } from "wasi:cli/environment@0.2.3";
import { decode, encode } from "./encoding.js";
import { hostCall, hostError } from "./errors.js";
import { fromRecord, toRecord } from "./http.js";

/** An object's id: 64 hex characters (`toString()`), and its name when made from one. */
export class DurableObjectId {
  #hex;

  constructor(hex, name) {
    this.#hex = hex;
    if (name !== undefined) this.name = name;
  }

  toString() {
    return this.#hex;
  }

  equals(other) {
    return other instanceof DurableObjectId && other.toString() === this.#hex;
  }
}

/** The request header that names the method of an RPC call (`opendo_runtime::RPC_HEADER`). */
export const RPC_HEADER = "opendo-rpc";

/**
 * A handle on another object: `fetch` sends it a request; any other method name is a call of
 * that method of the object's class (RPC), its arguments and result in the value encoding.
 */
export class DurableObjectStub {
  #namespace;
  #target;

  constructor(namespace, target, id) {
    this.#namespace = namespace;
    this.#target = target;
    this.id = id;
    if (target.tag === "name") this.name = target.val;
    return new Proxy(this, {
      get(stub, property) {
        // `then` stays undefined: a stub is not a promise.
        if (typeof property !== "string" || property in stub || property === "then") {
          const value = Reflect.get(stub, property);
          return typeof value === "function" ? value.bind(stub) : value;
        }
        return (...args) => stub.#call(property, args);
      },
    });
  }

  async fetch(input, init) {
    // A request passed on as it came keeps every header (a copy made by `new Request` drops
    // those a browser may not set, `Upgrade` among them: a WebSocket upgrade must pass whole).
    const request =
      input instanceof Request && init === undefined
        ? input
        : new Request(typeof input === "string" && input.startsWith("/") ? `http://do${input}` : input, init);
    return this.#send(request);
  }

  async #call(method, args) {
    const request = new Request("http://do/", { method: "POST", headers: { [RPC_HEADER]: method }, body: encode(args) });
    const response = await this.#send(request);
    const outcome = response.headers.get(RPC_HEADER);
    const value = decode(new Uint8Array(await response.arrayBuffer()));
    if (outcome === "ok") return value;
    if (outcome === "error") {
      const error = new Error(value?.message ?? String(value));
      error.name = value?.name ?? "Error";
      error.remote = true;
      throw error;
    }
    throw new Error(
      `${this.#namespace}.${method}(): the object answered ${response.status} without a result (only JavaScript objects take calls of their methods)`,
    );
  }

  async #send(request) {
    const record = await toRecord(request);
    let response;
    try {
      response = objects.fetch(this.#namespace, this.#target, record);
    } catch (error) {
      const payload = error?.payload;
      if (payload && typeof payload.code === "string") {
        const failed = new Error(`call to ${this.#namespace} failed: ${payload.code}: ${payload.message}`);
        failed.code = payload.code;
        throw failed;
      }
      throw hostError(error);
    }
    return fromRecord(response);
  }
}

export class DurableObjectNamespace {
  #name;

  constructor(name) {
    this.#name = name;
  }

  idFromName(name) {
    return new DurableObjectId(hostCall(() => objects.idFromName(this.#name, name)), name);
  }

  newUniqueId() {
    return new DurableObjectId(hostCall(() => objects.newUniqueId(this.#name)));
  }

  idFromString(hex) {
    return new DurableObjectId(hostCall(() => objects.idFromString(this.#name, hex)));
  }

  /** The stub of `id`; an id made by `idFromName` reaches the object by its name. */
  get(id) {
    if (!(id instanceof DurableObjectId)) throw new TypeError("get takes a DurableObjectId (from idFromName, newUniqueId or idFromString)");
    const target = id.name !== undefined ? { tag: "name", val: id.name } : { tag: "id", val: id.toString() };
    return new DurableObjectStub(this.#name, target, id);
  }

  getByName(name) {
    return this.get(this.idFromName(name));
  }
}

function known(namespace) {
  try {
    objects.newUniqueId(namespace);
    return true;
  } catch {
    return false;
  }
}

/**
 * `env`: `env.NAME` is the namespace called NAME, else the namespace's `env` variable NAME (a
 * string, as Cloudflare's `vars`), else the namespace called `name` in lower case (Cloudflare's
 * bindings are usually upper case, open-do's namespace names lower case).
 */
export function makeEnv() {
  const bindings = new Map();
  let variables;
  // Read when first asked: the module's top level runs at build time, without the server's env.
  const variable = (name) => {
    variables ??= new Map(getEnvironment());
    return variables.get(name);
  };
  const binding = (property) => {
    if (!bindings.has(property)) {
      let value;
      if (known(property)) value = new DurableObjectNamespace(property);
      else if (variable(property) !== undefined) value = variable(property);
      else if (known(property.toLowerCase())) value = new DurableObjectNamespace(property.toLowerCase());
      bindings.set(property, value);
    }
    return bindings.get(property);
  };
  return new Proxy(
    {},
    {
      get: (_, property) => (typeof property === "string" ? binding(property) : undefined),
      has: (_, property) => typeof property === "string" && binding(property) !== undefined,
    },
  );
}
