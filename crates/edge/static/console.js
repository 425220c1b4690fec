"use strict";
let current = null;
const list = document.getElementById("messages");
const online = new Set();
const sb = new Switchboard(tokenFromPage(), {
  status: (s) => (document.getElementById("status").textContent = s),
  frame: (f) => {
    if (f.type === "event" && f.conversation_id === current) {
      if (f.kind === "message_posted") line(list, f.actor.id + ": " + (f.data.body ?? "(erased)"), f.data.private_note ? "note" : "");
      else line(list, f.kind.replaceAll("_", " ") + " (#" + f.seq + ")", "info");
    }
    if (f.type === "typing" && f.conversation_id === current) document.getElementById("typing").textContent = f.active ? f.subject + " is typing…" : "";
    if (f.type === "presence") {
      f.online ? online.add(f.agent_id) : online.delete(f.agent_id);
      document.getElementById("presence").replaceChildren(...[...online].map((a) => Object.assign(document.createElement("li"), { textContent: a })));
    }
    if (f.type === "error") line(list, "⚠ " + f.code + ": " + f.message, "info");
  },
});
document.getElementById("join").addEventListener("submit", (e) => {
  e.preventDefault();
  current = document.getElementById("cid").value.trim();
  document.getElementById("title").textContent = current;
  list.replaceChildren();
  sb.last.delete(current);
  sb.subscribe(current, 0);
});
document.getElementById("availability").addEventListener("change", (e) => sb.send({ type: "status", status: e.target.value }));
document.getElementById("take").addEventListener("click", () => current && sb.send({ type: "take", conversation_id: current }));
document.getElementById("resolve").addEventListener("click", () => current && sb.send({ type: "resolve", conversation_id: current }));
const text = document.getElementById("text");
text.addEventListener("input", () => current && sb.send({ type: "typing", conversation_id: current, active: true }));
document.getElementById("form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (current && text.value.trim()) sb.say(current, text.value, document.getElementById("note").checked);
  text.value = "";
});
