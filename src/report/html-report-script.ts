// The HTML report's own script (plain browser JS, inlined after uPlot): draws
// one chart per experiment when its section is first opened, so a report of
// many experiments opens fast.
export const CLIENT_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('chaos-data').textContent);
  var drawn = {};
  var COLORS = { p50: '#2e90fa', p99: '#6941c6', err: '#d92d20', rps: '#12b76a', fault: 'rgba(247,144,9,0.16)', faultEdge: 'rgba(247,144,9,0.9)', band: 'rgba(18,183,106,0.13)', breach: '#d92d20', rollback: '#6941c6', recovery: '#039855' };

  function li(list, cls, text, attrs) {
    var el = document.createElement('li');
    el.className = cls;
    el.textContent = text;
    for (var k in attrs) el.setAttribute(k, attrs[k]);
    list.appendChild(el);
  }

  function vline(u, ctx, xs, color, label, dash, row) {
    var x = u.valToPos(xs, 'x', true);
    if (!(x >= u.bbox.left && x <= u.bbox.left + u.bbox.width + 1)) return false;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.setLineDash(dash.map(function (d) { return d * devicePixelRatio; }));
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillStyle = color;
    ctx.font = (11 * devicePixelRatio) + 'px system-ui, sans-serif';
    ctx.fillText(label, x + 4 * devicePixelRatio, u.bbox.top + (14 + 13 * row) * devicePixelRatio);
    ctx.restore();
    return true;
  }

  function chart(i) {
    if (drawn[i]) return;
    drawn[i] = true;
    var d = data[i];
    var el = document.getElementById('chart-' + i);
    var marks = document.getElementById('marks-' + i);
    var t = d.timeline;
    var xs = [], p50 = [], p99 = [], err = [], rps = [];
    // A stretch without windows (e.g. while a fault was being applied) is drawn as a gap, not a line.
    var step = Infinity;
    for (var q = 1; q < t.length; q++) if (t[q].endMs > t[q - 1].endMs) step = Math.min(step, t[q].endMs - t[q - 1].endMs);
    for (var k = 0; k < t.length; k++) {
      // Windows overlap, so points closer than a window apart are one continuous measure.
      if (k > 0 && t[k].endMs - t[k - 1].endMs > d.windowMs + step) {
        xs.push((t[k].endMs + t[k - 1].endMs) / 2000);
        p50.push(null); p99.push(null); err.push(null); rps.push(null);
      }
      xs.push(t[k].endMs / 1000);
      p50.push(t[k].p50Ms);
      p99.push(t[k].p99Ms);
      err.push(t[k].errorRate === null ? null : t[k].errorRate * 100);
      rps.push(t[k].throughputRps);
    }
    var end = Math.max(d.durationMs, t.length ? t[t.length - 1].endMs : 0) / 1000;
    var faults = d.faults.filter(function (f) { return f.startMs !== null; });
    var breaches = d.breaches;
    faults.forEach(function (f) {
      li(marks, 'fault-interval', 'fault ' + f.label + ': ' + (f.startMs / 1000).toFixed(2) + '–' + ((f.endMs === null ? end * 1000 : f.endMs) / 1000).toFixed(2) + ' s', { 'data-start-ms': f.startMs, 'data-end-ms': f.endMs === null ? '' : f.endMs });
    });
    breaches.forEach(function (b) { li(marks, 'breach-marker', 'breach ' + b.slo + ': ' + b.text, { 'data-start-ms': b.startMs, 'data-end-ms': b.endMs }); });
    if (d.rollbackAtMs !== null) li(marks, 'rollback-marker', 'rollback: every fault reverted at ' + (d.rollbackAtMs / 1000).toFixed(2) + ' s', { 'data-at-ms': d.rollbackAtMs });
    if (d.recoveredAtMs !== null) li(marks, 'recovery-marker', 'recovered at ' + (d.recoveredAtMs / 1000).toFixed(2) + ' s', { 'data-at-ms': d.recoveredAtMs });
    if (d.baseline && d.baseline.p50Ms !== null) li(marks, 'baseline-band', 'baseline band p50–p99: ' + d.baseline.p50Ms.toFixed(1) + '–' + d.baseline.p99Ms.toFixed(1) + ' ms', {});

    var opts = {
      width: Math.max(400, el.clientWidth || 900),
      height: 300,
      scales: { x: { time: false, range: [0, end] }, ms: { auto: true }, pct: { range: function (u, min, max) { return [0, Math.max(5, max || 0)]; } }, rps: { range: function (u, min, max) { return [0, Math.max(1, (max || 0) * 1.1)]; } } },
      axes: [
        { label: 'seconds since the experiment started' },
        { scale: 'ms', label: 'latency (ms)' },
        { scale: 'pct', side: 1, label: 'errors (%)', grid: { show: false } },
        { scale: 'rps', side: 1, label: 'throughput (req/s)', grid: { show: false } }
      ],
      series: [
        { label: 's' },
        { label: 'p50 ms', scale: 'ms', stroke: COLORS.p50, width: 1.5 },
        { label: 'p99 ms', scale: 'ms', stroke: COLORS.p99, width: 2 },
        { label: 'errors %', scale: 'pct', stroke: COLORS.err, width: 1.5 },
        { label: 'req/s', scale: 'rps', stroke: COLORS.rps, width: 1, dash: [5, 4] }
      ],
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, n = 0;
          var top = u.bbox.top, h = u.bbox.height;
          if (d.baseline && d.baseline.p50Ms !== null && d.baseline.p99Ms !== null) {
            var y1 = u.valToPos(d.baseline.p99Ms, 'ms', true), y2 = u.valToPos(d.baseline.p50Ms, 'ms', true);
            ctx.save();
            ctx.fillStyle = COLORS.band;
            ctx.fillRect(u.bbox.left, Math.min(y1, y2), u.bbox.width, Math.max(2 * devicePixelRatio, Math.abs(y2 - y1)));
            ctx.restore();
          }
          faults.forEach(function (f, j) {
            var x1 = u.valToPos(f.startMs / 1000, 'x', true);
            var x2 = u.valToPos((f.endMs === null ? end * 1000 : f.endMs) / 1000, 'x', true);
            ctx.save();
            ctx.fillStyle = COLORS.fault;
            ctx.fillRect(x1, top, Math.max(1, x2 - x1), h);
            ctx.fillStyle = COLORS.faultEdge;
            ctx.font = (11 * devicePixelRatio) + 'px system-ui, sans-serif';
            ctx.fillText(f.label, x1 + 4 * devicePixelRatio, top + h - (6 + 13 * j) * devicePixelRatio);
            ctx.restore();
            n++;
          });
          el.setAttribute('data-fault-bands', String(n));
        }],
        draw: [function (u) {
          var ctx = u.ctx, n = 0;
          // A breach run: a line and a triangle where it starts, a red strip along the top while it lasts.
          breaches.forEach(function (b, j) {
            if (vline(u, ctx, b.startMs / 1000, COLORS.breach, '▼ breach: ' + b.slo + (b.windows > 1 ? ' (' + b.windows + ' windows)' : ''), [2, 3], j)) {
              var x = u.valToPos(b.startMs / 1000, 'x', true);
              var x2 = u.valToPos(b.endMs / 1000, 'x', true);
              ctx.save();
              ctx.fillStyle = COLORS.breach;
              ctx.fillRect(x, u.bbox.top, Math.max(2 * devicePixelRatio, x2 - x), 4 * devicePixelRatio);
              ctx.beginPath();
              ctx.moveTo(x - 6 * devicePixelRatio, u.bbox.top);
              ctx.lineTo(x + 6 * devicePixelRatio, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + 9 * devicePixelRatio);
              ctx.fill();
              ctx.restore();
              n++;
            }
          });
          el.setAttribute('data-breach-marks', String(n));
          if (d.rollbackAtMs !== null) vline(u, ctx, d.rollbackAtMs / 1000, COLORS.rollback, 'rollback', [6, 3], breaches.length);
          if (d.recoveredAtMs !== null) vline(u, ctx, d.recoveredAtMs / 1000, COLORS.recovery, 'recovered', [], breaches.length + 1);
          el.setAttribute('data-drawn', '1');
        }]
      }
    };
    new uPlot(opts, [xs, p50, p99, err, rps], el);
  }

  var sections = document.querySelectorAll('details.exp');
  sections.forEach(function (s) {
    var i = Number(s.getAttribute('data-index'));
    if (s.open) chart(i);
    s.addEventListener('toggle', function () { if (s.open) chart(i); });
  });
  function openHash() {
    var m = /^#exp-(\d+)$/.exec(location.hash);
    if (m) { var s = document.getElementById('exp-' + m[1]); if (s) s.open = true; }
  }
  window.addEventListener('hashchange', openHash);
  openHash();
  document.getElementById('expand-all').addEventListener('click', function () { sections.forEach(function (s) { s.open = true; }); });
  document.getElementById('collapse-all').addEventListener('click', function () { sections.forEach(function (s) { s.open = false; }); });
  document.getElementById('only-failed').addEventListener('change', function (e) { document.body.classList.toggle('only-failed', e.target.checked); });
})();
`;
