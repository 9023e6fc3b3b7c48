// A front that hands work to `ctx.waitUntil`, and the object that work reaches: the request's
// event must last until that work is done.
import { DurableObject } from "cloudflare:workers";

export class Tally extends DurableObject {
  async fetch(request) {
    const add = new URL(request.url).pathname === "/add" ? 1 : 0;
    const n = ((await this.ctx.storage.get("n")) ?? 0) + add;
    await this.ctx.storage.put("n", n);
    return new Response(String(n));
  }
}

const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export default {
  async fetch(request, env, ctx) {
    const tally = env.TALLY.getByName("t");
    if (new URL(request.url).pathname === "/later") {
      ctx.waitUntil(later(100).then(() => tally.fetch("http://tally/add")));
      return new Response("handed over");
    }
    return tally.fetch("http://tally/count");
  },
};
