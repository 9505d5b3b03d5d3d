// The REST API with the session cookie; state changes carry the CSRF token.

import { t } from "./i18n.js";

let csrfToken = null;

export function setCsrf(token) {
  csrfToken = token;
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "network", t("api.unreachable"));
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    if (response.status === 401 && path !== "/auth/sign-in") window.dispatchEvent(new Event("sb:signed-out"));
    throw new ApiError(response.status, err.code || "http_error", err.message || `HTTP ${response.status}`, err.details);
  }
  return data;
}

/** POST /uploads with the file as multipart; ``onProgress(fraction)`` while it goes up. */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/uploads");
    xhr.withCredentials = true;
    if (csrfToken) xhr.setRequestHeader("X-CSRF-Token", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, "network", t("api.unreachable")));
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (_) { data = null; }
      if (xhr.status === 201) { resolve(data); return; }
      const err = (data && data.error) || {};
      reject(new ApiError(xhr.status, err.code || "http_error", err.message || `HTTP ${xhr.status}`, err.details));
    };
    const form = new FormData();
    form.append("file", file, file.name || "pasted-image.png");
    xhr.send(form);
  });
}

/** GET that answers null when the endpoint does not exist on this server (a feature not installed). */
export async function optional(path) {
  try {
    return await api("GET", path);
  } catch (err) {
    if (err.status === 404 || err.status === 405) return null;
    throw err;
  }
}

export async function firstAvailable(paths) {
  for (const path of paths) {
    const data = await optional(path);
    if (data !== null) return { path, data };
  }
  return null;
}
