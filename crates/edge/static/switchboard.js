// A protocol v1 client (docs/protocol.md) for the widget and the console. No build step.
"use strict";

class Switchboard {
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.last = new Map(); // conversation -> last seq seen, for resume
    this.pending = [];
    this.connect();
  }

  connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
    this.ws = new WebSocket(url, ["switchboard.v1", "bearer." + this.token]);
    this.ws.onmessage = (m) => this.receive(JSON.parse(m.data));
    this.ws.onclose = (e) => {
      this.handlers.status?.("disconnected (" + e.code + ")");
      if (e.code === 4001 || e.code === 4003) return; // a new token is needed
      setTimeout(() => this.connect(), e.code === 1001 ? 100 : 1000 + Math.random() * 2000);
    };
  }

  receive(frame) {
    switch (frame.type) {
      case "welcome":
        this.handlers.status?.("connected as " + frame.role + " " + frame.subject);
        for (const [conversation, seq] of this.last) this.subscribe(conversation, seq);
        for (const f of this.pending.splice(0)) this.send(f);
        break;
      case "event": {
        const seen = this.last.get(frame.conversation_id) ?? 0;
        if (frame.seq <= seen) return; // never shown twice
        this.last.set(frame.conversation_id, frame.seq);
        break;
      }
      case "reauth_required":
        this.handlers.renew?.()?.then((token) => {
          this.token = token;
          this.send({ type: "auth", token });
        });
        break;
      case "reload":
        this.last.set(frame.conversation_id, frame.latest_seq);
        this.subscribe(frame.conversation_id, frame.latest_seq);
        break;
    }
    this.handlers.frame?.(frame);
  }

  send(frame) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
    else this.pending.push(frame);
  }

  subscribe(conversation, since) {
    if (!this.last.has(conversation)) this.last.set(conversation, since ?? 0);
    this.send({ type: "subscribe", conversation_id: conversation, since_seq: this.last.get(conversation) });
  }

  say(conversation, body, privateNote) {
    const id = (crypto.randomUUID?.() ?? String(Date.now()) + Math.random()).slice(0, 64);
    this.send({ type: "send", ref: id, conversation_id: conversation, client_msg_id: id, body, private_note: !!privateNote });
  }
}

// A visitor session from the tenant's widget key (POST /v1/sessions): the visitor is kept in
// localStorage, so a reload, a renewal or a later visit is the same visitor with the same
// conversations.
async function visitorToken(key) {
  const slot = "switchboard.visitor." + key;
  const kept = JSON.parse(localStorage.getItem(slot) || "null");
  const body = { widget_key: key };
  if (kept) body.refresh = { visitor_id: kept.visitor_id, secret: kept.refresh_secret };
  let answer = await fetch("/v1/sessions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (answer.status === 401 && kept) {
    localStorage.removeItem(slot);
    return visitorToken(key);
  }
  if (!answer.ok) throw new Error("the chat is not available (" + answer.status + ")");
  const session = await answer.json();
  localStorage.setItem(slot, JSON.stringify({ visitor_id: session.visitor_id, refresh_secret: session.refresh_secret }));
  return session.token;
}

function tokenFromPage() {
  const params = new URLSearchParams(location.hash.slice(1));
  return params.get("token") || prompt("JWT for this session");
}

function line(list, text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  list.appendChild(li);
  li.scrollIntoView();
}
