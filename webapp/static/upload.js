// Sends each dropped file on its own request, so results appear as they come.
(function () {
  const zone = document.getElementById("dropzone");
  const picker = document.getElementById("picker");
  const body = document.querySelector("#results tbody");
  const csrf = document.querySelector("meta[name=csrf-token]").content;

  function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }

  // the same bars as the prediction page (_prediction.html): an SVG rect per class, the two classes
  // the model hesitates between marked as such, else its top class
  const SVG = "http://www.w3.org/2000/svg";
  function bars(prediction, shownAs) {
    const list = document.createElement("ul"); list.className = "bars";
    const between = prediction.uncertain_between || [];
    Object.entries(prediction.probabilities).forEach(([name, p], i) => {
      const li = document.createElement("li");
      li.className = between.includes(name) ? "between" : (i === 0 && !between.length ? "top" : "");
      const label = document.createElement("span"); label.textContent = shownAs[name] || name;
      const bar = document.createElementNS(SVG, "svg"); bar.setAttribute("class", "bar");
      bar.setAttribute("viewBox", "0 0 100 1"); bar.setAttribute("preserveAspectRatio", "none"); bar.setAttribute("aria-hidden", "true");
      const fill = document.createElementNS(SVG, "rect"); fill.setAttribute("width", (p * 100).toFixed(1)); fill.setAttribute("height", "1");
      bar.appendChild(fill);
      const value = document.createElement("span"); value.textContent = (p * 100).toFixed(1) + "%";
      li.append(label, bar, value); list.appendChild(li);
    });
    return list;
  }

  async function send(file) {
    const row = document.createElement("tr"); body.prepend(row);
    cell(row, file.name); const status = cell(row, "predicting…");
    const form = new FormData(); form.append("file", file);
    ["site", "patient_age", "patient_sex"].forEach(id => { const v = document.getElementById(id).value; if (v) form.append(id, v); });
    document.querySelectorAll("[data-clinical]").forEach(input => { if (input.value) form.append(input.id, input.value); });
    try {
      const response = await fetch(window.location.pathname, {
        method: "POST", body: form, headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      });
      const result = await readResult(response);
      if (!result.ok) { status.textContent = result.error; status.className = "error-message"; return; }
      const p = result.prediction;
      status.innerHTML = ""; const strong = document.createElement("strong"); strong.textContent = result.call; status.appendChild(strong);
      strong.className = p.uncertain_between ? "model-call uncertain" : "model-call";
      cell(row, "").appendChild(bars(p, result.shown_as));
      cell(row, "v" + p.model_version);
      const link = document.createElement("a"); link.href = "/predictions/" + p.id; link.textContent = "open";
      const last = cell(row, ""); last.appendChild(link);
      if (result.already) { row.classList.add("reupload"); row.after(alreadyNotice(result)); }
      // the prediction came back without waiting for Grad-CAM: the heat map's URL answers once it is made
      const heat = document.createElement("span"); heat.className = "muted";
      heat.textContent = result.heatmap.status === "ready" ? " · heat map ready" : " · heat map…";
      last.appendChild(heat);
      if (result.heatmap.status !== "ready") {
        const probe = new Image();
        probe.onload = () => { heat.textContent = " · heat map ready"; };
        probe.onerror = () => { heat.textContent = " · heat map when opened"; };
        probe.src = result.heatmap.url;
      }
    } catch (error) { status.textContent = "Upload failed: " + error.message; status.className = "error-message"; }
  }

  // A re-upload: the film is the study stored before, with a link to it, and what the typed fields
  // added to it or could not change.
  function alreadyNotice(result) {
    const row = document.createElement("tr"); row.className = "already";
    const td = document.createElement("td"); td.colSpan = 5; row.appendChild(td);
    const note = document.createElement("p"); note.className = "flash"; note.setAttribute("role", "status");
    const link = document.createElement("a"); link.href = result.study_url; link.textContent = "study #" + result.image_id;
    note.append("This film is already in medal as ", link, ".");
    (result.details || []).forEach(sentence => note.append(" " + sentence));
    td.appendChild(note);
    return row;
  }

  // The app answers JSON, but a proxy in front of it (a 413 or 502 from nginx) or an expired
  // session (the log-in page) answers HTML: say what happened instead of a JSON SyntaxError.
  async function readResult(response) {
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("application/json")) {
      const data = await response.json();
      return data.results ? data.results[0] : { ok: false, error: data.error || ("HTTP " + response.status) };
    }
    if (response.redirected && new URL(response.url).pathname === "/login") {
      return { ok: false, error: "Your session has ended: log in again, then upload this file again." };
    }
    const known = {
      413: "The file is larger than the server accepts.",
      502: "The server is not reachable right now; try again in a minute.",
      503: "The server is busy or starting; try again in a minute.",
      504: "The server took too long to answer; try again.",
    };
    return { ok: false, error: (known[response.status] || "The server answered unexpectedly.") + " (HTTP " + response.status + ")" };
  }

  function sendAll(files) { Array.from(files).forEach(send); }
  zone.addEventListener("dragover", e => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", e => { e.preventDefault(); zone.classList.remove("over"); sendAll(e.dataTransfer.files); });
  picker.addEventListener("change", () => { sendAll(picker.files); picker.value = ""; });
})();
