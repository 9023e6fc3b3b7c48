// The front's `front-handler` export: the module's Worker, `export default { fetch(request, env,
// ctx) }` or a class extending WorkerEntrypoint, answers every request of the server.
import { fromResponse, toRequest } from "./http.js";
import { makeEnv } from "./namespaces.js";

export function frontHandlerFor(module) {
  const worker = module.default;
  const isClass = typeof worker === "function" && typeof worker.prototype?.fetch === "function";
  if (!isClass && typeof worker?.fetch !== "function") {
    throw new Error(
      "a JavaScript front needs a Worker: `export default { async fetch(request, env, ctx) { ... } }` (or a class extending WorkerEntrypoint)",
    );
  }
  let env;
  return {
    async fetch(request) {
      env ??= makeEnv();
      const pending = [];
      const ctx = {
        waitUntil(promise) {
          pending.push(Promise.resolve(promise));
        },
        // Errors are answered 500 by the server; there is no origin to fall back to.
        passThroughOnException() {},
      };
      const web = toRequest(request);
      const response = isClass ? await new worker(ctx, env).fetch(web) : await worker.fetch(web, env, ctx);
      const answer = await fromResponse(response);
      // As at Cloudflare, the request's work ends only when what it handed to waitUntil settles.
      await Promise.all(pending);
      return answer;
    },
  };
}
