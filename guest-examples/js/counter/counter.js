// A counter per object, written as for Cloudflare (the same contract as the Rust counter):
// `POST /increment` adds one and answers the new value, `GET /` answers it, `DELETE /` deletes
// everything the object stored.
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    const storage = this.ctx.storage;
    if (request.method === "POST" && pathname === "/increment") {
      const count = ((await storage.get("count")) ?? 0) + 1;
      await storage.put("count", count);
      return new Response(String(count));
    }
    if (request.method === "GET" && pathname === "/") {
      return new Response(String((await storage.get("count")) ?? 0));
    }
    if (request.method === "DELETE" && pathname === "/") {
      await storage.deleteAll();
      return new Response("0");
    }
    return new Response("not found", { status: 404 });
  }
}
