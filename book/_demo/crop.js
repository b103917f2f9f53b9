// The face crop of the book's Python code (fer_utils.faces.crops.crop_face), pixel for pixel, for the live demo page.
// A crop is cut as the model's crop spec says (crop_spec.json: margin, side, colour; models.json carries it):
// the square around the face box with `margin` on every side, its edge pixels repeated where it leaves the
// frame, gray as OpenCV makes it, resized to `side` x `side` as OpenCV's cv2.resize does: INTER_AREA when the
// square is larger than the side, INTER_LINEAR when it is not. Each step below is OpenCV's own arithmetic
// (fixed point and float32 where OpenCV uses them), so the page feeds its model the crop that training and
// Python inference feed theirs (tests/test_crop_parity.py checks it within one gray level; CONTRACTS.md,
// "One crop, one resizer"). No browser API touches the pixels after they are read from the frame.

// Python's round(): halves go to the even neighbour (Math.round sends them up).
export function pyRound(value) {
  const rounded = Math.round(value);
  return Math.abs(value % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

// OpenCV's saturate_cast<uchar> of a float: nearest integer, halves to even, clamped to 0..255.
function toByte(value) {
  return Math.min(255, Math.max(0, pyRound(value)));
}

// fer_utils.faces.crops.square_region: [x0, y0, x1, y1] of the square around the box's centre whose side is the
// box's longest side times (1 + 2 margin).
export function squareRegion(box, margin) {
  const side = Math.max(1, pyRound(Math.max(box.w, box.h) * (1.0 + 2.0 * margin)));
  const cx = box.x + box.w / 2.0, cy = box.y + box.h / 2.0;
  const x0 = pyRound(cx - side / 2.0), y0 = pyRound(cy - side / 2.0);
  return [x0, y0, x0 + side, y0 + side];
}

// The part of the frame (width x height) that the square of `box` covers: [left, top, right, bottom], or null
// when the square lies outside the frame (Python's crop_face raises InputError then).
export function squareInside(box, margin, width, height) {
  const [x0, y0, x1, y1] = squareRegion(box, margin);
  const rect = [Math.max(0, x0), Math.max(0, y0), Math.min(width, x1), Math.min(height, y1)];
  return rect[2] > rect[0] && rect[3] > rect[1] ? rect : null;
}

// OpenCV's COLOR_BGR2GRAY (and RGBA2GRAY) on 8 bits: ITU-R 601 weights in 15-bit fixed point.
export function grayOf(r, g, b) {
  return (r * 9798 + g * 19235 + b * 3735 + 16384) >> 15;
}

// cv2.resize's INTER_AREA table for one axis (computeResizeAreaTab): [destination, source, float32 weight].
function areaTable(source, destination, scale) {
  const table = [];
  for (let d = 0; d < destination; d++) {
    const f1 = d * scale, f2 = f1 + scale;
    const cell = Math.min(scale, source - f1);
    let s2 = Math.min(Math.floor(f2), source - 1);
    const s1 = Math.min(Math.ceil(f1), s2);
    if (s1 - f1 > 1e-3) table.push([d, s1 - 1, Math.fround((s1 - f1) / cell)]);
    for (let s = s1; s < s2; s++) table.push([d, s, Math.fround(1.0 / cell)]);
    if (f2 - s2 > 1e-3) table.push([d, s2, Math.fround(Math.min(Math.min(f2 - s2, 1.0), cell) / cell)]);
  }
  return table;
}

// cv2.resize(INTER_AREA) of a square gray image (n x n) to side x side, side < n, as OpenCV 4 computes it:
// a whole factor averages k x k blocks (k = 2 with OpenCV's SIMD rounding, halves up), any other factor weighs
// the source pixels each destination pixel covers, in float32.
function resizeArea(gray, n, side) {
  const out = new Uint8Array(side * side);
  const scale = 1 / (side / n);
  if (n % side === 0) {
    const k = n / side, weight = Math.fround(1 / (k * k));
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
      let sum = 0;
      for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) sum += gray[(y * k + dy) * n + x * k + dx];
      out[y * side + x] = k === 2 ? (sum + 2) >> 2 : toByte(Math.fround(Math.fround(sum) * weight));
    }
    return out;
  }
  const xTable = areaTable(n, side, scale), yTable = areaTable(n, side, scale);
  const row = new Float32Array(side), sum = new Float32Array(side);
  let previous = yTable[0][0];
  for (const [dy, sy, beta] of yTable) {
    row.fill(0);
    for (const [dx, sx, alpha] of xTable) row[dx] = Math.fround(row[dx] + Math.fround(gray[sy * n + sx] * alpha));
    if (dy !== previous) {
      for (let x = 0; x < side; x++) {
        out[previous * side + x] = toByte(sum[x]);
        sum[x] = Math.fround(beta * row[x]);
      }
      previous = dy;
    } else {
      for (let x = 0; x < side; x++) sum[x] = Math.fround(sum[x] + Math.fround(beta * row[x]));
    }
  }
  for (let x = 0; x < side; x++) out[previous * side + x] = toByte(sum[x]);
  return out;
}

