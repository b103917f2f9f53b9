// Test-time augmentation on the page, as fer_utils.evaluate.metrics does it in Python: the views of a gray crop
// (height x width, row-major) whose class probabilities are averaged. "none": the crop; "flip": it and its
// mirror; "flip-shift": those and four shifts by TTA_SHIFT pixels (down, up, right, left), the uncovered edge
// mirrored in. The export's model.json names the mode (`tta`).
export const TTA_MODES = ['none', 'flip', 'flip-shift'];
export const TTA_SHIFT = 2;
const SHIFTS = [[TTA_SHIFT, 0], [-TTA_SHIFT, 0], [0, TTA_SHIFT], [0, -TTA_SHIFT]];

// Index i of a side of n pixels, mirrored back in when it falls off the edge (numpy's "symmetric" padding).
const mirrored = (i, n) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);

export function ttaViews(gray, height, width, mode = 'none') {
  if (!TTA_MODES.includes(mode)) throw new Error(`unknown test-time augmentation "${mode}"; choose one of ${TTA_MODES.join(', ')}`);
  if (mode === 'none') return [gray];
  const view = (source) => {
    const out = new gray.constructor(height * width);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[y * width + x] = gray[source(y, x)];
    return out;
  };
  const views = [gray, view((y, x) => y * width + (width - 1 - x))];
  if (mode === 'flip-shift') {
    for (const [dy, dx] of SHIFTS) views.push(view((y, x) => mirrored(y - dy, height) * width + mirrored(x - dx, width)));
  }
  return views;
}

// The mean, class by class, of each view's probabilities.
export function meanProbabilities(perView) {
  return perView[0].map((_, k) => perView.reduce((sum, probs) => sum + probs[k], 0) / perView.length);
}
