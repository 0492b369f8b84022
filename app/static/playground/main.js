// The page: tabs, the API-key field (shown when the server asks for a key), the server's status.
import { request, setApiKey } from "./api.js";
import * as classify from "./classify.js";
import * as compare from "./compare.js";
import * as generate from "./generate.js";
import * as rank from "./rank.js";
import * as search from "./search.js";

const status = document.getElementById("server-status");
const keyField = document.getElementById("key-field");
const keyInput = document.getElementById("api-key");

function showTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.panel === name;
    tab.setAttribute("aria-selected", String(selected));
    document.getElementById(tab.dataset.panel).hidden = !selected;
  }
}

// GET /info: what is served and whether it needs a key; 401 shows the key field.
async function probe() {
  try {
    const info = await request("info");
    const parts = [`model ${info.spec}`, `${info.embed_dim}-d`, info.device];
    parts.push(info.capabilities.index ? "index ready" : "no index");
    parts.push(info.capabilities.generation ? "generation ready" : "no generation");
    status.textContent = `Connected: ${parts.join(" · ")}`;
    if (info.capabilities.auth) keyField.hidden = false;
    generate.showAvailability(info.generation);
    search.refreshSize();
  } catch (err) {
    if (err.status === 401) keyField.hidden = false;
    status.textContent = err.status === 401 ? `This server needs an API key: ${err.message}` : err.message;
  }
}

for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => showTab(tab.dataset.panel));
}
keyInput.addEventListener("change", () => {
  setApiKey(keyInput.value);
  probe();
});
for (const panel of [compare, classify, rank, search, generate]) panel.setup();
probe();