// cv2.resize(INTER_LINEAR)'s coefficients for one axis: [source, weight of it, weight of the next] in 11-bit
// fixed point; `clamp` (the horizontal axis) pins positions outside the image to its edge, as OpenCV does.
function linearTable(n, side, clamp) {
  const scale = 1 / (side / n), table = [];
  for (let d = 0; d < side; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clamp && s < 0) [f, s] = [0, 0];
    if (clamp && s >= n - 1) [f, s] = [0, n - 1];
    table.push([s, pyRound(Math.fround(Math.fround(1 - f) * 2048)), pyRound(Math.fround(f * 2048))]);
  }
  return table;
}

// cv2.resize(INTER_LINEAR) of a square gray image (n x n) to side x side, side >= n: rows interpolated in
// fixed point, then columns with OpenCV's SIMD arithmetic (each term shifted before it is summed).
function resizeLinear(gray, n, side) {
  const out = new Uint8Array(side * side);
  const xTable = linearTable(n, side, true), yTable = linearTable(n, side, false);
  const horizontal = (y) => {
    const r = Math.min(Math.max(y, 0), n - 1) * n;
    return xTable.map(([s, a0, a1]) => gray[r + s] * a0 + gray[r + Math.min(s + 1, n - 1)] * a1);
  };
  for (let y = 0; y < side; y++) {
    const [s, b0, b1] = yTable[y];
    const top = horizontal(s), bottom = horizontal(s + 1);
    for (let x = 0; x < side; x++) {
      const value = (((top[x] >> 4) * b0) >> 16) + (((bottom[x] >> 4) * b1) >> 16);
      out[y * side + x] = Math.min(255, Math.max(0, (value + 2) >> 2));
    }
  }
  return out;
}

// A square gray image (n x n) resized to side x side as fer_utils.faces.crops.crop_face resizes it.
export function resizeGray(gray, n, side) {
  return n > side ? resizeArea(gray, n, side) : resizeLinear(gray, n, side);
}

// The crop of `box` (frame pixels) that `spec` describes ({margin, side, colour}), as side x side gray bytes.
// `image` is {data: RGBA bytes, width, height, left, top}: the frame, or the part of it that `squareInside`
// names (left, top: where it starts in the frame), which is all the crop reads. The square's pixels outside
// the frame repeat the frame's edge (OpenCV's BORDER_REPLICATE).
export function cropFace(image, box, spec, frameWidth = image.width, frameHeight = image.height) {
  if (spec.colour !== 'gray') throw new Error(`the page makes gray crops; this model's crops are ${spec.colour}`);
  const [x0, y0, x1] = squareRegion(box, spec.margin);
  const n = x1 - x0, left = image.left || 0, top = image.top || 0;
  if (!squareInside(box, spec.margin, frameWidth, frameHeight)) throw new Error('the face box lies outside the frame');
  const gray = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) {
    const fy = Math.min(Math.max(y0 + i, 0), frameHeight - 1) - top;
    for (let j = 0; j < n; j++) {
      const fx = Math.min(Math.max(x0 + j, 0), frameWidth - 1) - left;
      const p = (fy * image.width + fx) * 4;
      gray[i * n + j] = grayOf(image.data[p], image.data[p + 1], image.data[p + 2]);
    }
  }
  return resizeGray(gray, n, spec.side);
}

// The crop of `box` that `spec` describes, cut from `source` (an image, a video or a canvas of width x height
// pixels: a camera or file frame), or null when the square lies outside the frame. Only the part of the frame
// the square covers is read, drawn at 1:1 onto `canvas` (no resampling), then cut by `cropFace`.
export function frameCrop(source, width, height, box, spec, canvas) {
  const rect = squareInside(box, spec.margin, width, height);
  if (!rect) return null;
  const [left, top, right, bottom] = rect;
  canvas.width = right - left; canvas.height = bottom - top;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(source, left, top, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  return cropFace({data, width: canvas.width, height: canvas.height, left, top}, box, spec, width, height);
}
