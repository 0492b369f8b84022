// Rank: images along a difference text → an ordered strip of thumbnails.
import { el, readImages, request, run, thumb } from "./api.js";

const form = document.getElementById("rank");

async function rank() {
  const images = await readImages(form.images);
  const answer = await request("rank", {
    body: { images: images.map((image) => ({ b64: image.b64 })), text: form.text.value },
  });
  const strip = el("ol", { class: "strip ranked" });
  for (const entry of answer.results) {
    const image = images[entry.index];
    strip.append(el("li", {}, thumb(image.url, `${image.name} · ${entry.score.toFixed(3)}`)));
  }
  form.querySelector(".result").replaceChildren(strip);
}

export function setup() {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, rank);
  });
}
