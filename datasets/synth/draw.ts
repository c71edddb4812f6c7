/**
 * Raster drawing for generated data sets: a textured background and filled shapes whose
 * class is given by shape and colour. Pure (works on an RGB byte buffer), deterministic via Rng.
 */
import { Rng } from '../prng';

export const SHAPES = ['rectangle', 'ellipse', 'triangle', 'diamond', 'cross', 'ring'] as const;
export type Shape = (typeof SHAPES)[number];

/** Saturated, mutually distinct colours that stand out from the low-saturation background. */
export const PALETTE: { name: string; rgb: [number, number, number] }[] = [
  { name: 'red', rgb: [220, 40, 40] },
  { name: 'green', rgb: [40, 200, 60] },
  { name: 'blue', rgb: [40, 70, 230] },
  { name: 'yellow', rgb: [235, 220, 40] },
  { name: 'magenta', rgb: [220, 50, 210] },
  { name: 'cyan', rgb: [40, 215, 225] },
  { name: 'orange', rgb: [245, 140, 20] },
  { name: 'purple', rgb: [120, 40, 170] },
  { name: 'white', rgb: [250, 250, 250] },
  { name: 'black', rgb: [10, 10, 10] },
];

/** Class c is (shape c mod 6, colour c mod 10): distinct for up to lcm(6, 10) = 30 classes. */
export const MAX_SYNTH_CLASSES = 30;
export function classStyle(c: number): { shape: Shape; colour: (typeof PALETTE)[number]; name: string } {
  const shape = SHAPES[c % SHAPES.length];
  const colour = PALETTE[c % PALETTE.length];
  return { shape, colour, name: `${colour.name}_${shape}` };
}

export class Canvas {
  readonly rgb: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgb = new Uint8Array(width * height * 3);
  }
}

/** Smooth value noise background (random grey-ish base, two octaves) plus per-pixel noise. */
export function paintBackground(canvas: Canvas, rng: Rng): void {
  const { width, height, rgb } = canvas;
  const base = [rng.uniform(70, 170), rng.uniform(70, 170), rng.uniform(70, 170)];
  const mean = (base[0] + base[1] + base[2]) / 3;
  // pull the base towards grey so objects' saturated colours stay distinctive
  for (let k = 0; k < 3; k++) base[k] = mean + 0.35 * (base[k] - mean);
  const grids = [6, 17].map((cells) => {
    const g = new Float32Array((cells + 1) * (cells + 1));
    for (let i = 0; i < g.length; i++) g[i] = rng.uniform(-1, 1);
    return { cells, g };
  });
  const amps = [28, 12];
  const stripes = rng.next() < 0.5 ? { f: rng.uniform(0.05, 0.25), a: rng.uniform(4, 12), dir: rng.next() } : null;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let o = 0; o < grids.length; o++) {
        const { cells, g } = grids[o];
        const fx = (x / width) * cells;
        const fy = (y / height) * cells;
        const ix = Math.min(cells - 1, Math.floor(fx));
        const iy = Math.min(cells - 1, Math.floor(fy));
        const tx = fx - ix;
        const ty = fy - iy;
        const sx = tx * tx * (3 - 2 * tx);
        const sy = ty * ty * (3 - 2 * ty);
        const r0 = g[iy * (cells + 1) + ix] * (1 - sx) + g[iy * (cells + 1) + ix + 1] * sx;
        const r1 = g[(iy + 1) * (cells + 1) + ix] * (1 - sx) + g[(iy + 1) * (cells + 1) + ix + 1] * sx;
        v += amps[o] * (r0 * (1 - sy) + r1 * sy);
      }
      if (stripes) v += stripes.a * Math.sin((stripes.dir < 0.5 ? x : y) * stripes.f * 2 * Math.PI);
      const p = (y * width + x) * 3;
      for (let k = 0; k < 3; k++) rgb[p + k] = clamp255(base[k] + v + rng.uniform(-8, 8));
    }
  }
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** Is the pixel centre (px, py), relative to the shape's box [0,w)x[0,h), inside the shape? */
function inside(shape: Shape, px: number, py: number, w: number, h: number): boolean {
  const u = (px / w) * 2 - 1; // [-1, 1]
  const v = (py / h) * 2 - 1;
  switch (shape) {
    case 'rectangle':
      return true;
    case 'ellipse':
      return u * u + v * v <= 1;
    case 'triangle':
      // apex at the top centre, base at the bottom
      return Math.abs(u) <= (v + 1) / 2;
    case 'diamond':
      return Math.abs(u) + Math.abs(v) <= 1;
    case 'cross':
      return Math.abs(u) <= 0.34 || Math.abs(v) <= 0.34;
    case 'ring': {
      const r = u * u + v * v;
      return r <= 1 && r >= 0.3;
    }
  }
}

/**
 * Fill `shape` in the box (x, y, w, h) with a jittered version of `rgb`; returns the tight box of
 * the pixels actually painted ([x, y, w, h], integers) and their count, or null if none were.
 */
export function drawShape(
  canvas: Canvas,
  shape: Shape,
  x: number,
  y: number,
  w: number,
  h: number,
  rgb: readonly [number, number, number],
  rng: Rng,
): { bbox: [number, number, number, number]; pixels: number } | null {
  const jitter = rgb.map((c) => c + rng.uniform(-18, 18));
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  let pixels = 0;
  for (let py = Math.max(0, y); py < Math.min(canvas.height, y + h); py++) {
    for (let px = Math.max(0, x); px < Math.min(canvas.width, x + w); px++) {
      if (!inside(shape, px - x + 0.5, py - y + 0.5, w, h)) continue;
      const p = (py * canvas.width + px) * 3;
      // a little shading across the object so it is not a flat colour
      const shade = 1 + 0.12 * ((px - x) / w - 0.5);
      for (let k = 0; k < 3; k++) canvas.rgb[p + k] = clamp255(jitter[k] * shade + rng.uniform(-10, 10));
      pixels++;
      if (px < minX) minX = px;
      if (px > maxX) maxX = px;
      if (py < minY) minY = py;
      if (py > maxY) maxY = py;
    }
  }
  if (pixels === 0) return null;
  return { bbox: [minX, minY, maxX - minX + 1, maxY - minY + 1], pixels };
}
