// digitrec web page: a drawing pad with live prediction (/v1/predict) and photo reading (/v1/read).
// The drawing is sent as a PNG, so the server preprocesses it exactly like a photo.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const bars = [];
let drawing = false, hasInk = false, last = null, timer = null, seq = 0, inflight = null;

// ---- probability bars -------------------------------------------------------------------------------
for (let d = 0; d < 10; d++) {
  const li = document.createElement("li");
  li.innerHTML = `<span>${d}</span><div class="track"><div class="fill"></div></div><span class="pct"></span>`;
  $("bars").appendChild(li);
  bars.push(li);
}

function showPrediction(p) {
  if (p.digit === null) {  // the server found no ink: no digit, rather than a guess
    resetPrediction();
    $("confidence").textContent = "no digit found";
    return;
  }
  $("digit").textContent = String(p.digit);
  $("confidence").textContent = `${(100 * p.confidence).toFixed(1)}% sure`;
  $("seen").src = "data:image/png;base64," + p.crop;
  $("seen").hidden = false;
  p.probabilities.forEach((v, d) => {
    bars[d].classList.toggle("top", d === p.digit);
    bars[d].querySelector(".fill").style.width = `${(100 * v).toFixed(1)}%`;
    bars[d].querySelector(".pct").textContent = `${(100 * v).toFixed(1)}%`;
  });
}

function resetPrediction() {
  $("digit").textContent = "–";
  $("confidence").innerHTML = "&nbsp;";
  $("seen").hidden = true;
  bars.forEach((li) => {
    li.classList.remove("top");
    li.querySelector(".fill").style.width = "0";
    li.querySelector(".pct").textContent = "";
  });
}

// ---- drawing (pointer events: mouse, pen and touch alike) -------------------------------------------
function clearPad() {
  ctx.fillStyle = "#fff";  // paper: dark ink on white, like a photo of a digit
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  seq++;  // answers to earlier drawings are stale now
  if (inflight) inflight.abort();
  clearTimeout(timer);
  timer = null;
  $("pad-hint").hidden = false;
  $("status").textContent = "";
  resetPrediction();
}

function point(e) {
  const r = pad.getBoundingClientRect();  // the canvas may be scaled by CSS
  return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
}

function stroke(a, b) {
  ctx.strokeStyle = "#111";
  ctx.lineWidth = 18;  // about MNIST's stroke width relative to the digit once scaled to 20 px
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  drawing = true;
  last = point(e);
  stroke(last, last);  // a tap leaves a dot
  hasInk = true;
  $("pad-hint").hidden = true;
  schedule(150);
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  stroke(last, p);
  last = p;
  if (!timer) schedule(150);  // live prediction while drawing: at most one request per 150 ms
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    schedule(0);
  });
}
$("clear").addEventListener("click", clearPad);

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(predictDrawing, ms);
}

async function predictDrawing() {
  timer = null;
  if (!hasInk) return;
  const mine = ++seq;
  const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  if (mine !== seq) return;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const form = new FormData();
  form.append("file", blob, "drawing.png");
  try {
    const res = await fetch("/v1/predict", { method: "POST", body: form, signal: inflight.signal });
    const body = await res.json();
    if (mine !== seq) return;  // a newer drawing has been sent since
    if (!res.ok) throw new Error(body.error || res.statusText);
    showPrediction(body);
    $("status").textContent = "";
  } catch (err) {
    if (err.name !== "AbortError" && mine === seq) $("status").textContent = "error: " + err.message;
  }
}

// ---- photo reading ----------------------------------------------------------------------------------
async function readPhoto(file) {
  if (!file) return;
  $("read-error").hidden = true;
  $("reading").hidden = true;
  $("read-text").textContent = "";
  const preview = $("photo-preview");
  $("photo-wrap").querySelectorAll(".box").forEach((b) => b.remove());
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  const form = new FormData();
  form.append("file", file, file.name || "photo");
  try {
    const res = await fetch("/v1/read", { method: "POST", body: form });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    $("read-text").textContent = body.text || "(no digits found)";
    const box = $("read-digits");
    box.replaceChildren();
    body.digits.forEach((d, i) => {
      const el = document.createElement("div");
      el.className = "digit" + (d.doubtful ? " doubtful" : "");
      el.title = d.doubtful ? "low confidence" : "";
      const img = document.createElement("img");
      img.src = "data:image/png;base64," + body.crops[i];
      img.alt = `crop ${i + 1}: the 28×28 image the model saw`;
      const label = document.createElement("div");
      label.innerHTML = `<b>${d.digit}</b> ${(100 * d.confidence).toFixed(0)}%`;
      el.append(img, label);
      box.appendChild(el);
    });
    $("reading").hidden = false;
    await preview.decode().catch(() => {});
    drawBoxes(body.digits);
  } catch (err) {
    $("read-error").textContent = "Could not read this image: " + err.message;
    $("read-error").hidden = false;
  }
}

// Boxes come in the photo's own pixels (EXIF-rotated, as the browser shows it); scale them to the preview.
function drawBoxes(digits) {
  const img = $("photo-preview");
  const wrap = $("photo-wrap");
  wrap.querySelectorAll(".box").forEach((b) => b.remove());
  if (!img.naturalWidth) return;
  const s = img.clientWidth / img.naturalWidth;
  const border = img.clientLeft;  // the preview's own border
  digits.forEach((d) => {
    const [x, y, w, h] = d.box;
    const el = document.createElement("div");
    el.className = "box" + (d.doubtful ? " doubtful" : "");
    Object.assign(el.style, { left: `${border + x * s}px`, top: `${border + y * s}px`,
                              width: `${w * s}px`, height: `${h * s}px` });
    const tag = document.createElement("span");
    tag.textContent = String(d.digit);
    el.appendChild(tag);
    wrap.appendChild(el);
  });
}

$("photo").addEventListener("change", (e) => readPhoto(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  readPhoto(e.dataTransfer.files[0]);
});

clearPad();
