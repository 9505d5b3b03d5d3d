// Building DOM without ever parsing markup: every string becomes a text node or an attribute value.

const PROPS = new Set(["value", "checked", "disabled", "selected", "hidden", "type", "placeholder",
  "title", "href", "src", "alt", "name", "rows", "min", "max", "step", "tabIndex", "autocomplete",
  "htmlFor", "id", "required", "multiple", "readOnly", "download", "target", "rel", "sandbox",
  "role", "loading", "referrerPolicy", "autofocus"]);

/** h("div", {class: "x", onclick: fn, data: {id: 1}}, "text", child, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key === "style") el.style.cssText = value; // CSSOM: allowed by the page's CSP, unlike style=""
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key.startsWith("aria-")) el.setAttribute(key, String(value));
    else if (key === "sandbox") el.setAttribute("sandbox", String(value));
    else if (key === "href" || key === "src") el.setAttribute(key, safeUrl(String(value)));
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Only same-origin paths, fragments and http(s)/mailto links; anything else (javascript:) is dropped. */
export function safeUrl(url) {
  if (url.startsWith("/") && !url.startsWith("//")) return url;
  if (url.startsWith("#")) return url;
  try {
    const parsed = new URL(url, location.href);
    if (["http:", "https:", "mailto:"].includes(parsed.protocol)) return parsed.href;
    if (parsed.protocol === "blob:" && url.startsWith(`blob:${location.origin}/`)) return url; // a local preview
  } catch (_) { /* fall through */ }
  return "#";
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function option(value, label, selected) {
  return h("option", { value: String(value), selected: String(value) === String(selected) }, label);
}
