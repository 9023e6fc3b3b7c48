// Cloudflare's base class of a Worker's entry point, for objects and fronts alike: a front may be
// `export default class extends WorkerEntrypoint { fetch(request) { ... } }`.
export class WorkerEntrypoint {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}
