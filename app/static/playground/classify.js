// Classify: images over labels, optional comparatives + α → score bars per image.
import { addRow, bars, el, lines, readImages, request, run, thumb } from "./api.js";

const form = document.getElementById("classify");
const comparatives = form.querySelector("[data-rows=comparatives]");

function addComparative() {
  addRow(comparatives, [
    el("input", { name: "first", placeholder: "first label", "aria-label": "first label" }),
    el("input", { name: "second", placeholder: "second label (moves)", "aria-label": "second label" }),
    el("input", { name: "text", placeholder: "the first …, while the second …", "aria-label": "difference text" }),
  ]);
}

function readComparatives() {
  return [...comparatives.querySelectorAll(".entry")].map((row) => ({
    first: row.querySelector("[name=first]").value,
    second: row.querySelector("[name=second]").value,
    text: row.querySelector("[name=text]").value,
  }));
}

async function classify() {
  const images = await readImages(form.images);
  const answer = await request("classify", {
    body: {
      images: images.map((image) => ({ b64: image.b64 })),
      labels: lines(form.labels.value),
      template: form.template.value,
      comparatives: readComparatives(),
      alpha: Number(form.alpha.value),
    },
  });
  const rows = answer.results.map((result, i) =>
    el(
      "div",
      { class: "classified" },
      thumb(images[i].url, images[i].name),
      bars(
        result.labels.map((entry) => ({ label: entry.label, value: entry.score })),
        { highlight: result.labels[0].label },
      ),
    ),
  );
  form.querySelector(".result").replaceChildren(...rows);
}

export function setup() {
  form.querySelector("[data-add=comparative]").addEventListener("click", addComparative);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, classify);
  });
}
