import { api, setCsrf } from "./api.js";
import { h, clear } from "./dom.js";
import { t } from "./i18n.js";

export function showLogin(root, onSignedIn) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit", class: "primary" }, t("login.sign_in"));
  const form = h("form", { class: "login-card", onsubmit: submit },
    h("h1", {}, "Switchboard"),
    h("p", { class: "muted" }, t("login.subtitle")),
    h("label", {}, t("login.email"), email),
    h("label", {}, t("login.password"), password),
    error,
    button,
  );
  clear(root, h("main", { class: "login" }, form));
  email.focus();

  async function submit(event) {
    event.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      const session = await api("POST", "/auth/sign-in", { email: email.value, password: password.value });
      setCsrf(session.csrf_token);
      onSignedIn(session);
    } catch (err) {
      error.textContent = err.status === 401 ? t("login.wrong") : err.message;
      error.hidden = false;
      password.select();
    } finally {
      button.disabled = false;
    }
  }
}
