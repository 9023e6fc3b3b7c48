// A JavaScript object for the end-to-end tests: each route exercises one part of the SDK and
// answers what it saw as JSON, for the test to check.
import { DurableObject } from "cloudflare:workers";

const VALUES = {
  text: "héllo",
  number: 1.5,
  integer: 42,
  boolean: false,
  nothing: null,
  list: [1, "two", [3]],
  object: { a: 1, nested: { b: [true] } },
  date: new Date(1700000000123),
  map: new Map([["k", 1], [2, "v"]]),
  set: new Set(["x", 3]),
  bytes: new Uint8Array([0, 1, 254, 255]),
  buffer: new Uint8Array([9, 8]).buffer,
  mixed: { when: new Date(0), tags: new Set(["t"]) },
  special: [NaN, Infinity, -0, undefined],
  big: 12345678901234567890n,
};

// What a value is, in JSON the test can compare: its kind and contents.
function describe(value) {
  if (value instanceof Date) return { Date: value.getTime() };
  if (value instanceof Map) return { Map: Array.from(value, ([k, v]) => [describe(k), describe(v)]) };
  if (value instanceof Set) return { Set: Array.from(value, describe) };
  if (value instanceof Uint8Array) return { Uint8Array: Array.from(value) };
  if (value instanceof ArrayBuffer) return { ArrayBuffer: Array.from(new Uint8Array(value)) };
  if (Array.isArray(value)) return value.map(describe);
  if (typeof value === "bigint") return { BigInt: value.toString() };
  if (typeof value === "number" && !Number.isFinite(value)) return { Number: String(value) };
  if (Object.is(value, -0)) return { Number: "-0" };
  if (value === undefined) return { undefined: true };
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describe(v)]));
  }
  return value;
}

// The engine's Response, as `fetch()` answers are (the SDK's Response extends it).
const NativeResponse = Object.getPrototypeOf(Response);

function keys(map) {
  return Array.from(map.keys());
}

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return String(error.message ?? error);
  }
}

