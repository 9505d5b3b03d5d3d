// The simulated phones: pick or add a contact, chat as them, watch the business's messages go
// ✔ sent → ✔✔ delivered → blue ✔✔ read. Plain JS, no build step; state comes by long polling api/state.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { version: 0, business: "", contact: "", data: null };
let poller = null;

function ticks(m) {
  const span = document.createElement("span");
  span.className = "ticks";
  if (m.status === "failed") {
    span.textContent = "⚠";
    span.classList.add("failed");
    span.title = m.error ? `${m.error.code} ${m.error.title}` : "failed";
  } else {
    span.textContent = m.status === "sent" ? "✔" : "✔✔";
    if (m.status === "read") span.classList.add("read");
    span.title = m.status;
  }
  return span;
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  refresh();
  return data;
}

function say(error) { $("error").textContent = error ? String(error.message || error) : ""; }

function send(body) {
  return post("api/send", { business: state.business, contact: state.contact, ...body }).then(
    () => say(""), say);
}

function renderMessage(m) {
  const li = document.createElement("li");
  li.className = `msg ${m.direction}`;
  li.dataset.id = m.id;
  li.dataset.status = m.status;
  if (m.template) {
    const kind = document.createElement("div");
    kind.className = "kind";
    kind.textContent = `template ${m.template}`;
    li.append(kind);
  }
  if (m.media_id) {
    const img = document.createElement("img");
    img.src = `api/media/${encodeURIComponent(m.media_id)}`;
    img.alt = m.text || "image";
    li.append(img);
  } else if (m.link) {
    const a = document.createElement("a");
    a.href = m.link; a.textContent = m.link; a.rel = "noreferrer"; a.target = "_blank";
    li.append(a);
  }
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = m.text || (m.type !== "text" ? `[${m.type}]` : "");
  li.append(text);
  const buttons = (m.buttons || []).map((b) => ({ ...b, kind: "button_reply" }))
    .concat((m.template_buttons || []).map((t) => ({ id: t, title: t, kind: "button" })));
  if (m.direction === "out" && buttons.length) {
    const box = document.createElement("div");
    box.className = "buttons";
    for (const b of buttons) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = b.title;
      btn.addEventListener("click", () => send(
        b.kind === "button_reply"
          ? { type: "button_reply", button_id: b.id, text: b.title, reply_to: m.id }
          : { type: "button", payload: b.id, text: b.title, reply_to: m.id }));
      box.append(btn);
    }
    li.append(box);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = new Date(m.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.append(ticks(m));
  li.append(meta);
  return li;
}

function render() {
  const d = state.data;
  if (!d) return;
  const select = $("business");
  const options = d.businesses.map((b) => `${b.phone_number_id}|${b.display_phone_number} ${b.name}`).join("\n");
  if (select.dataset.options !== options) {
    select.replaceChildren(...d.businesses.map((b) => new Option(`${b.name} ${b.display_phone_number}`, b.phone_number_id)));
    select.dataset.options = options;
  }
  select.value = state.business;
  $("contacts").replaceChildren(...d.contacts.map((c) => {
    const li = document.createElement("li");
    const btn = document.createElement("button");
    btn.type = "button";
    btn.dataset.waId = c.wa_id;
    btn.className = c.wa_id === state.contact ? "active" : "";
    btn.innerHTML = "<span></span><small></small>";
    btn.firstChild.textContent = c.name;
    btn.lastChild.textContent = `+${c.wa_id}`;
    btn.addEventListener("click", () => choose(c.wa_id));
    li.append(btn);
    return li;
  }));
  const contact = d.contacts.find((c) => c.wa_id === state.contact);
  $("chat").hidden = !contact;
  $("empty").hidden = !!contact;
  if (!contact) return;
  $("chat-name").textContent = contact.name;
  $("chat-number").textContent = `+${contact.wa_id}`;
  $("online").checked = contact.online;
  $("marketing-stopped").checked = contact.marketing_stopped;
  $("window").textContent = d.window_open ? "window open" : "window closed";
  $("window").className = d.window_open ? "open" : "closed";
  const list = $("messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.replaceChildren(...d.messages.map(renderMessage));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

async function load(since) {
  const q = new URLSearchParams({ business: state.business, contact: state.contact });
  if (since !== undefined) q.set("since", since);
  const ctrl = new AbortController();
  poller = ctrl;
  const resp = await fetch(`api/state?${q}`, { signal: ctrl.signal });
  const data = await resp.json();
  if (poller !== ctrl) return; // a newer request took over
  state.data = data;
  state.version = data.version;
  if (!state.business) state.business = data.business;
  render();
}

let immediate = true;

function refresh() {
  // Ask the poll loop for the current state now (a selection changed, or we just acted).
  immediate = true;
  if (poller) poller.abort();
}

async function loop() {
  for (;;) {
    const since = immediate ? undefined : state.version;
    immediate = false;
    try {
      await load(since);
    } catch (e) {
      if (e.name !== "AbortError") await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function choose(waId) {
  state.contact = waId;
  const url = new URL(location.href);
  url.hash = waId;
  history.replaceState(null, "", url);
  refresh();
}

$("business").addEventListener("change", (e) => { state.business = e.target.value; refresh(); });
$("new-contact").addEventListener("submit", (e) => {
  e.preventDefault();
  post("api/contacts", { number: $("new-number").value, name: $("new-name").value })
    .then((c) => { $("new-number").value = ""; $("new-name").value = ""; say(""); choose(c.wa_id); }, say);
});
$("compose").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  $("text").value = "";
  send({ type: "text", text });
});
$("image").addEventListener("change", () => {
  const file = $("image").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const data = String(reader.result).split(",", 2)[1];
    send({ type: "image", data, mime_type: file.type || "image/jpeg", text: $("text").value });
    $("text").value = "";
    $("image").value = "";
  };
  reader.readAsDataURL(file);
});
$("online").addEventListener("change", (e) => post("api/online", { contact: state.contact, online: e.target.checked }).catch(say));
$("marketing-stopped").addEventListener("change", (e) => post("api/marketing", { contact: state.contact, stopped: e.target.checked }).catch(say));
$("mark-read").addEventListener("click", () => post("api/read", { business: state.business, contact: state.contact }).catch(say));

state.contact = decodeURIComponent(location.hash.slice(1));
loop();
