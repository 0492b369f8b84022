// Compare: two images, candidate difference texts → a score bar per text, the reversed flag.
import { bars, el, lines, readImages, request, run, thumb } from "./api.js";

const form = document.getElementById("compare");

async function score() {
  const [[first], [second]] = await Promise.all([readImages(form.first), readImages(form.second)]);
  const texts = lines(form.texts.value);
  const answer = await request("classify/difference", {
    body: { pairs: [{ first: { b64: first.b64 }, second: { b64: second.b64 } }], texts },
  });
  const result = answer.results[0];
  const flag = result.reversed
    ? `Reads better reversed: "${result.best}" fits the second image → the first better.`
    : `Reads as given: "${result.best}" fits the first image → the second.`;
  form.querySelector(".result").replaceChildren(
    el("div", { class: "strip" }, thumb(first.url, `first: ${first.name}`), thumb(second.url, `second: ${second.name}`)),
    bars(
      texts.map((text, i) => ({ label: text, value: result.scores[i] })),
      { highlight: result.best },
    ),
    el("p", { class: result.reversed ? "flag reversed" : "flag" }, flag),
  );
}

export function setup() {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, score);
  });
}
