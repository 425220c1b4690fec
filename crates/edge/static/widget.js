"use strict";
// The page is opened with the tenant's widget key in the URL fragment (#key=wk_...), or with a
// token (#token=...); browsers never send the fragment to a server.
const key = new URLSearchParams(location.hash.slice(1)).get("key");
const renew = key ? () => visitorToken(key) : null;
let conversation = sessionStorage.getItem("conversation");
const list = document.getElementById("messages");
let sb;
(renew ? renew() : Promise.resolve(tokenFromPage())).then(start, (e) => {
  document.getElementById("status").textContent = e.message;
});

function start(token) {
sb = new Switchboard(token, {
  renew,
  status: (s) => (document.getElementById("status").textContent = s),
  frame: (f) => {
    if (f.type === "welcome" && !conversation) sb.send({ type: "open", ref: "open" });
    if (f.type === "ack" && f.ref === "open") {
      conversation = f.conversation_id;
      sessionStorage.setItem("conversation", conversation);
      sb.subscribe(conversation, 0);
    }
    if (f.type === "welcome" && conversation && !sb.last.has(conversation)) sb.subscribe(conversation, 0);
    if (f.type === "event" && f.kind === "message_posted") {
      line(list, f.data.body ?? "(erased)", f.actor.kind === "customer" ? "me" : "");
    }
    if (f.type === "event" && f.kind === "agent_assigned") line(list, "An agent joined.", "info");
    if (f.type === "queue") {
      document.getElementById("queue").textContent = f.position
        ? "You are number " + f.position + " in the queue" + (f.estimated_wait_s ? ", about " + Math.ceil(f.estimated_wait_s / 60) + " min." : ".")
        : "";
    }
    if (f.type === "typing" && f.role !== "customer") document.getElementById("typing").textContent = f.active ? "Agent is typing…" : "";
    if (f.type === "error") line(list, "⚠ " + f.message, "info");
  },
});
}
const text = document.getElementById("text");
text.addEventListener("input", () => conversation && sb.send({ type: "typing", conversation_id: conversation, active: true }));
document.getElementById("form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (conversation && text.value.trim()) sb.say(conversation, text.value);
  text.value = "";
});
