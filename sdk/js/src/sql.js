// `ctx.storage.sql`: SQL on the object's SQLite database (Cloudflare's SqlStorage), and the
// prepared-statement form (`prepare(q).bind(...).all()`) that D1-style code uses.
import * as sql from "opendo:durable-object/sql@0.1.0";
import { hostCall } from "./errors.js";

function toSql(value) {
  switch (typeof value) {
    case "number":
      return Number.isSafeInteger(value) && !Object.is(value, -0)
        ? { tag: "integer", val: BigInt(value) }
        : { tag: "real", val: value };
    case "bigint":
      return { tag: "integer", val: value };
    case "string":
      return { tag: "text", val: value };
    case "boolean":
      return { tag: "integer", val: value ? 1n : 0n };
    case "undefined":
      return { tag: "null" };
    case "object":
      if (value === null) return { tag: "null" };
      if (value instanceof ArrayBuffer) return { tag: "blob", val: new Uint8Array(value) };
      if (ArrayBuffer.isView(value)) return { tag: "blob", val: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
      break;
  }
  throw new TypeError(`cannot bind a value of type ${typeof value} to SQL: bind numbers, bigints, strings, booleans, null or bytes`);
}

function fromSql(value) {
  switch (value.tag) {
    case "null":
      return null;
    case "integer": {
      const n = Number(value.val);
      return Number.isSafeInteger(n) ? n : value.val;
    }
    case "blob":
      return new Uint8Array(value.val).buffer;
    default:
      return value.val;
  }
}

/** The result of `sql.exec`: rows as objects (iterate, `toArray`, `one`) or arrays (`raw`). */
export class SqlStorageCursor {
  #rows;
  #next = 0;

  constructor(result) {
    this.columnNames = result.columns;
    this.#rows = result.rows.map((row) => row.map(fromSql));
    this.rowsRead = Number(result.rowsRead);
    this.rowsWritten = Number(result.rowsWritten);
  }

  #object(row) {
    const object = {};
    this.columnNames.forEach((name, i) => (object[name] = row[i]));
    return object;
  }

  next() {
    if (this.#next >= this.#rows.length) return { done: true, value: undefined };
    return { done: false, value: this.#object(this.#rows[this.#next++]) };
  }

  [Symbol.iterator]() {
    return this;
  }

  toArray() {
    const rest = this.#rows.slice(this.#next).map((row) => this.#object(row));
    this.#next = this.#rows.length;
    return rest;
  }

  one() {
    const rest = this.toArray();
    if (rest.length !== 1) throw new Error(`Expected exactly one result from SQL query, but got ${rest.length === 0 ? "no results" : `${rest.length} results`}.`);
    return rest[0];
  }

  raw() {
    const rows = this.#rows.slice(this.#next);
    this.#next = this.#rows.length;
    const iterator = rows[Symbol.iterator]();
    iterator.toArray = () => Array.from(iterator);
    return iterator;
  }
}

function run(query, bindings) {
  return new SqlStorageCursor(hostCall(() => sql.exec(query, bindings.map(toSql))));
}

/** A statement with its bindings, run by `all`, `first`, `run` or `raw`. */
export class SqlStatement {
  #query;
  #bindings;

  constructor(query, bindings = []) {
    this.#query = query;
    this.#bindings = bindings;
  }

  bind(...bindings) {
    return new SqlStatement(this.#query, bindings);
  }

  #meta(cursor) {
    return { rows_read: cursor.rowsRead, rows_written: cursor.rowsWritten, changes: cursor.rowsWritten };
  }

  all() {
    const cursor = run(this.#query, this.#bindings);
    return { success: true, results: cursor.toArray(), meta: this.#meta(cursor) };
  }

  first(column) {
    const [row] = run(this.#query, this.#bindings).toArray();
    if (row === undefined) return null;
    return column === undefined ? row : row[column];
  }

  run() {
    const cursor = run(this.#query, this.#bindings);
    return { success: true, results: cursor.toArray(), meta: this.#meta(cursor) };
  }

  raw({ columnNames = false } = {}) {
    const cursor = run(this.#query, this.#bindings);
    const rows = Array.from(cursor.raw());
    return columnNames ? [cursor.columnNames, ...rows] : rows;
  }
}

/** `ctx.storage.sql`. */
export class SqlStorage {
  exec(query, ...bindings) {
    return run(query, bindings);
  }

  prepare(query) {
    return new SqlStatement(query);
  }

  get databaseSize() {
    return Number(hostCall(() => sql.databaseSize()));
  }
}
