// The book's live demo: camera or file -> BlazeFace (short range) -> the gray square crop of the chosen
// emotion model's crop spec (crop.js, as the book's Python code cuts it) -> that model (the book's default or
// the peer, listed in models.json with their specs; or the reader's own), which resizes the crop itself ->
// class probabilities. Every model runs in LiteRT.js (WebAssembly) from this folder; no frame, crop or result
// leaves the browser. State for tests and curious readers is on `window.ferDemo`.
import {loadLiteRt, loadAndCompile, Tensor} from './litert/index.js';
import {frameCrop} from './crop.js';
import {meanProbabilities, ttaViews} from './tta.js';

const here = (name) => new URL(name, import.meta.url).href;
const DETECTOR_SIZE = 128;          // BlazeFace short range takes 128x128 RGB in [-1, 1]
const MIN_SCORE = 0.5;              // MediaPipe's default minimum detection confidence
const $ = (id) => document.getElementById(id);
const state = window.ferDemo = {ready: false, error: null, frames: 0, lastBox: null, lastCrop: null,
  lastProbs: null, lastLabel: null, lastModel: null, timings: [], classes: [], inputShape: null, source: null,
  models: {}, active: null, info: null, opens: null, why: null};

// SSD anchors of BlazeFace short range: strides 8 (2 anchors per cell) and 16 (6 per cell), centres only.
function anchors() {
  const out = [];
  for (const [stride, perCell] of [[8, 2], [16, 6]]) {
    const cells = DETECTOR_SIZE / stride;
    for (let y = 0; y < cells; y++) for (let x = 0; x < cells; x++) {
      for (let k = 0; k < perCell; k++) out.push([(x + 0.5) / cells, (y + 0.5) / cells]);
    }
  }
  return out;
}
const ANCHORS = anchors();

function tensorData(tensor) {
  const data = tensor.toTypedArray();
  return Float32Array.from(data);
}

// The best face as {x, y, w, h, score} in source pixels, or null.
async function detectFace(detector, source, width, height) {
  const side = Math.max(width, height);
  const canvas = state.detCanvas ||= Object.assign(document.createElement('canvas'), {width: DETECTOR_SIZE, height: DETECTOR_SIZE});
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, DETECTOR_SIZE, DETECTOR_SIZE);
  const scale = DETECTOR_SIZE / side;  // letterbox: keep the aspect ratio, pad right/bottom
  ctx.drawImage(source, 0, 0, width * scale, height * scale);
  const rgba = ctx.getImageData(0, 0, DETECTOR_SIZE, DETECTOR_SIZE).data;
  const input = new Float32Array(DETECTOR_SIZE * DETECTOR_SIZE * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4) {
    input[j++] = rgba[i] / 127.5 - 1; input[j++] = rgba[i + 1] / 127.5 - 1; input[j++] = rgba[i + 2] / 127.5 - 1;
  }
  const tensor = new Tensor(input, [1, DETECTOR_SIZE, DETECTOR_SIZE, 3]);
  const outputs = await detector.run(tensor);
  tensor.delete();
  const byName = Object.fromEntries(detector.getOutputDetails().map((d, i) => [d.name, outputs[i]]));
  const boxes = tensorData(byName.regressors || outputs[0]);
  const scores = tensorData(byName.classificators || outputs[1]);
  outputs.forEach((t) => t.delete());
  let best = -1;
  for (let i = 0; i < ANCHORS.length; i++) if (best < 0 || scores[i] > scores[best]) best = i;
  const score = 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, scores[best]))));
  if (score < MIN_SCORE) return null;
  const r = boxes.subarray(best * 16, best * 16 + 4);
  const cx = r[0] / DETECTOR_SIZE + ANCHORS[best][0], cy = r[1] / DETECTOR_SIZE + ANCHORS[best][1];
  const w = r[2] / DETECTOR_SIZE, h = r[3] / DETECTOR_SIZE;
  return {x: (cx - w / 2) * side, y: (cy - h / 2) * side, w: w * side, h: h * side, score};
}

