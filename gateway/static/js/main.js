// The agent inbox: sign-in, the three panes, the live stream and the admin pages.

import { api, optional, setCsrf } from "./api.js";
import { h, clear, $ } from "./dom.js";
import { state, isAdmin } from "./state.js";
import { showLogin } from "./login.js";
import { Stream } from "./stream.js";
import * as nav from "./nav.js";
import * as list from "./list.js";
import * as thread from "./thread.js";
import * as banner from "./banner.js";
import * as admin from "./admin.js";
import * as tickets from "./tickets.js";
import * as reports from "./reports.js";
import * as contacts from "./contacts.js";
import * as broadcasts from "./broadcasts.js";
import * as bell from "./bell.js";
import * as profile from "./profile.js";
import { installShortcuts } from "./shortcuts.js";
import { t, setLanguage, browserLanguage, currentLanguage, LANGUAGES, LANGUAGE_NAMES } from "./i18n.js";

const root = document.getElementById("app");
let stream = null;

async function boot() {
  await setLanguage(browserLanguage()); // the sign-in page speaks the browser's language
  try {
    const session = await api("GET", "/auth/session");
    setCsrf(session.csrf_token);
    await start(session);
  } catch (err) {
    if (err.status === 401) showLogin(root, start);
    else clear(root, h("p", { class: "boot" }, t("boot.failed", { error: err.message })));
  }
}

window.addEventListener("sb:signed-out", () => {
  if (!state.me) return; // not signed in yet: the sign-in form is already showing
  if (stream) stream.stop();
  stream = null;
  state.me = null;
  showLogin(root, start);
});

async function start(session) {
  state.me = session.user;
  if (session.language !== currentLanguage()) await setLanguage(session.language);
  clear(root, shell());
  await loadReference();
  nav.render();
  banner.refresh();
  stream = new Stream({
    onEvent: handleEvent,
    onReady: (resumed) => {
      // First connect: whatever happened between the first load and now is fetched once more.
      // Reconnect: the missed events were replayed from the log; only the counts are refreshed.
      if (!resumed) {
        list.reload();
        thread.refresh();
      }
      nav.refreshCounts();
    },
    onState: (s) => {
      state.streamState = s;
      const dot = $("#stream-state");
      if (dot) {
        dot.dataset.state = s;
        dot.title = t(`shell.stream.${s}`);
      }
    },
  });
  stream.start();
  route();
  installShortcuts();
}

async function loadReference() {
  const [users, teams, inboxes, channels, canned] = await Promise.all([
    api("GET", "/users?limit=200"),
    api("GET", "/teams"),
    api("GET", "/inboxes"),
    api("GET", "/channels"),
    optional("/canned-responses"),
  ]);
  state.users = new Map(users.items.map((u) => [u.id, u]));
  state.teams = teams.items;
  state.inboxes = inboxes.items;
  state.channels = new Map(channels.items.map((c) => [c.id, c]));
  state.canned = canned ? canned.items : [];
}

export async function reloadReference() {
  await loadReference();
  nav.render();
}

function shell() {
  const presence = h("select", { id: "my-presence", class: "presence-select", "aria-label": t("shell.your_status"), onchange: async (e) => {
    try {
      const me = await api("PATCH", "/users/me", { availability: e.target.value });
      state.me = { ...state.me, availability: me.availability };
    } catch (err) {
      banner.toast(err.message);
    }
  } },
  ["online", "away", "offline"].map((s) => h("option", { value: s, selected: s === (state.me.availability === "offline" ? "online" : state.me.availability) }, t(`shell.presence.${s}`))));
  const language = h("select", { id: "my-language", class: "presence-select", "aria-label": t("shell.language"), onchange: async (e) => {
    try {
      await api("PATCH", "/users/me", { language: e.target.value });
      location.reload(); // every text on the page is in the old language: start again in the new one
    } catch (err) {
      banner.toast(err.message);
    }
  } },
  LANGUAGES.map((l) => h("option", { value: l, selected: l === currentLanguage(), lang: l }, LANGUAGE_NAMES[l])));
  return h("div", { class: "app" },
    h("header", { class: "topbar" },
      h("button", { class: "icon-button menu-toggle", "aria-label": t("shell.menu"), onclick: () => document.body.classList.toggle("nav-open") }, "☰"),
      h("a", { class: "brand", href: "#/" }, "Switchboard"),
      h("span", { id: "stream-state", class: "stream-state", data: { state: "connecting" } }),
      h("div", { class: "topbar-right" },
        h("a", { href: "#/tickets", class: "top-link", id: "tickets-link" }, t("tickets.title")),
        h("a", { href: "#/reports", class: "top-link", id: "reports-link" }, t("reports.title")),
        h("a", { href: "#/contacts", class: "top-link", id: "contacts-link" }, t("contacts.title")),
        h("a", { href: "#/broadcasts", class: "top-link", id: "broadcasts-link" }, t("broadcasts.title")),
        bell.button(),
        isAdmin() || state.me.role === "billing_admin" ? h("a", { href: "#/admin/inboxes", class: "top-link" }, t("shell.settings")) : null,
        h("span", { class: ["presence-dot", `presence-${state.me.availability}`], id: "my-presence-dot" }),
        presence,
        language,
        h("a", { class: "me-name", id: "profile-link", href: "#/profile", title: t("profile.open") }, state.me.name),
        h("button", { class: "link-button", id: "sign-out", onclick: signOut }, t("shell.sign_out")),
      ),
    ),
    h("div", { id: "quota-banner", class: "quota-banner", hidden: true, role: "status" }),
    h("nav", { id: "nav", class: "nav", "aria-label": t("shell.aria.nav") }),
    h("main", { id: "main", class: "main" }),
    h("div", { id: "toasts", class: "toasts", "aria-live": "polite" }),
  );
}

