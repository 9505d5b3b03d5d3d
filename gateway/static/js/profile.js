// Your profile (#/profile): the display name, title, meeting link and avatar that chat visitors see,
// and the name on your email replies. The avatar is uploaded when picked (with a preview at once) and
// becomes yours on Save; the server keeps it as a 256-pixel square.

import { api, upload } from "./api.js";
import { h, clear, $ } from "./dom.js";
import { state } from "./state.js";
import { t } from "./i18n.js";
import { toast } from "./banner.js";

const AVATAR_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const AVATAR_MAX_BYTES = 1024 * 1024;

let avatarChange; // undefined: unchanged; null: remove it; a number: the upload to use
let previewUrl = null; // a blob: URL of the picked file, revoked when replaced

function serverAvatar(profile) {
  // The saved avatar, with its save time so a new one is not taken from the cache.
  return profile.has_avatar ? `/api/v1/users/me/avatar?v=${encodeURIComponent(profile.updated_at || "")}` : null;
}

function initials() {
  return (state.me.name || "?").trim().charAt(0).toUpperCase() || "?";
}

function showPreview(src) {
  const holder = $("#profile-avatar-preview");
  if (!holder) return;
  clear(holder, src
    ? h("img", { id: "profile-avatar", class: "profile-avatar", src, alt: t("profile.avatar_preview") })
    : h("span", { id: "profile-avatar", class: "profile-avatar profile-avatar-empty", "aria-label": t("profile.no_avatar"), role: "img" }, initials()));
  $("#profile-avatar-remove").hidden = !src;
}

function showError(message) {
  const line = $("#profile-error");
  line.textContent = message || "";
  line.hidden = !message;
}

function setPreviewUrl(url) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = url;
}

async function picked(e) {
  const file = e.target.files && e.target.files[0];
  if (!file) return;
  showError("");
  if (!AVATAR_TYPES.includes(file.type)) { showError(t("profile.avatar_type")); e.target.value = ""; return; }
  if (file.size > AVATAR_MAX_BYTES) { showError(t("profile.avatar_too_large")); e.target.value = ""; return; }
  setPreviewUrl(URL.createObjectURL(file));
  showPreview(previewUrl);
  const progress = $("#profile-avatar-progress");
  const save = $("#profile-save");
  progress.hidden = false;
  progress.value = 0;
  save.disabled = true;
  try {
    const uploaded = await upload(file, (fraction) => { progress.value = fraction; });
    avatarChange = uploaded.id;
  } catch (err) {
    avatarChange = undefined;
    showError(err.message);
  } finally {
    progress.hidden = true;
    save.disabled = false;
  }
}

function removeAvatar() {
  avatarChange = null;
  setPreviewUrl(null);
  $("#profile-avatar-file").value = "";
  showPreview(null);
}

async function save(e) {
  e.preventDefault();
  showError("");
  const body = {
    display_name: $("#profile-display-name").value.trim() || null,
    title: $("#profile-title").value.trim() || null,
    meeting_url: $("#profile-meeting").value.trim() || null,
  };
  if (avatarChange !== undefined) body.avatar_upload_id = avatarChange;
  try {
    const profile = await api("PUT", "/users/me/profile", body);
    avatarChange = undefined;
    setPreviewUrl(null);
    showPreview(serverAvatar(profile));
    toast(t("profile.saved"));
  } catch (err) {
    showError(err.message);
  }
}

function field(id, label, input, hint) {
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "profile-field" },
    h("label", { class: "profile-label", htmlFor: id }, label), input,
    hint ? h("span", { id: `${id}-hint`, class: "muted small" }, hint) : null);
}

/** The profile page into ``main``. */
export async function render(main) {
  avatarChange = undefined;
  setPreviewUrl(null);
  clear(main, h("section", { id: "profile-page", class: "profile-page" }, h("p", { class: "muted" }, t("profile.loading"))));
  let profile;
  try {
    profile = await api("GET", "/users/me/profile");
  } catch (err) {
    clear($("#profile-page"), h("p", { class: "form-error" }, err.message));
    return;
  }
  clear($("#profile-page"),
    h("h1", {}, t("profile.title")),
    h("p", { class: "muted" }, t("profile.intro")),
    h("form", { id: "profile-form", class: "profile-form", onsubmit: save, novalidate: "" },
      h("div", { class: "profile-avatar-row" },
        h("div", { id: "profile-avatar-preview", class: "profile-avatar-holder" }),
        h("div", { class: "profile-avatar-actions" },
          field("profile-avatar-file", t("profile.avatar"),
            h("input", { id: "profile-avatar-file", type: "file", accept: AVATAR_TYPES.join(","), onchange: picked }),
            t("profile.avatar_hint")),
          h("progress", { id: "profile-avatar-progress", max: 1, value: 0, hidden: true, "aria-label": t("profile.uploading") }),
          h("button", { type: "button", id: "profile-avatar-remove", class: "link-button", onclick: removeAvatar }, t("profile.remove_avatar")))),
      field("profile-display-name", t("profile.display_name"),
        h("input", { id: "profile-display-name", value: profile.display_name || "", placeholder: profile.name, maxlength: "100" }),
        t("profile.display_name_hint")),
      field("profile-title", t("profile.job_title"),
        h("input", { id: "profile-title", value: profile.title || "", maxlength: "100" })),
      field("profile-meeting", t("profile.meeting"),
        h("input", { id: "profile-meeting", type: "url", value: profile.meeting_url || "", placeholder: "https://" }),
        t("profile.meeting_hint")),
      h("p", { id: "profile-error", class: "form-error", role: "alert", hidden: true }),
      h("button", { type: "submit", id: "profile-save", class: "primary" }, t("profile.save"))));
  showPreview(serverAvatar(profile));
}
