// Search: add images to the index, then query it with weighted terms (text, image, indexed id,
// difference) → hits as thumbnails with their score and each term's contribution.
import { addRow, authHeaders, bars, el, readImages, request, run, thumb } from "./api.js";

const form = document.getElementById("search");
const terms = form.querySelector("[data-rows=terms]");
const added = form.querySelector(".added");
const knownIds = document.getElementById("known-ids");
const KINDS = ["text", "image", "id", "difference"];

// An id the index accepts, from a file name: letters, digits and . _ - : @ + = (no leading dot).
function idFromName(name) {
  return name.replace(/[^A-Za-z0-9._\-:@+=]/g, "-").replace(/^\.+/, "").slice(0, 256) || undefined;
}

export async function refreshSize() {
  try {
    const index = await request("index");
    added.textContent = `The index holds ${index.size} item${index.size === 1 ? "" : "s"} (${index.index_type}).`;
  } catch (err) {
    added.textContent = err.message;
  }
}

async function addToIndex() {
  const images = await readImages(form.items);
  const items = images.map((image) => ({ id: idFromName(image.name), image: { b64: image.b64 }, metadata: { file: image.name } }));
  const answer = await request("index/items", { body: { items } });
  for (const id of [...answer.added, ...answer.replaced]) knownIds.append(el("option", { value: id }));
  added.textContent = `Added ${answer.added.length}, replaced ${answer.replaced.length}: the index holds ${answer.size}.`;
}

// A term row: its kind, a value (text, indexed id or an image file) and a weight.
function addTerm(kind = "text", value = "") {
  const select = el("select", { "aria-label": "term kind" }, ...KINDS.map((name) => el("option", { value: name }, name)));
  select.value = kind;
  const text = el("input", { class: "term-value", value, "aria-label": "term value" });
  const file = el("input", { class: "term-file", type: "file", accept: "image/*", "aria-label": "term image" });
  const weight = el("input", { class: "term-weight", type: "number", step: "0.1", value: "1", "aria-label": "weight" });
  const show = () => {
    text.hidden = select.value === "image";
    file.hidden = select.value !== "image";
    text.setAttribute("list", select.value === "id" ? "known-ids" : "");
  };
  select.addEventListener("change", show);
  show();
  addRow(terms, [select, text, file, weight]);
}

async function readTerm(row) {
  const kind = row.querySelector("select").value;
  const weight = Number(row.querySelector(".term-weight").value);
  if (kind !== "image") {
    const value = row.querySelector(".term-value").value;
    return { term: { [kind]: value, weight }, label: `${kind} "${value}"` };
  }
  const [image] = await readImages(row.querySelector(".term-file"));
  if (!image) throw new Error("an image term needs an image file");
  return { term: { image: { b64: image.b64 }, weight }, label: `image ${image.name}` };
}

// The item's stored source image, fetched with the API key (an <img src> cannot send one).
async function sourceImage(id) {
  const response = await fetch(`index/items/${encodeURIComponent(id)}/image`, { headers: authHeaders() });
  return response.ok ? URL.createObjectURL(await response.blob()) : "";
}

async function search() {
  const parts = await Promise.all([...terms.querySelectorAll(".entry")].map(readTerm));
  const answer = await request("search", { body: { terms: parts.map((part) => part.term), k: Number(form.k.value) } });
  const cards = await Promise.all(
    answer.hits.map(async (hit) =>
      el(
        "div",
        { class: "hit" },
        thumb(await sourceImage(hit.id), `${hit.id} · ${hit.score.toFixed(3)}`),
        bars(hit.contributions.map((value, i) => ({ label: parts[i].label, value }))),
      ),
    ),
  );
  form.querySelector(".result").replaceChildren(...(cards.length ? cards : [el("p", {}, "No hits.")]));
}

export function setup() {
  form.querySelector("[data-add=term]").addEventListener("click", () => addTerm());
  form.querySelector("[data-action=add]").addEventListener("click", () => run(form, addToIndex));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, search);
  });
  addTerm("text", "a red square");
}
