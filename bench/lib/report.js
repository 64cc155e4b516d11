/** The benchmark's outputs: a markdown table (one row per variant x backend x precision x batch) and an SVG chart. */

const f1 = (x) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(1));
const f2 = (x) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(2));

/**
 * @param rows benchmark rows
 * @param run 'quick' (npm run bench -- --quick: short runs, rough figures) or 'full'; every row says which
 */
export function markdownTable(rows, run = 'full') {
  const head = [
    '| variant | backend | precision | batch | model FPS | latency ms median / p90 / p99 | runs | spread | image FPS | video FPS | status | run |',
    '|---|---|---|---:|---:|---|---:|---:|---:|---:|---|---|',
  ];
  const body = rows.map((r) => {
    const lat = r.model ? `${f2(r.model.latency.medianMs)} / ${f2(r.model.latency.p90Ms)} / ${f2(r.model.latency.p99Ms)}` : '-';
    const runs = r.model ? String(r.model.latency.runs) : '-';
    const spread = r.model ? `${Math.round(r.model.latency.spread * 100)}%` : '-';
    return `| ${r.variant} | ${r.backend} | ${r.precision} | ${r.batch} | ${f1(r.model?.fps)} | ${lat} | ${runs} | ${spread} | ${f1(r.images?.fps)} | ${f1(r.video?.fps)} | ${r.status} | ${run} |`;
  });
  return [...head, ...body].join('\n');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Round tick values for a log axis between lo and hi: 1, 2, 3, 5, 7 x 10^k. */
function logTicks(lo, hi) {
  const ticks = [];
  for (let k = Math.floor(Math.log10(lo)) - 1; k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of [1, 2, 3, 5, 7]) {
      const v = m * 10 ** k;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

/**
 * AP (y) against model-only FPS at batch 1 (x, log scale), one line per backend and precision
 * through its variants, like the DEIMv2 paper's accuracy/latency figure.
 * @param rows benchmark rows
 * @param apOf (variant) => { ap, source } with source 'paper' or 'eval'
 * @param run 'quick' marks the chart as a quick run (title and a note), 'full' does not
 */
export function svgChart(rows, apOf, title, run = 'full') {
  const points = rows.filter((r) => r.batch === 1 && r.model?.fps > 0).map((r) => ({ ...r, fps: r.model.fps, ap: apOf(r.variant).ap, apSource: apOf(r.variant).source }));
  const W = 760, H = 480, L = 70, R = 190, T = 50, B = 60;
  const svg = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="28" font-size="16" font-weight="bold">${esc(title)}${run === 'quick' ? ' (quick run)' : ''}</text>`];
  // A quick run's figures are rough (few runs): say so where nobody can miss it.
  if (run === 'quick') svg.push(`<text x="${W - 12}" y="${H - 12}" text-anchor="end" font-weight="bold" fill="#b00">QUICK RUN (--quick): rough figures</text>`);
  if (points.length === 0) {
    svg.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no model-only measurements</text>`, '</svg>');
    return svg.join('\n');
  }
  const fpsLo = Math.min(...points.map((p) => p.fps)) / 1.5;
  const fpsHi = Math.max(...points.map((p) => p.fps)) * 1.5;
  const apLo = Math.floor(Math.min(...points.map((p) => p.ap)) - 3);
  const apHi = Math.ceil(Math.max(...points.map((p) => p.ap)) + 3);
  const x = (fps) => L + ((Math.log10(fps) - Math.log10(fpsLo)) / (Math.log10(fpsHi) - Math.log10(fpsLo))) * (W - L - R);
  const y = (ap) => T + (1 - (ap - apLo) / (apHi - apLo)) * (H - T - B);

  svg.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  for (const v of logTicks(fpsLo, fpsHi)) {
    svg.push(`<line x1="${x(v).toFixed(1)}" y1="${T}" x2="${x(v).toFixed(1)}" y2="${H - B}" stroke="#ddd"/>`,
      `<text x="${x(v).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${v}</text>`);
  }
  const apStep = apHi - apLo > 20 ? 5 : 2;
  for (let v = Math.ceil(apLo / apStep) * apStep; v <= apHi; v += apStep) {
    svg.push(`<line x1="${L}" y1="${y(v).toFixed(1)}" x2="${W - R}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${L - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  svg.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">model-only FPS, batch 1 (log scale)</text>`,
    `<text transform="translate(20 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">COCO val2017 AP</text>`);

  const series = new Map();
  for (const p of points) {
    const key = `${p.backend}${p.backend === 'cpu' ? '' : ' ' + p.precision}`;
    if (!series.has(key)) series.set(key, []);
    series.get(key).push(p);
  }
  let i = 0;
  for (const [key, pts] of series) {
    const color = COLORS[i % COLORS.length];
    pts.sort((a, b) => a.ap - b.ap);
    svg.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${x(p.fps).toFixed(1)},${y(p.ap).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      svg.push(`<circle cx="${x(p.fps).toFixed(1)}" cy="${y(p.ap).toFixed(1)}" r="5" fill="${color}"><title>${esc(`${p.variant} ${key}: ${p.fps.toFixed(1)} FPS, AP ${p.ap} (${p.apSource})`)}</title></circle>`,
        `<text x="${(x(p.fps) + 8).toFixed(1)}" y="${(y(p.ap) - 6).toFixed(1)}">${esc(p.variant)}</text>`);
    }
    const ly = T + 10 + i * 20;
    svg.push(`<line x1="${W - R + 15}" y1="${ly}" x2="${W - R + 40}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<circle cx="${W - R + 27.5}" cy="${ly}" r="4" fill="${color}"/>`,
      `<text x="${W - R + 48}" y="${ly + 4}">${esc(key)}</text>`);
    i++;
  }
  const sources = [...new Set(points.map((p) => p.apSource))].join(' / ');
  svg.push(`<text x="${W - R + 15}" y="${T + 10 + i * 20 + 10}" fill="#555">AP: ${esc(sources)}</text>`, '</svg>');
  return svg.join('\n');
}