const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Probe extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    // Work behind a timer: the first event must wait for it.
    this.built = "not yet";
    ctx.blockConcurrencyWhile(async () => {
      await later(20);
      this.built = "built";
    });
  }

  async fetch(request) {
    const url = new URL(request.url);
    const storage = this.ctx.storage;
    const route = `${request.method} ${url.pathname}`;
    switch (route) {
      case "POST /put-values":
        for (const [key, value] of Object.entries(VALUES)) await storage.put(key, value);
        return Response.json({ stored: Object.keys(VALUES).length });
      case "GET /get-values": {
        const found = await storage.get(Object.keys(VALUES));
        return Response.json(Object.fromEntries(Array.from(found, ([k, v]) => [k, describe(v)])));
      }
      case "GET /expected-values":
        return Response.json(Object.fromEntries(Object.entries(VALUES).map(([k, v]) => [k, describe(v)])));
      case "GET /built":
        return new Response(this.built);
      case "POST /wait-until":
        // Written after a timer, once the handler has returned its response.
        this.ctx.waitUntil(later(50).then(() => storage.put("waited", "done")));
        return new Response("handed over");
      case "GET /get":
        return Response.json(describe((await storage.get(url.searchParams.get("key"))) ?? null));
      case "POST /put-json":
        await storage.put("shared", { a: 1, b: [true, "x"], c: null, d: "é" });
        return new Response("ok");
      case "POST /kv": {
        await storage.put({ a: 1, b: 2, c: 3, d: 4, "d/x": 5, e: 6 });
        const many = Array.from({ length: 129 }, (_, i) => `k${i}`);
        return Response.json({
          all: keys(await storage.list()),
          start: keys(await storage.list({ start: "b" })),
          startAfter: keys(await storage.list({ startAfter: "b" })),
          end: keys(await storage.list({ start: "b", end: "d" })),
          prefix: keys(await storage.list({ prefix: "d" })),
          reverse: keys(await storage.list({ reverse: true, limit: 2 })),
          reverseBounded: keys(await storage.list({ start: "b", end: "e", reverse: true })),
          values: Array.from((await storage.list({ prefix: "d" })).values()),
          getMissing: (await storage.get("nope")) ?? "undefined",
          getMany: Object.fromEntries(await storage.get(["a", "nope", "c"])),
          deleteOne: await storage.delete("a"),
          deleteOneAgain: await storage.delete("a"),
          deleteMany: await storage.delete(["b", "c", "nope"]),
          tooManyGet: await failure(storage.get(many)),
          tooManyDelete: await failure(storage.delete(many)),
          tooManyPut: await failure(storage.put(Object.fromEntries(many.map((k) => [k, 1])))),
          left: keys(await storage.list()),
        });
      }
      case "POST /kv-sync": {
        const sync = storage.kv;
        sync.put("s/a", { n: 1 });
        sync.put("s/b", [2]);
        sync.put("s/c", "three");
        const attempt = (work) => {
          try {
            return work();
          } catch (error) {
            return `threw: ${error.message}`;
          }
        };
        // A put that fails inside transactionSync, not awaited: the transaction is undone.
        const unawaited = attempt(() =>
          storage.transactionSync(() => {
            sync.put("s/t", 1);
            storage.put("s/u", undefined);
            return "committed";
          }),
        );
        return Response.json({
          get: sync.get("s/a"),
          missing: sync.get("nope") ?? "undefined",
          list: Array.from(sync.list({ prefix: "s/" })),
          reverse: Array.from(sync.list({ prefix: "s/", reverse: true, limit: 1 })),
          sameKeys: await storage.get("s/c"),
          deleted: [sync.delete("s/b"), sync.delete("s/b")],
          putUndefined: attempt(() => sync.put("x", undefined)),
          many: attempt(() => sync.get(["s/a"])),
          unawaited,
          left: Array.from(sync.list({ prefix: "s/" }), ([key]) => key),
        });
      }
      case "POST /delete-all": {
        await storage.put("x", 1);
        await storage.setAlarm(Date.now() + 3_600_000);
        const before = await storage.getAlarm();
        await storage.deleteAll();
        return Response.json({ before: before !== null, after: await storage.getAlarm(), left: keys(await storage.list()) });
      }
      case "POST /throw":
        await storage.put("doomed", 1);
        throw new Error("thrown on purpose");
      case "POST /reject":
        await storage.put("doomed", 2);
        await Promise.resolve();
        return Promise.reject(new Error("rejected on purpose"));
      case "POST /transaction": {
        let caught = null;
        try {
          storage.transactionSync(() => {
            storage.sql.exec("CREATE TABLE IF NOT EXISTS t (v)");
            storage.sql.exec("INSERT INTO t VALUES (1)");
            throw new Error("undo");
          });
        } catch (error) {
          caught = error.message;
        }
        const kept = storage.transactionSync(() => {
          storage.sql.exec("CREATE TABLE IF NOT EXISTS t (v)");
          storage.sql.exec("INSERT INTO t VALUES (2)");
          return "returned";
        });
        await storage.transaction(async (txn) => {
          await txn.put("rolled-back", true);
          txn.rollback();
        });
        const rejected = await failure(
          storage.transaction(async (txn) => {
            await txn.put("rejected", true);
            throw new Error("async undo");
          }),
        );
        await storage.transaction(async (txn) => txn.put("committed", true));
        return Response.json({
          caught,
          kept,
          rejected,
          rows: storage.sql.exec("SELECT v FROM t").toArray(),
          keys: keys(await storage.list()),
        });
      }
      case "POST /sql": {
        const sql = storage.sql;
        sql.exec("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB)");
        const insert = sql.exec("INSERT INTO items (name, price, data) VALUES (?, ?, ?), (?, ?, ?)", "pen", 1.5, new Uint8Array([1, 2]), "ink", 3, null);
        const cursor = sql.exec("SELECT id, name, price FROM items ORDER BY id");
        const first = cursor.next().value;
        const rest = cursor.toArray();
        const raw = Array.from(sql.exec("SELECT name FROM items ORDER BY id").raw());
        let iterated = [];
        for (const row of sql.exec("SELECT name FROM items ORDER BY id")) iterated.push(row.name);
        const blob = sql.exec("SELECT data FROM items WHERE name = 'pen'").one().data;
        const statement = sql.prepare("SELECT name FROM items WHERE price > ?").bind(2);
        return Response.json({
          written: insert.rowsWritten,
          columns: cursor.columnNames,
          read: cursor.rowsRead,
          first,
          rest,
          raw,
          iterated,
          blob: blob instanceof ArrayBuffer ? Array.from(new Uint8Array(blob)) : Object.prototype.toString.call(blob),
          oneOfTwo: await failure(Promise.resolve().then(() => sql.exec("SELECT * FROM items").one())),
          all: statement.all().results,
          first2: statement.first("name"),
          error: await failure(Promise.resolve().then(() => sql.exec("SELECT nope FROM items"))),
          sandbox: await failure(Promise.resolve().then(() => sql.exec("ATTACH 'x' AS y"))),
          size: sql.databaseSize > 0,
        });
      }
      case "POST /alarm":
        await storage.setAlarm(Date.now() + Number(url.searchParams.get("in") ?? 50));
        return new Response("set");
      case "GET /whoami":
        return Response.json({ id: this.ctx.id.toString(), name: this.ctx.id.name ?? null });
      case "POST /fetch": {
        // Outbound HTTP: `fetch()` of componentize-js, through the host's `wasi:http`.
        try {
          const answer = await fetch(await request.text());
          return new Response(`${answer.status} ${await answer.text()}`);
        } catch (error) {
          return new Response(`refused: ${error}`, { status: 502 });
        }
      }
      case "GET /env": {
        const name = url.searchParams.get("name");
        const value = this.env[name];
        return Response.json({ type: typeof value, value: typeof value === "string" ? value : null, has: name in this.env });
      }
      case "POST /rpc": {
        const stub = this.env.PROBE.getByName(url.searchParams.get("name"));
        const settled = (promise) =>
          promise.then(
            (value) => ({ value }),
            (error) => ({ name: error.name, message: error.message, remote: error.remote ?? false }),
          );
        const greeting = await stub.greet("ann", ["x", "y"]);
        return Response.json({
          greeting: { hello: greeting.hello, at: greeting.at instanceof Date ? greeting.at.getTime() : null, tags: [...greeting.tags] },
          counted: [await stub.count(), await stub.count()],
          failed: await settled(stub.writeThenFail("rpc-doomed")),
          missing: await settled(stub.nope()),
          handler: await settled(stub.alarm()),
          inherited: await settled(stub.ctx()),
        });
      }
      case "POST /call": {
        const stub = this.env.PROBE.getByName(url.searchParams.get("name"));
        const answer = await stub.fetch("/whoami");
        return new Response(await answer.text(), { status: answer.status });
      }
      case "GET /body": {
        // Each way a response's body can be given (the SDK answers some without reading the body back).
        const init = { status: 201 };
        const word = (text) => new TextEncoder().encode(text);
        switch (url.searchParams.get("kind")) {
          case "text":
            return new Response("text h\u00e9llo", init);
          case "bytes":
            return new Response(word("bytes"), init);
          case "buffer":
            return new Response(word("buffer").buffer, init);
          case "view":
            return new Response(new DataView(word("[in a view]").buffer, 1, 9), init);
          case "stream": {
            const stream = new ReadableStream({
              start(controller) {
                controller.enqueue(word("str"));
                controller.enqueue(word("eam"));
                controller.close();
              },
            });
            return new Response(stream, init);
          }
          case "json":
            return Response.json({ json: true }, init);
          case "json-type": {
            const plain = Response.json({}).headers.get("content-type");
            const own = Response.json({}, { headers: { "content-type": "application/x+json" } }).headers.get("content-type");
            return new Response(`${plain} ${own}`, init);
          }
          case "json-undefined":
            try {
              return Response.json(undefined, init);
            } catch (error) {
              return new Response(String(error), init);
            }
          case "mutated": {
            // As on the Web, the response has its own copy of the bytes it was given.
            const bytes = word("kept");
            const response = new Response(bytes, init);
            bytes.fill(0x78);
            return response;
          }
          case "used": {
            const response = new Response("read already", init);
            await response.text();
            return response;
          }
          case "clone":
            return new Response("cloned", init).clone();
          case "clone-keeps": {
            const copy = new Response("copied", { status: 202, headers: { "x-a": "1" } }).clone();
            return new Response(`${copy.status} ${copy.headers.get("x-a")} ${await copy.text()}`, init);
          }
          case "clone-stream":
            try {
              return new Response(new ReadableStream(), init).clone();
            } catch (error) {
              return new Response(String(error), init);
            }
          case "engine":
            return new NativeResponse("made by the engine", init);
          case "clone-engine":
            try {
              return new NativeResponse("x").clone();
            } catch (error) {
              return new Response(String(error), init);
            }
          case "none":
            return new Response(null, init);
        }
        return new Response("unknown kind", { status: 400 });
      }
      default:
        return new Response("no such route", { status: 404 });
    }
  }

  // Methods other objects call on a stub (RPC).
  greet(name, tags) {
    return { hello: name, at: new Date(0), tags: new Set(tags) };
  }

  async count() {
    const count = ((await this.ctx.storage.get("rpc-count")) ?? 0) + 1;
    await this.ctx.storage.put("rpc-count", count);
    return count;
  }

  async writeThenFail(key) {
    await this.ctx.storage.put(key, true);
    throw new RangeError(`failed after writing ${key}`);
  }

  async alarm(info) {
    const runs = ((await this.ctx.storage.get("alarm-runs")) ?? 0) + 1;
    await this.ctx.storage.put("alarm-runs", runs);
    await this.ctx.storage.put("alarm-info", info);
  }
}
