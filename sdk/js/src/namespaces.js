// `this.env`: one binding per namespace the server runs, with Cloudflare's
// DurableObjectNamespace API (ids and stubs), and the namespace's `env` variables. Calls go through the host's `objects.fetch`: an
// ordinary event of the callee, whose answer arrives once it is durable.
import * as objects from "opendo:durable-object/objects@0.1.0";
import { getEnvironment } from "wasi:cli/environment@0.2.3";
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

/** A handle on another object; `fetch` sends it a request. */
export class DurableObjectStub {
  #namespace;
  #target;

  constructor(namespace, target, id) {
    this.#namespace = namespace;
    this.#target = target;
    this.id = id;
    if (target.tag === "name") this.name = target.val;
  }

  async fetch(input, init) {
    const request = new Request(typeof input === "string" && input.startsWith("/") ? `http://do${input}` : input, init);
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