// Probabilities of `model` for raw 0..255 gray pixels. A quantized model (int8 mode: uint8 in and out)
// gets its pixels quantized and its output dequantized with the [scale, zero point] its JSON records
// (read from the .tflite when the book exported it, as fer_utils.deploy.tflite.tflite_predict uses them);
// without a JSON (a reader's own file), raw pixels in and TFLite's softmax convention, scale 1/256, out.
async function classifyView(model, info, gray) {
  const detail = model.getInputDetails()[0];
  const [, height, width] = detail.shape;
  let data;
  if (detail.dtype === 'uint8') {
    const [scale, zero] = info.input_quantization || [1, 0];
    data = Uint8Array.from(gray, (v) => Math.min(255, Math.max(0, Math.round(v / scale + zero))));
  } else {
    data = Float32Array.from(gray);
  }
  const tensor = new Tensor(data, [1, height, width, 1]);
  const outputs = await model.run(tensor);
  tensor.delete();
  const raw = outputs[0].toTypedArray();
  const out = model.getOutputDetails()[0].dtype;
  const [scale, zero] = info.output_quantization || [1 / 256, 0];
  const probs = out === 'float32' ? Array.from(raw) : Array.from(raw, (v) => (v - zero) * scale);
  outputs.forEach((t) => t.delete());
  return probs;
}

// Probabilities of `model` for a crop, averaged over the views of the test-time augmentation its JSON names
// (`tta`, written by `python -m fer_utils export --tta`; tta.js makes the views as fer_utils.evaluate.metrics does).
async function classify(model, info, gray) {
  const [, height, width] = model.getInputDetails()[0].shape;
  const perView = [];
  for (const view of ttaViews(gray, height, width, info.tta || 'none')) perView.push(await classifyView(model, info, view));
  return perView.length === 1 ? perView[0] : meanProbabilities(perView);
}

function draw(source, width, height, box, label) {
  const canvas = $('fer-demo-view');
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(source, 0, 0, width, height);
  if (!box) return;
  ctx.lineWidth = Math.max(2, width / 200);
  ctx.strokeStyle = '#F9AB00';
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.font = `${Math.max(14, Math.round(width / 30))}px sans-serif`;
  ctx.fillStyle = '#F9AB00';
  ctx.fillText(label, box.x, Math.max(16, box.y - 6));
}

