// convzoo web page: classify a drawing or an image with the exported int8 .tflite in
// LiteRT.js (WASM on CPU), and show the feature maps, receptive fields and conv1 filters.
// Everything the page needs is in its folder (metadata.json, the model files, vendor/).
import {loadAndCompile, loadLiteRt, Tensor} from './vendor/litert/core.js';

const $ = (id) => document.getElementById(id);

/** An error meant for the person using the page: shown as a message, never thrown on. */
class UserError extends Error {}

// LiteRT's native logs arrive on Emscripten's stderr; INFO/WARNING lines are not errors.
self.Module = {
  print: (text) => console.log(text),
  printErr: (text) => {
    if (/^(INFO|VERBOSE|DEBUG)\b/.test(text)) console.debug(text);
    else if (/^WARNING\b/.test(text)) console.warn(text);
    else console.error(text);
  },
};

const state = {
  meta: null,
  model: null,
  maps: null,
  input: null, // {pixels: Float32Array, rgba: Uint8ClampedArray}
  featureMaps: null, // {layer name: Float32Array}
  hover: null, // {layer, i, j}
};

function showMessage(text) {
  const box = $('message');
  box.textContent = text;
  box.hidden = !text;
}

function describe(error) {
  return error instanceof UserError ? error.message : `${error.name || 'Error'}: ${error.message || error}`;
}

window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  showMessage(`Something went wrong: ${describe(event.reason)}`);
});

