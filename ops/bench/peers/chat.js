// The chat both peer servers run: conversations in memory, the same small protocol as the
// load generator speaks to switchboard (see ../README.md), without auth and without
// durability. Each server only differs in its transport.
'use strict';

const HISTORY = 1000; // events kept per conversation, as switchboard's largest resume gap

class Chat {
  constructor() {
    this.conversations = new Map(); // id -> { seq, events: [], subscribers: Set<conn> }
    this.next = 0;
  }

  // A connection is an object with send(frame) and a `subs` set the chat fills.
  handle(conn, frame) {
    switch (frame.type) {
      case 'hello':
        conn.subject = frame.subject;
        return conn.send({ type: 'welcome', subject: frame.subject });
      case 'open': {
        const id = `c-${++this.next}`;
        this.conversations.set(id, { seq: 0, events: [], subscribers: new Set() });
        return conn.send({ type: 'ack', ref: frame.ref, conversation_id: id, seq: 0 });
      }
      case 'subscribe': {
        const c = this.conversations.get(frame.conversation_id);
        if (!c) return this.refuse(conn, frame, 'not_found');
        for (const e of c.events) if (e.seq > (frame.since_seq || 0)) conn.send(e);
        c.subscribers.add(conn);
        conn.subs.add(c);
        return conn.send({ type: 'subscribed', ref: frame.ref, conversation_id: frame.conversation_id, seq: c.seq });
      }
      case 'send': {
        const c = this.conversations.get(frame.conversation_id);
        if (!c) return this.refuse(conn, frame, 'not_found');
        const event = {
          type: 'event',
          conversation_id: frame.conversation_id,
          seq: ++c.seq,
          kind: 'message_posted',
          occurred_at_us: Date.now() * 1000,
          actor: { kind: 'customer', id: conn.subject },
          data: { client_msg_id: frame.client_msg_id, body: frame.body },
        };
        c.events.push(event);
        if (c.events.length > HISTORY) c.events.shift();
        for (const s of c.subscribers) s.send(event);
        return conn.send({ type: 'ack', ref: frame.ref, conversation_id: frame.conversation_id, seq: c.seq, duplicate: false });
      }
      case 'ping':
        return conn.send({ type: 'pong', ref: frame.ref });
      default:
        return this.refuse(conn, frame, 'bad_frame');
    }
  }

  refuse(conn, frame, code) {
    conn.send({ type: 'error', ref: frame.ref, code, message: code });
  }

  closed(conn) {
    for (const c of conn.subs) c.subscribers.delete(conn);
    conn.subs.clear();
  }

  // GET /v1/conversations/{id}/history?limit=N: the newest N events, oldest first.
  history(req, res) {
    const url = new URL(req.url, 'http://localhost');
    const m = url.pathname.match(/^\/v1\/conversations\/([^/]+)\/history$/);
    const c = m && this.conversations.get(decodeURIComponent(m[1]));
    const body = c
      ? JSON.stringify({ events: c.events.slice(-Number(url.searchParams.get('limit') || 50)) })
      : '{"code":"not_found"}';
    res.writeHead(c ? 200 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

// Listens on 127.0.0.1:<port> (0: any free port) and announces the address on stderr, which
// the load generator reads.
function listen(server, port) {
  server.listen(port || 0, '127.0.0.1', () => {
    const { port: bound } = server.address();
    process.stderr.write(`listening http://127.0.0.1:${bound}\n`);
  });
}

module.exports = { Chat, listen };
