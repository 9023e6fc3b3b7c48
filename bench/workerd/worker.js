// The benchmark object on workerd: the same routes as bench/object (open-do).
// The front worker maps /bench/{name}/{op} to the Durable Object called {name}, like open-do's
// /{namespace}/{object-name}/{rest} addressing, so both servers get identical URLs.
import { DurableObject } from "cloudflare:workers";

export class Bench extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.schemaReady = false;
  }

  async fetch(request) {
    const op = new URL(request.url).pathname;
    const storage = this.ctx.storage;
    if (op === "/hello") {
      return new Response("hello");
    }
    if (op === "/incr") {
      const n = ((await storage.get("n")) ?? 0) + 1;
      await storage.put("n", n);
      return new Response(String(n));
    }
    if (op === "/sql") {
      if (!this.schemaReady) {
        storage.sql.exec("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
        this.schemaReady = true;
      }
      storage.sql.exec("INSERT INTO rows (v) VALUES ('x')");
      const count = storage.sql.exec("SELECT count(*) AS c FROM rows").one().c;
      return new Response(String(count));
    }
    return new Response("not found", { status: 404 });
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/ready") {
      return new Response("ready");
    }
    const [, namespace, name, ...rest] = url.pathname.split("/");
    if (namespace !== "bench" || !name) {
      return new Response("not found", { status: 404 });
    }
    const stub = env.BENCH.get(env.BENCH.idFromName(decodeURIComponent(name)));
    return stub.fetch(new Request(`http://object/${rest.join("/")}`, request));
  },
};
