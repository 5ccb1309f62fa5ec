/**
 * bench/results.png: the cost curves of `npm run bench -- --scale`, drawn in process with
 * @napi-rs/canvas (a prebuilt binary from npm; no browser). One panel per curve, log-scaled x.
 */
import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';

export interface Curve {
  title: string;
  xLabel: string;
  yLabel: string;
  points: { x: number; y: number }[];
}

const W = 420;
const H = 300;
const PAD = { l: 78, r: 64, t: 36, b: 48 };

function panel(g: SKRSContext2D, ox: number, oy: number, c: Curve): void {
  g.save();
  g.translate(ox, oy);
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, W, H);
  g.fillStyle = '#111111';
  g.font = 'bold 14px sans-serif';
  g.fillText(c.title, PAD.l - 40, 22);
  const pts = c.points.filter((p) => Number.isFinite(p.y) && p.x > 0);
  const xs = pts.map((p) => Math.log10(p.x));
  const x0 = Math.min(...xs, 0);
  const x1 = Math.max(...xs, x0 + 1);
  const y0 = Math.min(0, ...pts.map((p) => p.y));
  const y1 = Math.max(...pts.map((p) => p.y), 1e-9) * 1.15;
  const px = (x: number) => PAD.l + ((Math.log10(x) - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const py = (y: number) => H - PAD.b - ((y - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
  g.strokeStyle = '#888888';
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(PAD.l, PAD.t);
  g.lineTo(PAD.l, H - PAD.b);
  g.lineTo(W - PAD.r, H - PAD.b);
  g.stroke();
  g.font = '11px sans-serif';
  g.fillStyle = '#333333';
  g.textAlign = 'right';
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    g.fillText(Math.abs(y) >= 100 ? y.toFixed(0) : y.toPrecision(2), PAD.l - 6, py(y) + 4);
  }
  g.textAlign = 'center';
  for (const p of pts) g.fillText(String(p.x), px(p.x), H - PAD.b + 16);
  g.textAlign = 'left';
  g.fillText(c.xLabel, W / 2 - 40, H - 10);
  g.save();
  g.translate(16, H / 2 + 40);
  g.rotate(-Math.PI / 2);
  g.fillText(c.yLabel, 0, 0);
  g.restore();
  g.strokeStyle = '#1f6feb';
  g.lineWidth = 2;
  g.beginPath();
  pts.forEach((p, i) => (i === 0 ? g.moveTo(px(p.x), py(p.y)) : g.lineTo(px(p.x), py(p.y))));
  g.stroke();
  g.fillStyle = '#1f6feb';
  for (const p of pts) {
    g.beginPath();
    g.arc(px(p.x), py(p.y), 4, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#111111';
    g.fillText(p.y >= 100 ? p.y.toFixed(0) : p.y.toPrecision(3), px(p.x) + 6, py(p.y) - 6);
    g.fillStyle = '#1f6feb';
  }
  g.restore();
}

/** Two panels a row; returns the PNG bytes. */
export async function drawCurves(curves: readonly Curve[], caption: string): Promise<Buffer> {
  const cols = 2;
  const rows = Math.max(1, Math.ceil(curves.length / cols));
  const canvas = createCanvas(cols * W, rows * H + 28);
  const g = canvas.getContext('2d');
  g.fillStyle = '#f4f4f4';
  g.fillRect(0, 0, canvas.width, canvas.height);
  curves.forEach((c, i) => panel(g, (i % cols) * W, Math.floor(i / cols) * H, c));
  g.fillStyle = '#333333';
  g.font = '11px sans-serif';
  g.fillText(caption, 8, rows * H + 18);
  return canvas.encode('png');
}
