// A TypeScript object: `POST /` with a text adds a note, `GET /` lists them (newest first).
import { DurableObject } from "cloudflare:workers";

interface Note {
  text: string;
  at: number;
}

export class Notes extends DurableObject {
  async fetch(request: Request): Promise<Response> {
    const storage = this.ctx.storage;
    if (request.method === "POST") {
      const count: number = (await storage.get<number>("count")) ?? 0;
      const note: Note = { text: await request.text(), at: count };
      await storage.put({ count: count + 1, [`note:${String(count).padStart(6, "0")}`]: note });
      return new Response(null, { status: 204 });
    }
    const notes = await storage.list<Note>({ prefix: "note:", reverse: true });
    return Response.json([...notes.values()].map((note: Note) => note.text));
  }
}
