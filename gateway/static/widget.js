/* Switchboard website chat widget. Plain JavaScript, no build step, no globals.
 *
 * <script src="https://HOST/widget.js" data-channel="TOKEN" async></script>
 * Optional signed identity: data-user-id="ID" data-user-hash="HMAC-SHA256(channel secret, ID) in hex".
 *
 * Everything renders inside a shadow root; untrusted text only ever goes through textContent and
 * createTextNode (links are built as elements, http/https only). Messages typed offline wait in
 * localStorage with their client id and are re-sent on reconnect; the server stores each id once.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector("script[data-channel][src*='widget.js']");
  if (!script || !script.getAttribute("data-channel")) return;
  var token = script.getAttribute("data-channel");
  var base = new URL(script.src, location.href).origin;
  var identifier = script.getAttribute("data-user-id") || "";
  var signature = script.getAttribute("data-user-hash") || "";
  var prefix = "sbchat:" + token + ":" + (identifier ? "u:" + identifier + ":" : "");
  var loadedAt = Date.now();

  // -- language ----------------------------------------------------------------------------------------
  // The "widget." texts of gateway/static/i18n/*.json, put on the next line by GET /widget.js.
  var CATALOGS = {};
  var language = pickLanguage([script.getAttribute("data-language")].concat(navigator.languages || [], [navigator.language]));
  var texts = CATALOGS[language] || {};
  var english = CATALOGS.en || {};

  function pickLanguage(tags) {
    // The site's data-language, else the browser's languages in order; exact tag, else the same primary
    // subtag (pt-PT -> pt-BR); English when none fits.
    var known = Object.keys(CATALOGS);
    for (var i = 0; i < tags.length; i++) {
      if (!tags[i]) continue;
      var wanted = String(tags[i]).replace("_", "-").toLowerCase();
      for (var j = 0; j < known.length; j++) if (known[j].toLowerCase() === wanted) return known[j];
      for (j = 0; j < known.length; j++) if (known[j].toLowerCase().split("-")[0] === wanted.split("-")[0]) return known[j];
    }
    return "en";
  }
  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(texts, key) ? texts[key] : english[key];
    if (text === undefined) return key;
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      if (!params || !Object.prototype.hasOwnProperty.call(params, name)) return whole;
      var value = params[name];
      return typeof value === "number" ? new Intl.NumberFormat(language).format(value) : String(value);
    });
  }
  function errorText(code, message) {
    // The server's refusals by code in the visitor's language; its own words for a code we do not know.
    var key = "widget.error." + code;
    return Object.prototype.hasOwnProperty.call(english, key) ? t(key) : message;
  }

  // -- storage ---------------------------------------------------------------------------------------
  var memory = {};
  function load(name, fallback) {
    try {
      var raw = localStorage.getItem(prefix + name);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return name in memory ? memory[name] : fallback;
    }
  }
  function save(name, value) {
    memory[name] = value;
    try { localStorage.setItem(prefix + name, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function randomId(bytes) {
    var a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    var s = "";
    for (var i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  var visitorKey = load("key", null);
  if (!visitorKey) { visitorKey = randomId(18); save("key", visitorKey); }
  var firstVisit = !load("visited", false);
  save("visited", true);
  var profile = load("profile", {});
  var outbox = load("outbox", []); // [{client_id, text, context}] not yet acknowledged

  // -- state -------------------------------------------------------------------------------------------
  var config = null;
  var flow = { action: "live" };
  var presence = "offline";
  var lastId = 0;
  var agentReadUpTo = 0;
  var byId = {};        // message id -> row element
  var byClient = {};    // client id -> row element (pending visitor messages)
  var unread = [];      // provider ids of agent replies not yet reported read
  var ws = null;
  var backoff = 500;
  var reconnectTimer = null;
  var heartbeat = null;
  var lastFrameAt = 0;
  var typingSentAt = 0;
  var typingStop = null;
  var agentTypingTimer = null;
  var isOpen = load("open", false);

  // -- DOM ---------------------------------------------------------------------------------------------
  var host = document.createElement("div");
  host.setAttribute("data-switchboard-chat", "");
  host.setAttribute("lang", language);
  var root = host.attachShadow({ mode: "open" });

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  var style = el("style");
  style.textContent = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif}",
    ".launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;",
    "background:var(--accent);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".launcher svg{width:28px;height:28px;fill:#fff;vertical-align:middle}",
    ".teaser{position:fixed;right:20px;bottom:88px;max-width:260px;background:#fff;color:#1d2430;border-radius:12px;",
    "padding:10px 12px;box-shadow:0 4px 18px rgba(0,0,0,.18);cursor:pointer;z-index:2147483000}",
    ".panel{position:fixed;right:20px;bottom:88px;width:370px;height:560px;max-height:calc(100vh - 108px);",
    "display:flex;flex-direction:column;background:#fff;color:#1d2430;border-radius:14px;overflow:hidden;",
    "box-shadow:0 8px 30px rgba(0,0,0,.25);z-index:2147483000}",
    ".panel[hidden],.teaser[hidden],[hidden]{display:none!important}",
    "header{background:var(--accent);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:10px}",
    "header h2{margin:0;font-size:16px;font-weight:600;flex:1}",
    ".presence{font-size:12px;opacity:.95;display:flex;align-items:center;gap:5px}",
    ".dot{width:9px;height:9px;border-radius:50%;background:#9aa3ae;display:inline-block}",
    ".dot.online{background:#3ddc84}.dot.away{background:#f5b700}",
    ".close{background:transparent;border:0;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:2px 6px}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}",
    ".row{display:flex;flex-direction:column;max-width:85%}",
    ".row.visitor{align-self:flex-end;align-items:flex-end}",
    ".row.agent,.row.bot,.row.system{align-self:flex-start}",
    ".who{display:flex;align-items:center;gap:6px;font-size:12px;color:#5b6472;margin-bottom:2px}",
    ".avatar{width:22px;height:22px;border-radius:50%;background:var(--accent);color:#fff;font-size:11px;",
    "display:inline-flex;align-items:center;justify-content:center;font-weight:600}",
    "img.avatar{object-fit:cover;background:#e3e6ea}",
    ".agent-card{display:flex;align-items:center;gap:10px;padding:8px 12px;background:#fff;border-bottom:1px solid #e3e6ea}",
    ".agent-card .avatar{width:36px;height:36px;font-size:15px;flex:none}",
    ".agent-card .who-text{flex:1;min-width:0;display:flex;flex-direction:column}",
    ".agent-card .card-name{font-weight:600}.agent-card .card-title{font-size:12px;color:#5b6472}",
    ".meet{text-decoration:none;font-size:13px;padding:7px 10px;white-space:nowrap}",
    ".bubble{padding:8px 11px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}",
    ".visitor .bubble{background:var(--accent);color:#fff;border-bottom-right-radius:4px}",
    ".agent .bubble,.bot .bubble,.system .bubble{background:#fff;border:1px solid #e3e6ea;border-bottom-left-radius:4px}",
    ".choices{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}",
    ".choice{font:inherit;padding:6px 12px;border-radius:16px;border:1px solid var(--accent);background:#fff;color:var(--accent);cursor:pointer;min-width:40px}",
    ".choice.picked{background:var(--accent);color:#fff}.choice:disabled{cursor:default;opacity:.75}.choice.picked:disabled{opacity:1}",
    ".visitor .bubble a{color:#fff}",
    ".bubble img{max-width:220px;max-height:220px;border-radius:8px;display:block;margin-top:4px}",
    ".meta{font-size:11px;color:#6b7480;margin-top:2px}",
    ".failed .meta{color:#b3261e}",
    ".typing{font-size:12px;color:#5b6472;padding:0 14px 6px;background:#f6f7f9;min-height:18px}",
    ".notice{padding:10px 12px;background:#fff8e1;border-top:1px solid #f1e2a8;font-size:13px}",
    ".notice form,.prechat{display:flex;gap:6px;flex-wrap:wrap;margin-top:6px}",
    ".prechat{padding:12px;background:#fff;border-top:1px solid #e3e6ea;flex-direction:column}",
    "input{flex:1;min-width:0;padding:7px 9px;border:1px solid #c9ced6;border-radius:8px}",
    ".composer{display:flex;gap:6px;padding:8px;border-top:1px solid #e3e6ea;background:#fff;align-items:flex-end}",
    "textarea{flex:1;resize:none;height:40px;max-height:120px;padding:9px 10px;border:1px solid #c9ced6;border-radius:10px}",
    ".btn{border:0;border-radius:10px;padding:9px 12px;background:var(--accent);color:#fff;cursor:pointer}",
    ".icon{background:#eef1f5;color:#1d2430;padding:9px 10px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    ".error{color:#b3261e;font-size:12px;padding:0 12px 6px;background:#fff}",
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100%;max-height:100%;border-radius:0}",
    ".launcher{right:14px;bottom:14px}.panel:not([hidden])~.launcher{display:none}}"
  ].join("\n");

  var launcher = el("button", { "class": "launcher", type: "button", "aria-label": t("widget.open"),
    "aria-expanded": "false", "aria-controls": "sb-panel" });
  launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  var teaser = el("div", { "class": "teaser", role: "button", tabindex: "0", hidden: "" });
  var title = el("h2", { id: "sb-title", text: t("widget.title") });
  var dot = el("span", { "class": "dot", "aria-hidden": "true" });
  var presenceText = el("span", { "class": "presence-text", text: t("widget.connecting") });
  var closeBtn = el("button", { "class": "close", type: "button", "aria-label": t("widget.close"), text: "×" });
  var agentCard = el("div", { "class": "agent-card", hidden: "" });
  var agentCardId = 0;   // the message whose author the card shows (the newest agent reply)
  var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-label": t("widget.messages"), tabindex: "0" });
  var typingLine = el("div", { "class": "typing", "aria-live": "polite" });
  var notice = el("div", { "class": "notice", hidden: "" });
  var noticeText = el("p", { style: "margin:0" });
  var emailInput = el("input", { type: "email", "aria-label": t("widget.your_email"), placeholder: t("widget.email_example"), autocomplete: "email" });
  var emailForm = el("form", null, [emailInput, el("button", { "class": "btn", type: "submit", text: t("widget.save") })]);
  notice.appendChild(noticeText);
  notice.appendChild(emailForm);
  var prechat = el("form", { "class": "prechat", hidden: "" });
  var errorLine = el("div", { "class": "error", role: "alert", hidden: "" });
  var input = el("textarea", { "aria-label": t("widget.message"), placeholder: t("widget.write"), rows: "1" });
  var fileInput = el("input", { type: "file", "class": "sr", tabindex: "-1", "aria-hidden": "true" });
  var attachBtn = el("button", { "class": "btn icon", type: "button", "aria-label": t("widget.attach") });
  attachBtn.innerHTML = '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path fill="currentColor" d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z"/></svg>';
  var sendBtn = el("button", { "class": "btn", type: "submit", text: t("widget.send") });
  var composer = el("form", { "class": "composer" }, [attachBtn, fileInput, input, sendBtn]);
  var panel = el("section", { "class": "panel", id: "sb-panel", role: "dialog", "aria-labelledby": "sb-title", hidden: "" }, [
    el("header", null, [title, el("span", { "class": "presence" }, [dot, presenceText]), closeBtn]),
    agentCard, log, typingLine, notice, prechat, errorLine, composer
  ]);
  root.appendChild(style);
  root.appendChild(teaser);
  root.appendChild(panel);
  root.appendChild(launcher);

  // -- rendering -----------------------------------------------------------------------------------------
  var URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

  function linkify(node, text) {
    // Text nodes and anchors only: nothing the visitor or an agent typed is ever parsed as HTML.
    var last = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text)) !== null) {
      if (m.index > last) node.appendChild(document.createTextNode(text.slice(last, m.index)));
      var href;
      try { href = new URL(m[0]); } catch (e) { href = null; }
      if (href && (href.protocol === "http:" || href.protocol === "https:")) {
        var a = el("a", { href: href.href, target: "_blank", rel: "noopener noreferrer nofollow" });
        a.textContent = m[0];
        node.appendChild(a);
      } else {
        node.appendChild(document.createTextNode(m[0]));
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
  }

  function initials(name) {
    return (name || "?").trim().charAt(0).toUpperCase() || "?";
  }

  function safeLink(url) {
    // An absolute http(s) link (a meeting page), or a path of ours (an avatar) made absolute.
    try {
      var u = new URL(url, base);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) { return null; }
  }

  function avatarFor(agent, name) {
    var src = agent && agent.avatar_url ? safeLink(agent.avatar_url) : null;
    if (src) return el("img", { "class": "avatar", src: src, alt: "", "aria-hidden": "true" });
    return el("span", { "class": "avatar", "aria-hidden": "true", text: initials(name) });
  }

  function showAgentCard(msg, name) {
    // The newest agent reply's author: who is helping, and a button to book a meeting with them.
    if (msg.id < agentCardId) return;
    agentCardId = msg.id;
    var agent = msg.agent || {};
    var text = el("div", { "class": "who-text" }, [
      el("span", { "class": "card-name", text: name }),
      agent.title ? el("span", { "class": "card-title", text: agent.title }) : null
    ]);
    var meeting = agent.meeting_url ? safeLink(agent.meeting_url) : null;
    var children = [avatarFor(agent, name), text];
    if (meeting) {
      children.push(el("a", { "class": "btn meet", href: meeting, target: "_blank", rel: "noopener noreferrer",
        text: t("widget.book_meeting"), "aria-label": t("widget.book_meeting_with", { name: name }) }));
    }
    agentCard.replaceChildren.apply(agentCard, children);
    agentCard.hidden = false;
  }

  function bubbleFor(msg) {
    var bubble = el("div", { "class": "bubble" });
    if (msg.text) linkify(bubble, msg.text);
    (msg.attachments || []).forEach(function (a) {
      if (!a.url) return;
      var url = new URL(a.url, base).href;
      if (/^image\//.test(a.content_type || "")) {
        bubble.appendChild(el("img", { src: url, alt: a.filename || t("widget.image"), loading: "lazy" }));
      } else {
        var link = el("a", { href: url, target: "_blank", rel: "noopener noreferrer", download: "" });
        link.textContent = t("widget.file", { name: a.filename || t("widget.file_unnamed") });
        bubble.appendChild(link);
      }
    });
    return bubble;
  }

  function metaText(row) {
    if (row.classList.contains("failed")) return row.getAttribute("data-error") || t("widget.not_sent");
    if (!row.hasAttribute("data-id")) return t("widget.sending");
    return Number(row.getAttribute("data-id")) <= agentReadUpTo ? t("widget.seen") : t("widget.sent");
  }

  function refreshVisitorMeta() {
    var rows = log.querySelectorAll(".row.visitor");
    for (var i = 0; i < rows.length; i++) {
      var meta = rows[i].querySelector(".meta");
      if (meta) meta.textContent = metaText(rows[i]);
    }
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function insertRow(row, id) {
    // Stored messages in id order, messages still sending after them, even when a resume, a live
    // push and a re-send interleave.
    var rows = log.querySelectorAll(".row[data-id]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i] !== row && Number(rows[i].getAttribute("data-id")) > id) { log.insertBefore(row, rows[i]); return; }
    }
    var pending = log.querySelector(".row[data-client-id]:not([data-id])");
    if (pending && pending !== row) log.insertBefore(row, pending); else log.appendChild(row);
  }

  function renderMessage(msg) {
    if (byId[msg.id]) {
      // Already shown: a resume overlapping a live push, or the ack of a re-send, doubles nothing.
      var stale = msg.client_id ? byClient[msg.client_id] : null;
      if (stale && stale !== byId[msg.id]) { stale.remove(); delete byClient[msg.client_id]; }
      return;
    }
    lastId = Math.max(lastId, msg.id);
    var row = msg.client_id ? byClient[msg.client_id] : null;
    if (row) {
      row.setAttribute("data-id", String(msg.id));
      delete byClient[msg.client_id];
      byId[msg.id] = row;
      insertRow(row, msg.id);
      refreshVisitorMeta();
      return;
    }
    var from = msg.from === "visitor" ? "visitor" : (msg.from === "bot" ? "bot" : "agent");
    row = el("div", { "class": "row " + from, "data-id": String(msg.id), "data-from": from });
    if (from !== "visitor") {
      var name = (msg.agent && msg.agent.name) || t("widget.support");
      row.appendChild(el("div", { "class": "who" }, [
        avatarFor(msg.agent, name),
        el("span", { "class": "agent-name", text: name })
      ]));
      if (from === "agent") showAgentCard(msg, name);
    }
    row.appendChild(bubbleFor(msg));
    if (from !== "visitor" && msg.buttons && msg.buttons.length) row.appendChild(choicesFor(msg.buttons));
    if (from === "visitor") row.appendChild(el("div", { "class": "meta" }));
    byId[msg.id] = row;
    insertRow(row, msg.id);
    if (from === "visitor") refreshVisitorMeta();
    if (from !== "visitor" && msg.provider_id) {
      if (msg.status !== "delivered" && msg.status !== "read") send({ type: "delivered", ids: [msg.provider_id] });
      if (msg.status !== "read") unread.push(msg.provider_id);
      setAgentTyping(false);
    }
    scrollDown();
    reportRead();
  }

  // Quick replies (a bot's choices, the rating card of a satisfaction survey): a tap sends the label.
  function choicesFor(labels) {
    var box = el("div", { "class": "choices", role: "group", "aria-label": t("widget.choices") });
    labels.forEach(function (label) {
      var b = el("button", { type: "button", "class": "choice", text: label });
      b.addEventListener("click", function () {
        Array.prototype.forEach.call(box.querySelectorAll("button"), function (x) { x.disabled = true; });
        b.classList.add("picked");
        submitText(label);
      });
      box.appendChild(b);
    });
    return box;
  }

  function renderPending(item) {
    var row = el("div", { "class": "row visitor", "data-client-id": item.client_id, "data-from": "visitor" });
    row.appendChild(bubbleFor({ text: item.text }));
    row.appendChild(el("div", { "class": "meta", text: t("widget.sending") }));
    byClient[item.client_id] = row;
    log.appendChild(row);
    scrollDown();
  }

  function renderSystem(text) {
    var row = el("div", { "class": "row system", "data-from": "system" });
    row.appendChild(bubbleFor({ text: text }));
    log.insertBefore(row, log.firstChild);
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }

  function setPresence(p) {
    presence = p;
    dot.className = "dot " + p;
    presenceText.textContent = t(p === "online" ? "widget.online" : (p === "away" ? "widget.away" : "widget.offline"));
    var needEmail = p !== "online";
    notice.hidden = !needEmail;
    if (needEmail && config) {
      noticeText.textContent = config.offline_message || t("widget.offline_message");
      emailForm.hidden = !!profile.email;
      if (profile.email) noticeText.textContent += " " + t("widget.reply_to", { email: profile.email });
    }
  }

  function setAgentTyping(on, name) {
    clearTimeout(agentTypingTimer);
    typingLine.textContent = on ? t("widget.typing", { name: name || t("widget.support") }) : "";
    if (on) agentTypingTimer = setTimeout(function () { setAgentTyping(false); }, 8000);
  }

  // -- the socket ----------------------------------------------------------------------------------------
  function send(frame) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function context() {
    return {
      page_url: location.href, referrer: document.referrer, language: navigator.language,
      user_agent: navigator.userAgent, time_on_page: Math.round((Date.now() - loadedAt) / 1000),
      flow: flow.action, bot: flow.bot || undefined
    };
  }

  function flushOutbox() {
    outbox.forEach(function (item) {
      send({ type: "message", client_id: item.client_id, text: item.text, context: item.context, profile: profile });
    });
  }

  function connect() {
    clearTimeout(reconnectTimer);
    var q = "key=" + encodeURIComponent(visitorKey) + "&after=" + lastId;
    if (identifier) q += "&identifier=" + encodeURIComponent(identifier) + "&signature=" + encodeURIComponent(signature);
    var socket = new WebSocket(base.replace(/^http/, "ws") + "/webchat/" + encodeURIComponent(token) + "/ws?" + q);
    ws = socket;
    socket.onmessage = function (ev) {
      lastFrameAt = Date.now();
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      onFrame(f);
    };
    socket.onclose = function () {
      if (ws !== socket) return;
      ws = null;
      clearInterval(heartbeat);
      presenceText.textContent = t("widget.reconnecting");
      // Back-off with jitter: 0.5 s doubling to 30 s, so a restarted server is not stormed.
      reconnectTimer = setTimeout(connect, backoff / 2 + Math.random() * backoff / 2);
      backoff = Math.min(backoff * 2, 30000);
    };
    socket.onerror = function () { /* onclose follows */ };
  }

  function onFrame(f) {
    switch (f.type) {
      case "hello":
        backoff = 500;
        agentReadUpTo = Math.max(agentReadUpTo, f.agent_read_up_to || 0);
        setPresence(f.presence);
        clearInterval(heartbeat);
        lastFrameAt = Date.now();
        heartbeat = setInterval(function () {
          // The server pings at the protocol level too; this catches a dead link the browser has not noticed.
          if (Date.now() - lastFrameAt > 45000 && ws) { ws.close(); return; }
          send({ type: "ping" });
        }, 20000);
        break;
      case "ready":
        lastId = Math.max(lastId, f.last_id || 0);
        refreshVisitorMeta();
        flushOutbox();
        break;
      case "message":
        renderMessage(f);
        break;
      case "ack":
        outbox = outbox.filter(function (i) { return i.client_id !== f.client_id; });
        save("outbox", outbox);
        renderMessage({ id: f.id, client_id: f.client_id, from: "visitor" });
        break;
      case "error":
        if (f.client_id) {
          outbox = outbox.filter(function (i) { return i.client_id !== f.client_id; });
          save("outbox", outbox);
          var row = byClient[f.client_id];
          if (row) {
            row.classList.add("failed");
            row.setAttribute("data-error", t("widget.not_sent_because", { reason: errorText(f.code, f.message) }));
            refreshVisitorMeta();
          }
        }
        showError(errorText(f.code, f.message));
        break;
      case "typing":
        setAgentTyping(!!f.typing, f.name);
        break;
      case "read":
        agentReadUpTo = Math.max(agentReadUpTo, f.up_to || 0);
        refreshVisitorMeta();
        break;
      case "presence":
        setPresence(f.presence);
        break;
    }
  }

  function reportRead() {
    if (!isOpen || document.visibilityState !== "visible" || !unread.length) return;
    if (send({ type: "read", ids: unread })) unread = [];
  }

  // -- actions -------------------------------------------------------------------------------------------
  function submitText(given) {
    var text = typeof given === "string" ? given : input.value.trim();
    if (!text) return;
    if (config && text.length > config.max_text) {
      showError(t("widget.too_long", { max: config.max_text }));
      return;
    }
    showError("");
    var item = { client_id: randomId(12), text: text, context: context() };
    outbox.push(item);
    save("outbox", outbox);
    renderPending(item);
    if (typeof given !== "string") input.value = "";
    stopTyping();
    send({ type: "message", client_id: item.client_id, text: text, context: item.context, profile: profile });
  }

  function stopTyping() {
    clearTimeout(typingStop);
    if (typingSentAt) { send({ type: "typing", typing: false }); typingSentAt = 0; }
  }

  function onTyping() {
    var now = Date.now();
    if (now - typingSentAt > 2500) { send({ type: "typing", typing: true }); typingSentAt = now; }
    clearTimeout(typingStop);
    typingStop = setTimeout(stopTyping, 3000);
  }

  function upload(file) {
    if (config && file.size > config.max_upload_bytes) {
      showError(t("widget.too_large", { max: Math.floor(config.max_upload_bytes / 1024) }));
      return;
    }
    var form = new FormData();
    form.append("key", visitorKey);
    if (identifier) { form.append("identifier", identifier); form.append("signature", signature); }
    form.append("client_id", randomId(12));
    form.append("context", JSON.stringify(context()));
    form.append("file", file, file.name);
    showError("");
    fetch(base + "/webchat/" + encodeURIComponent(token) + "/upload", { method: "POST", body: form })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) { if (!res.ok) showError(res.body.error ? errorText(res.body.error.code, res.body.error.message) : t("widget.upload_failed")); })
      .catch(function () { showError(t("widget.upload_offline")); });
  }

  function setOpen(open, quiet) {
    isOpen = open;
    save("open", open);
    panel.hidden = !open;
    teaser.hidden = true;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? t("widget.close") : t("widget.open"));
    if (open) { if (!quiet) input.focus(); scrollDown(); reportRead(); } else if (!quiet) { launcher.focus(); }
  }

  function showPrechat() {
    var fields = (config.prechat_fields || []).filter(function (f) { return !profile[f]; });
    if (!fields.length || Object.keys(byId).length) { prechat.hidden = true; composer.hidden = false; return; }
    prechat.textContent = "";
    prechat.appendChild(el("p", { style: "margin:0", text: t("widget.prechat") }));
    var inputs = {};
    fields.forEach(function (f) {
      inputs[f] = el("input", { name: f, required: "", type: f === "email" ? "email" : "text",
        "aria-label": f === "email" ? t("widget.your_email") : t("widget.your_name"), placeholder: f === "email" ? t("widget.email") : t("widget.name") });
      prechat.appendChild(inputs[f]);
    });
    prechat.appendChild(el("button", { "class": "btn", type: "submit", text: t("widget.start") }));
    prechat.hidden = false;
    composer.hidden = true;
    prechat.onsubmit = function (e) {
      e.preventDefault();
      fields.forEach(function (f) { profile[f] = inputs[f].value.trim(); });
      save("profile", profile);
      prechat.hidden = true;
      composer.hidden = false;
      input.focus();
    };
  }

  launcher.addEventListener("click", function () { setOpen(!isOpen); });
  closeBtn.addEventListener("click", function () { setOpen(false); });
  teaser.addEventListener("click", function () { setOpen(true); });
  teaser.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); setOpen(true); } });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") setOpen(false); });
  composer.addEventListener("submit", function (e) { e.preventDefault(); submitText(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submitText(); }
  });
  input.addEventListener("input", onTyping);
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    if (fileInput.files && fileInput.files[0]) upload(fileInput.files[0]);
    fileInput.value = "";
  });
  emailForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var email = emailInput.value.trim();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) { showError(t("widget.bad_email")); return; }
    showError("");
    profile.email = email;
    save("profile", profile);
    send({ type: "profile", email: email, name: profile.name });
    setPresence(presence);
  });
  document.addEventListener("visibilitychange", reportRead);
  window.addEventListener("online", function () { if (!ws) { backoff = 500; connect(); } });

  // -- start ---------------------------------------------------------------------------------------------
  function start() {
    document.body.appendChild(host);
    var q = "?page_url=" + encodeURIComponent(location.href) + "&first_visit=" + (firstVisit ? "1" : "0");
    fetch(base + "/webchat/" + encodeURIComponent(token) + "/config" + q)
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        if (!res.ok) { presenceText.textContent = res.body.error ? errorText(res.body.error.code, res.body.error.message) : t("widget.unavailable"); return; }
        config = res.body.channel;
        flow = res.body.flow || flow;
        host.style.setProperty("--accent", config.accent);
        title.textContent = config.title || t("widget.title");
        renderSystem(config.welcome || t("widget.welcome"));
        setPresence(res.body.presence);
        showPrechat();
        outbox.forEach(renderPending);
        if (flow.action === "greeting" && flow.message && !isOpen) {
          setTimeout(function () {
            if (isOpen) return;
            teaser.textContent = flow.message;
            teaser.hidden = false;
          }, (flow.after_seconds || 0) * 1000);
        }
        setOpen(isOpen, true);
        connect();
      })
      .catch(function () { presenceText.textContent = t("widget.unavailable"); });
  }
  host.style.setProperty("--accent", "#2457d6");
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