// ---------------------------------------------------------------- loading

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new UserError(`${what} (${url}) could not be fetched: ${error.message}`);
  }
  if (!response.ok) {
    throw new UserError(`${what} (${url}) could not be loaded: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function loadModel(url, what) {
  const bytes = await fetchBytes(url, what);
  // A .tflite flatbuffer carries the identifier "TFL3" at bytes 4..7.
  const magic = String.fromCharCode(...bytes.subarray(4, 8));
  if (bytes.length < 8 || magic !== 'TFL3') {
    throw new UserError(`${what} (${url}) is not a TFLite model file (${bytes.length} bytes, no TFL3 header).`);
  }
  try {
    return await loadAndCompile(bytes, {accelerator: 'wasm'});
  } catch (error) {
    throw new UserError(`${what} (${url}) could not be loaded by LiteRT.js: ${error.message || error}`);
  }
}

async function init() {
  let meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(await fetchBytes('metadata.json', 'The metadata')));
  } catch (error) {
    throw new UserError(error instanceof UserError ? error.message : `metadata.json is not valid JSON: ${error.message}`);
  }
  state.meta = meta;
  setUpPage(meta);
  try {
    await loadLiteRt('./vendor/litert/wasm/');
  } catch (error) {
    throw new UserError(`LiteRT.js could not start its WebAssembly runtime: ${error.message || error}`);
  }
  state.model = await loadModel(meta.web.model_file, 'The model file');
  try {
    state.maps = await loadModel(meta.web.feature_maps_file, 'The feature-map model');
  } catch (error) {
    showMessage(`${describe(error)} The classifier still works; feature maps are off.`);
  }
  const micros = await benchmark(10, 20);
  $('subtitle').textContent = `${meta.model} trained on ${meta.dataset}, int8, in your browser with ` +
    `${meta.web.runtime}: ${fmtMicros(micros)} per inference (median).`;
  return true;
}

// ---------------------------------------------------------------- preprocessing

function inputShape() {
  const [height, width] = state.meta.web.preprocessing.size;
  return {height, width, channels: state.meta.web.preprocessing.channels};
}

/** Decodes an image Blob into an <img>; rejects non-images and images over the size limit. */
async function decodeImage(blob, name) {
  if (blob.type && !blob.type.startsWith('image/')) {
    throw new UserError(`"${name}" is not an image (${blob.type}). Pick a PNG, JPEG, GIF or WebP file.`);
  }
  const url = URL.createObjectURL(blob);
  const image = new Image();
  try {
    image.src = url;
    await new Promise((resolve, reject) => {
      image.onload = resolve;
      image.onerror = () => reject(new UserError(`"${name}" could not be read as an image.`));
    });
  } catch (error) {
    URL.revokeObjectURL(url);
    throw error;
  }
  const megapixels = (image.naturalWidth * image.naturalHeight) / 1e6;
  const limit = state.meta.web.preprocessing.max_megapixels;
  if (megapixels > limit) {
    URL.revokeObjectURL(url);
    throw new UserError(`"${name}" is ${image.naturalWidth} x ${image.naturalHeight} ` +
      `(${megapixels.toFixed(1)} megapixels); the page takes images up to ${limit} megapixels.`);
  }
  image.dataset.objectUrl = url;
  return image;
}

function context2d(width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas.getContext('2d', {willReadFrequently: true});
}

/** Mean colour [r, g, b] of the one-pixel border of `source` seen through a 32x32 thumbnail. */
function borderColour(source, width, height) {
  const ctx = context2d(32, 32);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, 32, 32);
  ctx.drawImage(source, 0, 0, width, height, 0, 0, 32, 32);
  const data = ctx.getImageData(0, 0, 32, 32).data;
  const sum = [0, 0, 0];
  let count = 0;
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      if (y !== 0 && y !== 31 && x !== 0 && x !== 31) continue;
      const k = 4 * (y * 32 + x);
      sum[0] += data[k]; sum[1] += data[k + 1]; sum[2] += data[k + 2];
      count++;
    }
  }
  return sum.map((v) => Math.round(v / count));
}

function luma([r, g, b]) {
  return Math.round((299 * r + 587 * g + 114 * b) / 1000);
}

/**
 * The model input for an image, following metadata.json's preprocessing: fit inside the
 * input size (aspect kept) on the border colour, grayscale (ITU-R 601 luma, rounded) for one
 * channel, raw pixels in [0, 255], inverted when asked.
 */
function preprocess(source, width, height, invert) {
  const shape = inputShape();
  const ctx = context2d(shape.width, shape.height);
  if (width === shape.width && height === shape.height) {
    ctx.drawImage(source, 0, 0);
  } else {
    const [r, g, b] = borderColour(source, width, height);
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(0, 0, shape.width, shape.height);
    const scale = Math.min(shape.width / width, shape.height / height);
    const w = width * scale;
    const h = height * scale;
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(source, (shape.width - w) / 2, (shape.height - h) / 2, w, h);
  }
  const data = ctx.getImageData(0, 0, shape.width, shape.height).data;
  const count = shape.width * shape.height;
  const pixels = new Float32Array(count * shape.channels);
  const rgba = new Uint8ClampedArray(count * 4);
  for (let i = 0; i < count; i++) {
    const rgb = [data[4 * i], data[4 * i + 1], data[4 * i + 2]];
    const values = shape.channels === 1 ? [luma(rgb)] : rgb;
    for (let c = 0; c < shape.channels; c++) {
      pixels[i * shape.channels + c] = invert ? 255 - values[c] : values[c];
    }
    for (let c = 0; c < 3; c++) rgba[4 * i + c] = pixels[i * shape.channels + (shape.channels === 1 ? 0 : c)];
    rgba[4 * i + 3] = 255;
  }
  return {pixels, rgba};
}

/** Whether a picked image should be inverted to look like the data set (auto mode). */
function autoInvert(source, width, height) {
  const pre = state.meta.web.preprocessing;
  if (!pre.invert_uploaded) return false;
  return luma(borderColour(source, width, height)) > 127.5;
}

// ---------------------------------------------------------------- running

async function runClassifier(pixels) {
  const shape = inputShape();
  const input = new Tensor(pixels.slice(), [1, shape.height, shape.width, shape.channels]);
  let outputs;
  const start = performance.now();
  try {
    outputs = await state.model.run(input);
  } finally {
    input.delete();
  }
  const logits = Float32Array.from(outputs[0].toTypedArray());
  const ms = performance.now() - start;
  outputs.forEach((tensor) => tensor.delete());
  return {logits, ms};
}

async function runFeatureMaps(pixels) {
  if (!state.maps) return null;
  const shape = inputShape();
  const input = new Tensor(pixels.slice(), [1, shape.height, shape.width, shape.channels]);
  let outputs;
  try {
    outputs = await state.maps.run({input});
  } finally {
    input.delete();
  }
  const maps = {};
  for (const [name, tensor] of Object.entries(outputs)) {
    maps[name] = Float32Array.from(tensor.toTypedArray());
    tensor.delete();
  }
  return maps;
}

/** Median over `rounds` of the mean time of `runs` back-to-back inferences, in microseconds
 * (the browser's clock is coarse, ~0.1 ms, so single runs are timed in groups). */
async function benchmark(rounds, runs) {
  const shape = inputShape();
  const pixels = state.input ? state.input.pixels : new Float32Array(shape.height * shape.width * shape.channels);
  const input = new Tensor(pixels.slice(), [1, shape.height, shape.width, shape.channels]);
  const times = [];
  try {
    for (let warm = 0; warm < 5; warm++) (await state.model.run(input)).forEach((t) => t.delete());
    for (let r = 0; r < rounds; r++) {
      const start = performance.now();
      for (let k = 0; k < runs; k++) {
        const outputs = await state.model.run(input);
        outputs[0].toTypedArray();
        outputs.forEach((t) => t.delete());
      }
      times.push(((performance.now() - start) * 1000) / runs);
    }
  } finally {
    input.delete();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

function fmtMicros(micros) {
  return micros >= 1000 ? `${(micros / 1000).toFixed(2)} ms` : `${micros.toFixed(0)} µs`;
}

/** Classifies a preprocessed input and updates every view of the page. */
async function show(input, caption) {
  state.input = input;
  const {logits, ms} = await runClassifier(input.pixels);
  state.featureMaps = await runFeatureMaps(input.pixels);
  drawSeen();
  drawBars(logits, ms);
  drawMaps();
  $('seen-caption').textContent = caption;
  return {logits, ms};
}

// ---------------------------------------------------------------- drawing the page

function drawSeen() {
  const canvas = $('seen');
  const ctx = canvas.getContext('2d');
  const shape = inputShape();
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.input) return;
  const small = context2d(shape.width, shape.height);
  small.putImageData(new ImageData(state.input.rgba, shape.width, shape.height), 0, 0);
  ctx.drawImage(small.canvas, 0, 0, canvas.width, canvas.height);
  const hover = state.hover;
  const layer = hover && state.meta.web.layers.find((l) => l.name === hover.layer);
  if (!layer || !layer.receptive_field) return;
  const rf = layer.receptive_field;
  const sy = canvas.height / shape.height;
  const sx = canvas.width / shape.width;
  const centre = [rf.start[0] + hover.i * rf.jump[0], rf.start[1] + hover.j * rf.jump[1]];
  const top = centre[0] - (rf.size[0] - 1) / 2;
  const left = centre[1] - (rf.size[1] - 1) / 2;
  ctx.fillStyle = 'rgba(255, 196, 0, 0.25)';
  ctx.strokeStyle = '#ffc400';
  ctx.lineWidth = 2;
  ctx.fillRect(left * sx, top * sy, rf.size[1] * sx, rf.size[0] * sy);
  ctx.strokeRect(left * sx, top * sy, rf.size[1] * sx, rf.size[0] * sy);
}

function drawBars(logits, ms) {
  const names = state.meta.class_names || logits.map((_, i) => String(i));
  const probs = softmax(logits);
  const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
  const bars = $('bars');
  bars.replaceChildren();
  order.forEach(([p, i], rank) => {
    const row = document.createElement('div');
    row.className = rank === 0 ? 'bar first' : 'bar';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = names[i] ?? String(i);
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.display = 'block';
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = `${(100 * p).toFixed(1)} %`;
    row.append(label, track, value);
    bars.append(row);
  });
  $('timing').textContent = `This inference: ${ms.toFixed(2)} ms in the browser ` +
    '(LiteRT.js, WASM; the clock has ~0.1 ms resolution).';
}

// A perceptual colour ramp (dark blue -> teal -> yellow) for feature maps.
const RAMP = [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104],
  [244, 136, 73], [254, 188, 43], [240, 249, 33]];

function ramp(t) {
  const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const k = Math.min(Math.floor(x), RAMP.length - 2);
  const f = x - k;
  return RAMP[k].map((v, c) => Math.round(v + f * (RAMP[k + 1][c] - v)));
}

function drawMaps() {
  const box = $('maps');
  box.replaceChildren();
  if (!state.featureMaps) {
    box.textContent = 'No feature maps (the feature-map model did not load).';
    return;
  }
  for (const layer of state.meta.web.layers) {
    const values = state.featureMaps[layer.name];
    if (!values) continue;
    const [h, w, c] = layer.shape;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const section = document.createElement('div');
    section.className = 'layer';
    const title = document.createElement('h3');
    const rf = layer.receptive_field;
    title.textContent = `${layer.name} (${layer.kind}): ${c} maps of ${h} x ${w}` +
      (rf ? `, each unit sees ${rf.size[0]} x ${rf.size[1]} input pixels (jump ${rf.jump[0]})` : '');
    const grid = document.createElement('div');
    grid.className = 'grid';
    const zoom = Math.max(1, Math.floor(84 / Math.max(h, w)));
    for (let k = 0; k < c; k++) {
      const canvas = document.createElement('canvas');
      canvas.width = w;
      canvas.height = h;
      canvas.style.width = `${w * zoom}px`;
      canvas.style.height = `${h * zoom}px`;
      canvas.title = `${layer.name} channel ${k}`;
      const ctx = canvas.getContext('2d');
      const image = ctx.createImageData(w, h);
      for (let i = 0; i < h * w; i++) {
        const [r, g, b] = ramp((values[i * c + k] - lo) / (hi - lo || 1));
        image.data.set([r, g, b, 255], 4 * i);
      }
      ctx.putImageData(image, 0, 0);
      if (state.hover && state.hover.layer === layer.name && state.hover.k === k) {
        ctx.strokeStyle = '#00e5ff';
        ctx.lineWidth = 1;
        ctx.strokeRect(state.hover.j + 0.5 - 0.5, state.hover.i, 1, 1);
      }
      canvas.addEventListener('mousemove', (event) => onHover(event, canvas, layer, k, values));
      canvas.addEventListener('mouseleave', () => { state.hover = null; drawSeen(); });
      grid.append(canvas);
    }
    section.append(title, grid);
    box.append(section);
  }
}

function onHover(event, canvas, layer, k, values) {
  const [h, w, c] = layer.shape;
  const rect = canvas.getBoundingClientRect();
  const i = Math.min(h - 1, Math.max(0, Math.floor(((event.clientY - rect.top) / rect.height) * h)));
  const j = Math.min(w - 1, Math.max(0, Math.floor(((event.clientX - rect.left) / rect.width) * w)));
  state.hover = {layer: layer.name, i, j, k};
  drawSeen();
  const rf = layer.receptive_field;
  const value = values[(i * w + j) * c + k];
  let text = `${layer.name}, map ${k}, unit (${i}, ${j}): value ${value.toFixed(3)}`;
  if (rf) {
    const top = rf.start[0] + i * rf.jump[0] - (rf.size[0] - 1) / 2;
    const left = rf.start[1] + j * rf.jump[1] - (rf.size[1] - 1) / 2;
    text += `; receptive field ${rf.size[0]} x ${rf.size[1]} input pixels, rows ${top}` +
      `..${top + rf.size[0] - 1}, columns ${left}..${left + rf.size[1] - 1} (outside the image = padding)`;
  }
  $('rf-info').textContent = text;
}

function drawFilters(filters) {
  const box = $('filters');
  box.replaceChildren();
  if (!filters) {
    box.textContent = 'This model has no convolution.';
    return;
  }
  const [kh, kw, cin, count] = filters.shape;
  $('filters-hint').textContent = `${filters.layer}: ${count} filters of ${kh} x ${kw} x ${cin}; ` +
    'each slides over the input and makes one of its feature maps below. Blue: negative ' +
    'weights, red: positive, white: zero (each filter on its own scale).';
  for (let f = 0; f < count; f++) {
    const canvas = document.createElement('canvas');
    canvas.width = kw;
    canvas.height = kh;
    canvas.title = `${filters.layer} filter ${f}`;
    const ctx = canvas.getContext('2d');
    const image = ctx.createImageData(kw, kh);
    let scale = 0;
    for (let r = 0; r < kh; r++) {
      for (let q = 0; q < kw; q++) {
        for (let ci = 0; ci < cin; ci++) scale = Math.max(scale, Math.abs(filters.values[r][q][ci][f]));
      }
    }
    for (let r = 0; r < kh; r++) {
      for (let q = 0; q < kw; q++) {
        let rgb;
        if (cin === 3) {
          rgb = [0, 1, 2].map((ci) => 127.5 + (127.5 * filters.values[r][q][ci][f]) / (scale || 1));
        } else {
          let v = 0;
          for (let ci = 0; ci < cin; ci++) v += filters.values[r][q][ci][f];
          const t = v / cin / (scale || 1);
          rgb = t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
        }
        image.data.set([...rgb.map(Math.round), 255], 4 * (r * kw + q));
      }
    }
    ctx.putImageData(image, 0, 0);
    box.append(canvas);
  }
}

// ---------------------------------------------------------------- inputs

async function classifyImage(blob, name, {invert = 'auto', showResult = true} = {}) {
  const image = await decodeImage(blob, name);
  try {
    const width = image.naturalWidth;
    const height = image.naturalHeight;
    const flip = invert === 'auto' ? autoInvert(image, width, height) : Boolean(invert);
    $('invert').checked = flip;
    $('invert-hint').textContent = invert === 'auto' && flip ? '(auto: light background)' : '';
    const input = preprocess(image, width, height, flip);
    if (!showResult) return {input, ...(await runClassifier(input.pixels))};
    return {input, ...(await show(input, `${name} as the model sees it (${width} x ${height} -> ` +
      `${inputShape().width} x ${inputShape().height})`))};
  } finally {
    URL.revokeObjectURL(image.dataset.objectUrl);
  }
}

let lastFile = null;

async function onFile(file) {
  if (!file) return;
  lastFile = file;
  showMessage('');
  try {
    await classifyImage(file, file.name);
  } catch (error) {
    showMessage(describe(error));
  }
}

function setUpPad() {
  const pad = $('pad');
  const ctx = pad.getContext('2d', {willReadFrequently: true});
  const clear = () => {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, pad.width, pad.height);
  };
  clear();
  let drawing = false;
  let last = null;
  let pending = false;
  const classifyPad = async () => {
    if (pending) return;
    pending = true;
    try {
      const input = preprocess(pad, pad.width, pad.height, state.meta.web.preprocessing.invert_drawn);
      await show(input, 'your drawing as the model sees it');
      showMessage('');
    } catch (error) {
      showMessage(describe(error));
    } finally {
      pending = false;
    }
  };
  const point = (event) => {
    const rect = pad.getBoundingClientRect();
    return [((event.clientX - rect.left) * pad.width) / rect.width,
      ((event.clientY - rect.top) * pad.height) / rect.height];
  };
  pad.addEventListener('pointerdown', (event) => {
    drawing = true;
    last = point(event);
    pad.setPointerCapture(event.pointerId);
  });
  pad.addEventListener('pointermove', (event) => {
    if (!drawing) return;
    const next = point(event);
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 22;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...next);
    ctx.stroke();
    last = next;
    if (state.model) classifyPad();
  });
  const stop = () => {
    if (drawing && state.model) classifyPad();
    drawing = false;
  };
  pad.addEventListener('pointerup', stop);
  pad.addEventListener('pointercancel', stop);
  $('clear').addEventListener('click', clear);
}

function setUpPage(meta) {
  const shape = {height: meta.web.preprocessing.size[0], width: meta.web.preprocessing.size[1]};
  $('title').textContent = `convzoo: ${meta.model} on ${meta.dataset}`;
  const drawable = shape.height === 28 && shape.width === 28 && meta.web.preprocessing.channels === 1;
  $('draw-area').hidden = !drawable;
  setUpPad();
  const file = $('file');
  file.addEventListener('change', () => onFile(file.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    onFile(event.dataTransfer.files[0]);
  });
  $('invert').addEventListener('change', async () => {
    if (!lastFile) return;
    try {
      await classifyImage(lastFile, lastFile.name, {invert: $('invert').checked});
    } catch (error) {
      showMessage(describe(error));
    }
  });
  const samples = $('samples');
  for (const sample of meta.web.samples) {
    const button = document.createElement('button');
    button.type = 'button';
    button.title = sample.label;
    button.dataset.label = sample.label;
    const img = document.createElement('img');
    img.src = sample.file;
    img.alt = sample.label;
    button.append(img);
    button.addEventListener('click', async () => {
      try {
        const blob = new Blob([await fetchBytes(sample.file, 'The sample')], {type: 'image/png'});
        lastFile = new File([blob], `test image "${sample.label}"`, {type: 'image/png'});
        await classifyImage(lastFile, lastFile.name);
        showMessage('');
      } catch (error) {
        showMessage(describe(error));
      }
    });
    samples.append(button);
  }
  drawFilters(meta.web.filters);
  const pre = meta.web.preprocessing;
  $('footer').textContent = `Preprocessing (metadata.json): ${pre.size[0]} x ${pre.size[1]} x ` +
    `${pre.channels}, raw pixels in [${pre.range}], ${pre.background} background` +
    (pre.invert_drawn ? ', drawings inverted' : '') + `. Runtime: ${meta.web.runtime}.`;
}

// ---------------------------------------------------------------- test hooks

async function blobFromDataUrl(url) {
  return (await fetch(url)).blob();
}

const ready = init().then(
  () => true,
  (error) => {
    showMessage(describe(error));
    $('subtitle').textContent = 'The page could not start.';
    return false;
  },
);

window.convzoo = {
  ready,
  UserError,
  /** Classifies a PNG/JPEG data URL through the file path and shows it; the logits. */
  async classifyDataUrl(url, name = 'image') {
    const {input, logits, ms} = await classifyImage(await blobFromDataUrl(url), name);
    return {logits: Array.from(logits), ms, pixels: Array.from(input.pixels)};
  },
  /** Classifies many data URLs through the same path without redrawing; logits and times. */
  async classifyBatch(urls) {
    const results = [];
    for (const url of urls) {
      const {logits, ms} = await classifyImage(await blobFromDataUrl(url), 'image', {showResult: false});
      results.push({logits: Array.from(logits), ms});
    }
    return results;
  },
  /** The feature maps of the image last shown, as {layer name: flat NHWC array}. */
  featureMaps() {
    return Object.fromEntries(Object.entries(state.featureMaps || {}).map(([k, v]) => [k, Array.from(v)]));
  },
  /** Hovers unit (i, j) of map k of a layer, as the mouse does. */
  hover(layer, i, j, k = 0) {
    const entry = state.meta.web.layers.find((l) => l.name === layer);
    const canvas = [...document.querySelectorAll('#maps canvas')].find((c) => c.title === `${layer} channel ${k}`);
    canvas.scrollIntoView({block: 'nearest'});
    const rect = canvas.getBoundingClientRect();
    const [h, w] = entry.shape;
    return {x: rect.left + ((j + 0.5) * rect.width) / w, y: rect.top + ((i + 0.5) * rect.height) / h};
  },
  benchmark,
};
