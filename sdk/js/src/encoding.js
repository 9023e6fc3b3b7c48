// How stored values become bytes (KV values and WebSocket attachments).
//
// A value made only of JSON types (strings, finite numbers, booleans, null, arrays and plain
// objects) is stored as its JSON text in UTF-8, which a Rust object reads with serde_json (and
// writes the same way). Any other value is stored as one 0x00 byte followed by the JSON of a
// tagged tree, so that Date, Map, Set, byte arrays, undefined, BigInt and the numbers JSON
// cannot hold come back as they went in. A JSON text never starts with 0x00, so the two cannot
// be confused.

const TAGGED = 0;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

function isPlainObject(value) {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isJsonShaped(value) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object":
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!(i in value) || !isJsonShaped(value[i])) return false;
        return true;
      }
      if (!isPlainObject(value)) return false;
      for (const key of Object.keys(value)) if (!isJsonShaped(value[key])) return false;
      return true;
    default:
      return false;
  }
}

function base64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

function unbase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function tag(value) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return { n: Object.is(value, -0) ? "-0" : String(value) };
    case "undefined":
      return { u: 0 };
    case "bigint":
      return { bi: value.toString() };
    case "object":
      if (value === null) return null;
      if (Array.isArray(value)) return Array.from(value, tag);
      if (value instanceof Date) return { d: value.getTime() };
      if (value instanceof Map) return { m: Array.from(value, ([k, v]) => [tag(k), tag(v)]) };
      if (value instanceof Set) return { s: Array.from(value, tag) };
      if (value instanceof Uint8Array) return { u8: base64(value) };
      if (value instanceof ArrayBuffer) return { ab: base64(new Uint8Array(value)) };
      if (isPlainObject(value)) {
        const fields = {};
        for (const key of Object.keys(value)) fields[key] = tag(value[key]);
        return { o: fields };
      }
      break;
  }
  throw new TypeError(`cannot store a value of type ${describe(value)}: store strings, numbers, booleans, null, arrays, plain objects, Date, Map, Set, Uint8Array or ArrayBuffer`);
}

function describe(value) {
  if (typeof value === "object" && value !== null) return value.constructor?.name ?? "object";
  return typeof value;
}

function untag(node) {
  if (node === null || typeof node !== "object") return node;
  if (Array.isArray(node)) return node.map(untag);
  if ("o" in node) {
    const fields = {};
    for (const key of Object.keys(node.o)) fields[key] = untag(node.o[key]);
    return fields;
  }
  if ("d" in node) return new Date(node.d);
  if ("m" in node) return new Map(node.m.map(([k, v]) => [untag(k), untag(v)]));
  if ("s" in node) return new Set(node.s.map(untag));
  if ("u8" in node) return unbase64(node.u8);
  if ("ab" in node) return unbase64(node.ab).buffer;
  if ("u" in node) return undefined;
  if ("bi" in node) return BigInt(node.bi);
  if ("n" in node) return node.n === "-0" ? -0 : Number(node.n);
  throw new TypeError("a stored value has an unknown tag");
}

/** The bytes stored for `value`. */
export function encode(value) {
  if (isJsonShaped(value)) return utf8.encode(JSON.stringify(value));
  const text = utf8.encode(JSON.stringify(tag(value)));
  const bytes = new Uint8Array(text.length + 1);
  bytes[0] = TAGGED;
  bytes.set(text, 1);
  return bytes;
}

/**
 * The value stored as `bytes`. Bytes that are neither form (written by another guest as raw
 * bytes) come back as a Uint8Array.
 */
export function decode(bytes) {
  try {
    if (bytes.length > 0 && bytes[0] === TAGGED) return untag(JSON.parse(fromUtf8.decode(bytes.subarray(1))));
    return JSON.parse(fromUtf8.decode(bytes));
  } catch {
    return new Uint8Array(bytes);
  }
}
