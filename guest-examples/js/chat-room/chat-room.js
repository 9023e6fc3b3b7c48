// A chat room per object over hibernatable WebSockets (the same contract as the Rust chat-room
// example, whose page it serves):
// - `GET /`: the page; `GET /ws?name=NAME` (an upgrade, NAME 1 to 32 characters) joins: the
//   newcomer gets the last 100 messages, oldest first, then everyone gets `{"joined": NAME}`.
// - Each text message (at most 2,000 characters) is kept and broadcast as `{"from", "text"}`;
//   a leaving client is announced as `{"left": NAME}`; `ping` is answered `pong` by the runtime.
// - `GET /members`: the names connected now.
// Names live in the sockets' attachments and messages in SQL, so the room can hibernate.
import { DurableObject } from "cloudflare:workers";
import PAGE from "../../chat-room/src/page.html";

const HISTORY = 100;
const MAX_NAME_CHARS = 32;
const MAX_TEXT_CHARS = 2000;
const MEMBER = "member";

export class ChatRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.storage.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      sender TEXT NOT NULL,
      text TEXT NOT NULL
    )`);
  }

  async fetch(request) {
    const url = new URL(request.url);
    if (request.method !== "GET") return new Response("not found", { status: 404 });
    switch (url.pathname) {
      case "/":
        return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
      case "/ws":
        return this.join(request, url);
      case "/members":
        return Response.json(this.ctx.getWebSockets(MEMBER).map((ws) => ws.deserializeAttachment()).filter((name) => name !== null));
      default:
        return new Response("not found", { status: 404 });
    }
  }

  join(request, url) {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("GET /ws is a WebSocket endpoint: connect with a WebSocket client", { status: 426 });
    }
    const name = (url.searchParams.get("name") ?? "").trim();
    const chars = [...name].length;
    if (chars === 0 || chars > MAX_NAME_CHARS || /[\u0000-\u001f\u007f-\u009f]/.test(name)) {
      return new Response(`?name= must be 1 to ${MAX_NAME_CHARS} printable characters`, { status: 400 });
    }
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, [MEMBER]);
    server.serializeAttachment(name);
    this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    const history = this.storage.sql.exec('SELECT sender AS "from", text FROM messages ORDER BY id DESC LIMIT ?', HISTORY).toArray();
    for (const chat of history.reverse()) server.send(JSON.stringify(chat));
    this.broadcast({ joined: name });
    return new Response(null, { status: 101, webSocket: client });
  }

  // A member that cannot take a message (leaving, or not reading) misses it; the others get it.
  broadcast(value) {
    const text = JSON.stringify(value);
    for (const ws of this.ctx.getWebSockets(MEMBER)) {
      try {
        ws.send(text);
      } catch {}
    }
  }

  async webSocketMessage(ws, message) {
    if (typeof message !== "string") return ws.send(JSON.stringify({ error: "only text messages are understood" }));
    if ([...message].length > MAX_TEXT_CHARS) return ws.send(JSON.stringify({ error: "message too long (2,000 characters at most)" }));
    const from = ws.deserializeAttachment();
    if (from === null) return;
    this.storage.sql.exec("INSERT INTO messages (sender, text) VALUES (?, ?)", from, message);
    this.storage.sql.exec("DELETE FROM messages WHERE id <= (SELECT max(id) FROM messages) - ?", HISTORY);
    this.broadcast({ from, text: message });
  }

  async webSocketClose(ws) {
    const name = ws.deserializeAttachment();
    if (name !== null) this.broadcast({ left: name });
  }

  async webSocketError(ws) {
    await this.webSocketClose(ws);
  }
}