async function signOut() {
  try {
    await api("POST", "/auth/sign-out");
  } finally {
    window.dispatchEvent(new Event("sb:signed-out"));
  }
}

function route() {
  if (!state.me) return;
  const hash = location.hash || "#/";
  const main = $("#main");
  document.body.classList.remove("nav-open");
  if (hash.startsWith("#/tickets")) {
    document.body.dataset.page = "tickets";
    tickets.render(main, hash);
    nav.render();
    return;
  }
  if (hash.startsWith("#/broadcasts")) {
    document.body.dataset.page = "broadcasts";
    broadcasts.render(main, hash);
    nav.render();
    return;
  }
  if (hash.startsWith("#/reports")) {
    document.body.dataset.page = "reports";
    reports.render(main);
    nav.render();
    return;
  }
  if (hash.startsWith("#/profile")) {
    document.body.dataset.page = "profile";
    profile.render(main);
    nav.render();
    return;
  }
  if (hash.startsWith("#/contacts")) {
    document.body.dataset.page = "contacts";
    contacts.render(main);
    nav.render();
    return;
  }
  const adminMatch = hash.match(/^#\/admin\/([a-z-]+)/);
  if (adminMatch) {
    document.body.dataset.page = "admin";
    admin.render(main, adminMatch[1]);
    nav.render();
    return;
  }
  document.body.dataset.page = "inbox";
  if (!$("#conversation-list", main)) {
    clear(main,
      h("section", { id: "list-pane", class: "list-pane", "aria-label": t("shell.aria.conversations") }),
      h("section", { id: "thread-pane", class: "thread-pane", "aria-label": t("shell.aria.conversation") }),
      h("aside", { id: "contact-pane", class: "contact-pane", "aria-label": t("shell.aria.contact") }),
    );
    list.mount($("#list-pane"));
    list.reload();
    state.selectedId = null; // the panes are new (back from another page): open the conversation again
  }
  const convMatch = hash.match(/^#\/conversations\/(\d+)/);
  const id = convMatch ? Number(convMatch[1]) : null;
  document.body.classList.toggle("has-selection", id !== null);
  if (id !== state.selectedId || !id) thread.open(id);
  nav.render();
}

window.addEventListener("hashchange", route);

function handleEvent(event) {
  const data = event.data || {};
  switch (event.type) {
    case "message.created":
    case "message.updated":
      thread.onMessage(data.message, event.type);
      list.touch(event.conversation_id);
      if (event.type === "message.created" && data.message && data.message.kind === "incoming") nav.refreshCounts();
      if (data.message && data.message.reason === "quota_exhausted") banner.refresh();
      if (event.type === "message.updated") broadcasts.onEvent(event); // delivered/read/replied on an open broadcast
      break;
    case "conversation.created":
    case "conversation.updated":
      list.touch(event.conversation_id);
      thread.onConversation(data.conversation);
      nav.refreshCounts();
      break;
    case "conversation.handoff":
      list.touch(event.conversation_id);
      thread.onContactEvent(event);
      banner.toast(t("shell.handoff", { id: String(event.conversation_id) }));
      nav.refreshCounts();
      break;
    case "user.presence":
      if (data.user) {
        state.users.set(data.user.id, data.user);
        if (state.me && data.user.id === state.me.id) {
          state.me = { ...state.me, availability: data.user.availability };
          const dot = $("#my-presence-dot");
          if (dot) dot.className = `presence-dot presence-${data.user.availability}`;
          const select = $("#my-presence");
          if (select && data.user.availability !== "offline") select.value = data.user.availability;
        }
        nav.renderPresence();
      }
      break;
    default:
      if (event.type.startsWith("ticket.")) tickets.onEvent(event);
      if (event.type.startsWith("broadcast.")) broadcasts.onEvent(event);
      if (event.type.startsWith("quota.") || event.type.startsWith("billing.")) banner.refresh();
      if (event.type.startsWith("contact.") || event.type.startsWith("consent.")) thread.onContactEvent(event);
  }
}

boot();
