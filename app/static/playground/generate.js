// Generate: prompt + weighted edits → an SDXL job; live progress from its event stream, the image when done.
import { addRow, authHeaders, el, errorMessage, request, run } from "./api.js";

const form = document.getElementById("generate");
const edits = form.querySelector("[data-rows=edits]");
const availability = form.querySelector(".availability");
const progress = form.querySelector(".progress");
const cancel = form.querySelector("[data-action=cancel]");
let current = null; // the running job's id

// What GET /info says about generation; without SDXL weights the form stays, with the reason.
export function showAvailability(generation) {
  const ready = generation?.state === "ready";
  availability.textContent = ready
    ? `Text encoders: ${generation.encoders.text_encoder}.`
    : `Generation is not available on this server (${generation?.state ?? "unknown"}): ${generation?.detail ?? ""}`;
  availability.classList.toggle("unavailable", !ready);
}

function addEdit(text = "snowier", weight = "0.8") {
  addRow(edits, [
    el("input", { class: "edit-text", value: text, "aria-label": "edit text" }),
    el("input", { class: "edit-weight", type: "number", step: "0.1", value: weight, "aria-label": "edit weight" }),
  ]);
}

function showProgress(status) {
  const percent = Math.round(100 * status.progress);
  progress.querySelector("progress").value = status.progress;
  progress.querySelector(".percent").textContent = `${percent} %`;
  progress.querySelector(".state").textContent = status.status;
}

// GET generate/{id}/events read as a stream (EventSource cannot send the API key): each
// `data:` line is the job's status, until the job has finished.
async function follow(id) {
  const response = await fetch(`generate/${encodeURIComponent(id)}/events`, { headers: authHeaders() });
  if (!response.ok) throw new Error(errorMessage(await response.json(), response.status));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    const events = buffered.split("\n\n");
    buffered = events.pop();
    for (const event of events) {
      const data = event.split("\n").find((line) => line.startsWith("data:"));
      if (data) showProgress(JSON.parse(data.slice(5)));
    }
  }
}

async function generate() {
  const body = {
    prompt: form.prompt.value,
    edits: [...edits.querySelectorAll(".entry")].map((row) => ({
      text: row.querySelector(".edit-text").value,
      weight: Number(row.querySelector(".edit-weight").value),
    })),
    steps: Number(form.steps.value),
    width: Number(form.width.value),
    height: Number(form.height.value),
  };
  if (form.seed.value !== "") body.seed = Number(form.seed.value);
  form.querySelector(".result").replaceChildren();
  const accepted = await request("generate", { body });
  current = accepted.job_id;
  cancel.disabled = false;
  progress.hidden = false;
  showProgress({ progress: 0, status: "queued" });
  try {
    await follow(current); // progress as the stream tells it, up to its final event
    const job = await request(`generate/${encodeURIComponent(current)}`);
    if (job.status === "failed") throw new Error(`generation failed: ${job.error}`);
    if (job.image_png_b64) {
      const image = el("img", { class: "generated", src: `data:image/png;base64,${job.image_png_b64}`, alt: body.prompt });
      form.querySelector(".result").replaceChildren(image, el("p", {}, `seed ${job.seed}`));
    }
  } finally {
    current = null;
    cancel.disabled = true;
  }
}

export function setup() {
  form.querySelector("[data-add=edit]").addEventListener("click", () => addEdit());
  cancel.addEventListener("click", () => current && request(`generate/${encodeURIComponent(current)}/cancel`, { method: "POST" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, generate);
  });
  addEdit();
}
