// The radiograph viewer: zoom and pan (vendored Panzoom), window/level and invert (CSS filters on
// the X-ray only), and the heat map, which sits in the same transformed frame as the X-ray so the
// two stay registered at every zoom. Keys: H heat map, I invert, R reset, + / - zoom.
(function () {
  const stage = document.getElementById("viewer-stage");
  const frame = document.getElementById("xray");
  const xray = document.getElementById("xray-image");
  if (!stage || !frame || !xray || typeof Panzoom !== "function") return;
  const $ = (id) => document.getElementById(id);
  const zoomLevel = $("zoom-level");
  const brightness = $("wl-brightness");
  const contrast = $("wl-contrast");
  const invertButton = $("invert");
  const readout = $("wl-readout");
  const heat = $("heat");
  const heatToggle = $("heat-toggle");
  const heatOpacity = $("heat-opacity");
  const heatGroup = $("heat-group");

  // --- zoom and pan ---------------------------------------------------------------------------
  const panzoom = Panzoom(frame, { minScale: 0.5, maxScale: 12, step: 0.25, cursor: "grab" });
  stage.addEventListener("wheel", panzoom.zoomWithWheel);
  frame.addEventListener("panzoomchange", (event) => {
    zoomLevel.textContent = event.detail.scale.toFixed(1) + "×";
  });
  $("zoom-in").addEventListener("click", () => panzoom.zoomIn());
  $("zoom-out").addEventListener("click", () => panzoom.zoomOut());

  // --- window/level and invert ----------------------------------------------------------------
  const DEFAULT_B = Number(brightness.defaultValue);
  const DEFAULT_C = Number(contrast.defaultValue);
  let inverted = false;
  function applyFilter() {
    const b = Number(brightness.value) / 100;
    const c = Number(contrast.value) / 100;
    xray.style.filter = `brightness(${b}) contrast(${c})` + (inverted ? " invert(1)" : "");
    readout.textContent = `B ${brightness.value} · C ${contrast.value}` + (inverted ? " · inverted" : "");
  }
  function setInverted(on) {
    inverted = on;
    invertButton.setAttribute("aria-pressed", String(on));
    applyFilter();
  }
  brightness.addEventListener("input", applyFilter);
  contrast.addEventListener("input", applyFilter);
  invertButton.addEventListener("click", () => setInverted(!inverted));

  // Shift+drag or right-drag sets window/level; caught in the capture phase so Panzoom, bound on
  // the frame inside the stage, does not pan at the same time.
  let leveling = null;
  stage.addEventListener("pointerdown", (event) => {
    if (!(event.shiftKey || event.button === 2)) return;
    event.stopPropagation();
    event.preventDefault();
    leveling = { x: event.clientX, y: event.clientY, b: Number(brightness.value), c: Number(contrast.value) };
    stage.setPointerCapture(event.pointerId);
    stage.classList.add("leveling");
  }, true);
  stage.addEventListener("pointermove", (event) => {
    if (!leveling) return;
    contrast.value = leveling.c + (event.clientX - leveling.x);        // right: more contrast
    brightness.value = leveling.b - (event.clientY - leveling.y) / 2;  // up: brighter
    applyFilter();
  });
  const stopLeveling = () => { leveling = null; stage.classList.remove("leveling"); };
  stage.addEventListener("pointerup", stopLeveling);
  stage.addEventListener("pointercancel", stopLeveling);
  stage.addEventListener("contextmenu", (event) => event.preventDefault());

  function reset() {
    panzoom.reset({ animate: false });
    brightness.value = DEFAULT_B;
    contrast.value = DEFAULT_C;
    setInverted(false);
  }
  $("view-reset").addEventListener("click", reset);
  stage.addEventListener("dblclick", reset);

  // --- heat map: off until asked for ----------------------------------------------------------
  let showHeat = () => {};
  if (heat && heatToggle && heatOpacity) {
    const applyHeat = () => { heat.style.opacity = Number(heatOpacity.value) / 100; };
    showHeat = (on) => {
      if (heatToggle.disabled) return;
      heat.hidden = !on;
      heatToggle.setAttribute("aria-pressed", String(on));
      heatGroup.classList.toggle("on", on);
    };
    heatToggle.addEventListener("click", () => showHeat(heat.hidden));
    heatOpacity.addEventListener("input", () => { applyHeat(); showHeat(true); });
    heat.addEventListener("error", () => {
      showHeat(false);
      heatToggle.disabled = true;
      heatToggle.title = "No heat map for this prediction";
      heatGroup.classList.add("unavailable");
    });
    applyHeat();
  }

  // --- keys -----------------------------------------------------------------------------------
  const typing = window.medalTyping;   // keys.js
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const act = {
      h: () => heat && showHeat(heat.hidden),
      i: () => setInverted(!inverted),
      r: reset,
      "+": () => panzoom.zoomIn(), "=": () => panzoom.zoomIn(),
      "-": () => panzoom.zoomOut(), _: () => panzoom.zoomOut(),
    }[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    if (act) { event.preventDefault(); act(); }
  });

  applyFilter();
})();
