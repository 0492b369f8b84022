// Shared by the panels: calling the API, reading files, drawing score bars and thumbnails.
// Paths are relative ("classify", not "/classify"), so the page works behind a path prefix.

let apiKey = "";

export function setApiKey(key) {
  apiKey = key.trim();
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function authHeaders() {
  return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
}

// The server's own words for a failed request: `detail` as a string or as FastAPI's list of
// {loc, msg}, a `message`, or OpenAI's {"error": {"message"}}.
export function errorMessage(body, status) {
  const detail = body?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => (e.loc?.length ? `${e.loc.join(".")}: ${e.msg}` : e.msg ?? JSON.stringify(e))).join("; ");
  }
  return body?.message ?? body?.error?.message ?? `HTTP ${status}`;
}

// Fetch `path` (JSON body when given); the answer's JSON, or an ApiError with the server's message.
export async function request(path, { method, body } = {}) {
  const headers = { ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(parsed, response.status));
  return parsed;
}

// Files of an <input type=file> as {name, b64, url}: base64 for the API, an object URL to show.
export function readImages(input) {
  return Promise.all([...input.files].map(readImage));
}

function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const dataUrl = String(reader.result);
      resolve({ name: file.name, b64: dataUrl.slice(dataUrl.indexOf(",") + 1), url: URL.createObjectURL(file) });
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

export function thumb(src, caption) {
  return el("figure", { class: "thumb" }, el("img", { src, alt: caption }), el("figcaption", {}, caption));
}

// One bar per {label, value}, scaled to the largest |value|. When some value is negative the
// bars grow from the middle: negative ones to the left.
export function bars(rows, { highlight } = {}) {
  const scale = Math.max(...rows.map((row) => Math.abs(row.value)), 1e-9);
  const signed = rows.some((row) => row.value < 0);
  const list = el("div", { class: signed ? "bars signed" : "bars" });
  for (const { label, value } of rows) {
    const width = `${(((signed ? 50 : 100) * Math.abs(value)) / scale).toFixed(1)}%`;
    const fill = el("span", { class: value < 0 ? "fill negative" : "fill" });
    fill.style.width = width;
    const row = el(
      "div",
      { class: label === highlight ? "bar best" : "bar" },
      el("span", { class: "label" }, label),
      el("span", { class: "track" }, fill),
      el("span", { class: "value" }, value.toFixed(3)),
    );
    list.append(row);
  }
  return list;
}

// Run `work` for a panel's form: its submit button disabled meanwhile, its error line showing
// the server's message when it fails.
export async function run(form, work) {
  const error = form.querySelector(".error");
  const button = form.querySelector("button[type=submit]");
  error.hidden = true;
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// A removable row of inputs inside `container`, for term, edit and comparative lists.
export function addRow(container, fields) {
  const row = el("div", { class: "entry" }, ...fields);
  const remove = el("button", { type: "button", class: "remove", "aria-label": "remove" }, "×");
  remove.addEventListener("click", () => row.remove());
  row.append(remove);
  container.append(row);
  return row;
}

export function lines(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}