// Reader- and model-supplied text (class names, trained_on, licence, file names) goes into the page as
// text nodes, never as HTML: a class named `<img onerror=...>` must show literally, not run.
function element(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function showProbabilities(probs) {
  const rows = state.classes.map((name, i) => [name, probs[i]]).sort((a, b) => b[1] - a[1]);
  $('fer-demo-probs').replaceChildren(...rows.map(([name, p]) => {
    const bar = element('span', {className: 'fer-bar'});
    bar.style.width = `${(p * 100).toFixed(1)}%`;
    return element('div', {className: 'fer-row'}, [
      element('span', {className: 'fer-name', textContent: String(name)}), bar,
      element('span', {className: 'fer-value', textContent: `${(p * 100).toFixed(1)} %`})]);
  }));
}

async function processFrame(source, width, height) {
  const start = performance.now();
  const box = await detectFace(state.detector, source, width, height);
  const detected = performance.now();
  let label = '';
  const slot = state.active;
  const spec = state.info.crop;
  state.cropCanvas ||= document.createElement('canvas');
  const gray = box && frameCrop(source, width, height, box, spec, state.cropCanvas);
  if (gray) {
    const [h, w] = [spec.side, spec.side];
    const probs = await classify(state.model, state.info, gray);
    const best = probs.indexOf(Math.max(...probs));
    label = `${state.classes[best] ?? 'class ' + best} ${(probs[best] * 100).toFixed(0)} %`;
    Object.assign(state, {lastBox: box, lastCrop: Array.from(gray), lastCropShape: [h, w], lastProbs: probs,
      lastLabel: state.classes[best], lastModel: slot});
    showProbabilities(probs);
  }
  const end = performance.now();
  state.frames += 1;
  state.timings.push({detect: detected - start, emotion: end - detected, total: end - start, face: !!gray, model: slot});
  if (state.timings.length > 300) state.timings.shift();
  draw(source, width, height, gray && box, label);
  $('fer-demo-status').textContent = gray
    ? `face found; detection ${(detected - start).toFixed(1)} ms, emotion ${(end - detected).toFixed(1)} ms`
    : 'no face found in this frame';
}

function runVideo(video) {
  state.source = video;
  const step = async () => {
    if (state.source !== video) return;
    if (video.readyState >= 2 && video.videoWidth) {
      try { await processFrame(video, video.videoWidth, video.videoHeight); } catch (e) { fail(e); return; }
    }
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(step); else requestAnimationFrame(step);
  };
  step();
}

async function useCamera() {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
  const video = $('fer-demo-video');
  video.srcObject = stream;
  await video.play();
  runVideo(video);
}

async function useFile(file) {
  const url = URL.createObjectURL(file);
  if (file.type.startsWith('image/')) {
    const image = new Image();
    image.src = url;
    await image.decode();
    state.source = image;
    await processFrame(image, image.naturalWidth, image.naturalHeight);
  } else {
    const video = $('fer-demo-video');
    video.srcObject = null;
    video.src = url;
    video.loop = true;
    await video.play();
    runVideo(video);
  }
}

// A reader's own .tflite: classes from a sidecar JSON ({"classes": [...]} or [...]) or a comma list.
async function useOwnModel() {
  const file = $('fer-demo-model-file').files[0];
  if (!file) throw new Error('choose a .tflite file first');
  const model = await loadAndCompile(new Uint8Array(await file.arrayBuffer()), {accelerator: 'wasm'});
  const shape = Array.from(model.getInputDetails()[0].shape);
  if (shape.length !== 4 || shape[0] !== 1 || shape[3] !== 1) {
    throw new Error(`the model takes [${shape}]; the demo feeds one gray crop [1, H, W, 1] (a dynamic batch -1 ` +
      'cannot run in LiteRT.js: export a run with python -m fer_utils export --run RUN)');
  }
  let classes = $('fer-demo-classes').value.split(',').map((s) => s.trim()).filter(Boolean);
  // Its crop: the sidecar's spec ({"classes": [...], "crop": {...}}, as the book's crop_spec.json holds it),
  // else the book's model's spec at the side this model takes.
  let crop = {...state.models.default.info.crop, side: shape[1]};
  // `python -m fer_utils export` writes the sidecar with the int8 tensors' [scale, zero point] too.
  let quantization = {};
  const sidecar = $('fer-demo-sidecar').files[0];
  if (sidecar) {
    const parsed = JSON.parse(await sidecar.text());
    classes = Array.isArray(parsed) ? parsed : parsed.classes;
    if (!Array.isArray(parsed) && parsed.crop) crop = parsed.crop;
    if (!Array.isArray(parsed)) {
      quantization = {input_quantization: parsed.input_quantization, output_quantization: parsed.output_quantization,
        tta: parsed.tta || 'none'};
    }
  }
  const outputs = Array.from(model.getOutputDetails()[0].shape).at(-1);
  if (classes.length !== outputs) throw new Error(`the model has ${outputs} outputs but ${classes.length} class names were given`);
  if (crop.side !== shape[1] || crop.side !== shape[2]) {
    throw new Error(`the model takes ${shape[1]}x${shape[2]} crops but its crop spec cuts ${crop.side}x${crop.side}`);
  }
  state.error = null;
  addModel('own', model, {name: `your model (${file.name})`, classes, input_shape: shape.slice(1), crop,
    trained_on: `your own model (${file.name})`, accuracy: null, chance: 1 / classes.length, ...quantization});
  await activate('own');
}

// One model of the page's switch: kept on state.models[slot], offered in the select by its name.
function addModel(slot, model, info) {
  state.models[slot] = {model, info};
  const select = $('fer-demo-choice');
  if (!select) return;
  const option = [...select.options].find((o) => o.value === slot) || select.appendChild(element('option', {value: slot}));
  option.textContent = String(info.name || slot);  // text, not HTML
}

// Make `slot` the model every next frame goes through (a still image is predicted again at once).
async function activate(slot) {
  const {model, info} = state.models[slot];
  Object.assign(state, {active: slot, model, info, classes: info.classes, inputShape: info.input_shape});
  if ($('fer-demo-choice')) $('fer-demo-choice').value = slot;
  describe(info);
  if (state.source instanceof HTMLImageElement) {
    await processFrame(state.source, state.source.naturalWidth, state.source.naturalHeight);
  }
}

const fraction = (value) => value.toFixed(2);
const spread = (mean, std) => (std == null ? fraction(mean) : `${fraction(mean)} ± ${fraction(std)}`);

// "0.50 ± 0.08, the mean over 3 seeds (macro F1 0.17 ± 0.02), on <evaluated_on>"; one fixed network (the
// peer) has a single value and no spread. Fractions, as the model JSON keeps them.
function scoresText(info) {
  if (info.accuracy == null) return 'not measured on real faces';
  let text = spread(info.accuracy, info.accuracy_std);
  if (info.seeds != null && info.seeds > 1) text += `, the mean over ${info.seeds} seeds`;
  else if (info.seeds === 1) text += ', one seed';
  if (info.macro_f1 != null) text += ` (macro F1 ${spread(info.macro_f1, info.macro_f1_std)})`;
  if (info.evaluated_on) text += `, on ${info.evaluated_on}`;
  return text;
}

// The bars a score must clear: always answering the commonest expression, and a guess.
function baselinesText(info, chance) {
  const guess = chance == null ? 'chance unknown' : `chance ${fraction(chance)} (${info.classes.length} classes)`;
  if (info.majority_baseline == null) return guess;
  return `always answering the commonest expression scores ${fraction(info.majority_baseline)}; ${guess}`;
}

// What the model learned from, its licence, its scores beside the baselines: every string a text node.
function describe(info) {
  const line = (label, text) => element('span', {className: `fer-about fer-about-${label.toLowerCase().split(' ')[0]}`},
    [element('b', {textContent: `${label}:`}), ` ${text}. `]);
  const chance = info.chance ?? (info.classes.length ? 1 / info.classes.length : null);
  const parts = [line('Model', info.name || 'model')];
  if (info.card) parts.push(line('Card', info.card));
  parts.push(line('Learned from', info.trained_on ?? 'not recorded'),
    line('Licence', info.license ?? 'not recorded'), line('Accuracy', scoresText(info)),
    line('Baselines', baselinesText(info, chance)));
  if (info.chosen_on) parts.push(line('Published seed', info.chosen_on));
  parts.push(line('Classes', info.classes.join(', ')),
    line('Input', `${info.input_shape.join('×')} gray${info.tflite === 'int8' ? ', int8' : ''}, the face box ` +
      `with a margin of ${Math.round(info.crop.margin * 100)} % of its side` +
      (info.tta && info.tta !== 'none' ? `, test-time augmentation ${info.tta}` : '')));
  $('fer-demo-model').replaceChildren(...parts);  // strings become text nodes
}

function fail(error) {
  state.error = String(error && error.message || error);
  $('fer-demo-status').textContent = `error: ${state.error}`;
  console.warn('fer demo:', state.error);
}

// LiteRT's WebAssembly prints its start-up log (INFO lines, "NPU accelerator could not be loaded")
// on stderr, which emscripten sends to console.error; keep it on window.ferDemo.runtimeLog instead.
// Real failures still reach the page as exceptions from loadAndCompile / run.
state.runtimeLog = [];
self.Module = {printErr: (line) => { state.runtimeLog.push(line); console.debug(line); }};

// Probabilities of the page's model `slot` for raw 0..255 gray pixels of its input size, exactly as a
// camera frame's crop goes through it (for tests and curious readers: window.ferDemo.predict).
state.predict = (slot, pixels) => classify(state.models[slot].model, state.models[slot].info, Uint8Array.from(pixels));

async function main() {
  // models.json: {opens, why, models: [{slot, model, info}]}: `opens` is the book's model (fer_book.demo_page.OPENS).
  const index = await (await fetch(here('models.json'))).json();
  await loadLiteRt(here('litert/wasm/'));
  state.detector = await loadAndCompile(here('face_detection_short_range.tflite'), {accelerator: 'wasm'});
  for (const entry of index.models) {
    const info = await (await fetch(here(entry.info))).json();
    addModel(entry.slot, await loadAndCompile(here(entry.model), {accelerator: 'wasm'}), {...info, crop: entry.crop});
  }
  Object.assign(state, {opens: index.opens, why: index.why});
  if ($('fer-demo-opens')) $('fer-demo-opens').textContent = index.why ? `The page ${index.why}.` : '';
  await activate(index.opens in state.models ? index.opens : index.models[0].slot);
  if ($('fer-demo-choice')) $('fer-demo-choice').onchange = (e) => activate(e.target.value).catch(fail);
  $('fer-demo-camera').onclick = () => useCamera().catch(fail);
  $('fer-demo-file').onchange = (e) => e.target.files[0] && useFile(e.target.files[0]).catch(fail);
  $('fer-demo-load-model').onclick = () => useOwnModel().catch(fail);
  state.ready = true;
  $('fer-demo-status').textContent = 'ready: start the camera or choose an image or a video';
  if (new URLSearchParams(location.search).has('camera')) useCamera().catch(fail);
}

// Opened from disk (file://) the page cannot fetch its runtime and models (a browser that loads this module
// there still refuses those requests): from_disk.js has already said how to serve it, so leave its text.
if (location.protocol === 'file:') state.error = 'opened from disk (file://): serve the page over HTTP';
else main().catch(fail);
