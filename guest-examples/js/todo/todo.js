// A todo list per object, kept in SQL (the same contract as the Rust todo example):
// `POST /todos` with the title as body (201 and the new todo, 400 if the title is empty),
// `GET /todos`, `PATCH /todos/{id}` (toggles done), `DELETE /todos/{id}` (204); 404 otherwise.
import { DurableObject } from "cloudflare:workers";

// Schema migrations, in order; `schema_version` in KV counts how many have run.
const MIGRATIONS = [
  `CREATE TABLE todos (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     title TEXT NOT NULL,
     done INTEGER NOT NULL DEFAULT 0
   )`,
];

const todo = (row) => ({ id: row.id, title: row.title, done: row.done !== 0 });
const notFound = (what = "not found") => new Response(what, { status: 404 });

export class TodoList extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(() => this.migrate());
  }

  async migrate() {
    const version = (await this.storage.get("schema_version")) ?? 0;
    if (version < MIGRATIONS.length) {
      this.storage.transactionSync(() => {
        for (const migration of MIGRATIONS.slice(version)) this.storage.sql.exec(migration);
        this.storage.put("schema_version", MIGRATIONS.length);
      });
    }
  }

  async fetch(request) {
    const { pathname } = new URL(request.url);
    const sql = this.storage.sql;
    if (pathname === "/todos") {
      if (request.method === "GET") {
        return Response.json(sql.exec("SELECT id, title, done FROM todos ORDER BY id").toArray().map(todo));
      }
      if (request.method === "POST") {
        const title = await request.text();
        if (title.trim() === "") return new Response("the title (the request body) must be non-empty text", { status: 400 });
        const row = sql.exec("INSERT INTO todos (title) VALUES (?) RETURNING id, title, done", title).one();
        return Response.json(todo(row), { status: 201 });
      }
    }
    const match = /^\/todos\/(\d+)$/.exec(pathname);
    if (match === null) return notFound();
    const id = Number(match[1]);
    if (request.method === "PATCH") {
      sql.exec("UPDATE todos SET done = 1 - done WHERE id = ?", id);
      const [row] = sql.exec("SELECT id, title, done FROM todos WHERE id = ?", id).toArray();
      return row === undefined ? notFound("no such todo") : Response.json(todo(row));
    }
    if (request.method === "DELETE") {
      const deleted = sql.exec("DELETE FROM todos WHERE id = ?", id);
      return deleted.rowsWritten === 0 ? notFound("no such todo") : new Response(null, { status: 204 });
    }
    return new Response("method not allowed", { status: 405 });
  }
}
