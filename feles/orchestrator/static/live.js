// The live page of a FELES run: polls v1/ui/data and draws on <canvas>, no library.
// Every poll asks only for what the page lacks (since=, records=), and the charts redraw from arrays
// in memory, so a run of 1,000 rounds costs a few kilobytes a second and a few milliseconds a frame.
"use strict";

(() => {
  const TOKEN_KEY = "feles-live-token";
  const POLL_MS = 1000;
  const MAX_BACKOFF_MS = 10000;
  const FINISHED = new Set(["Succeeded", "Failed"]);
  const COLORS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#1098ad"];
  // Devices: failures in warm colours, selections in cold ones, the available pool in grey.
  const DEVICE_COLORS = ["#8891a3", "#2f6fdb", "#e03131", "#7048e8", "#f08c00"];
  const MARGIN = { left: 56, right: 14, top: 24, bottom: 30 };

  const CHARTS = [
    {
      // Labelled with the run's metric (accuracy, mae or mse) once the status names it: see labelMetric.
      id: "chart-accuracy", yMin: 0, yMax: 1, digits: 4,
      series: [["test accuracy", "test_accuracy"], ["eval accuracy (devices)", "eval_accuracy"]],
    },
    {
      id: "chart-loss", yMin: 0, digits: 4,
      series: [["test loss", "test_loss"], ["train loss", "train_loss"], ["eval loss (devices)", "eval_loss"]],
    },
    {
      id: "chart-devices", yMin: 0, digits: 0, colors: DEVICE_COLORS,
      series: [
        ["available", "devices_available"], ["fit selected", "fit_selected"], ["fit failed", "fit_failed"],
        ["eval selected", "eval_selected"], ["eval failed", "eval_failed"],
      ],
    },
    { id: "chart-time", yMin: 0, digits: 1, series: [["round time", "round_time"]] },
    { id: "chart-energy", yMin: 0, digits: 1, series: [["energy", "energy"]] },
  ];

  // Everything the page knows; exposed for the curious and for the browser test.
  const state = {
    runId: null, status: null, spec: null, jobsDone: null, rounds: [], repetitions: [],
    records: 0, matrix: null, histogram: null, recordsAvailable: false,
    polls: 0, drawMs: 0, finished: false, xAxis: "round", backoff: POLL_MS, timer: null, hover: {},
  };
  window.felesLive = state;

  const $ = (id) => document.getElementById(id);

  // ---- the token: from the fragment, kept in this tab's sessionStorage only ----

  function takeTokenFromFragment() {
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      // Out of the address bar and the history at once: nothing to bookmark, copy or screen-share.
      history.replaceState(null, "", location.pathname + location.search);
    }
    return Boolean(token);
  }

  function askToken(reason) {
    clearTimeout(state.timer);
    $("auth-reason").textContent = reason;
    $("auth").hidden = false;
    $("live").hidden = state.status === null;
    setConnection("waiting for the token");
    $("auth-token").focus();
  }

  function submitToken(event) {
    event.preventDefault();
    const token = $("auth-token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("auth-token").value = "";
    $("auth").hidden = true;
    poll();
  }

  // ---- polling ----

  async function poll() {
    clearTimeout(state.timer);
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const url = `v1/ui/data?since=${state.rounds.length}&records=${state.records}`;
    let response;
    try {
      response = await fetch(url, { headers, cache: "no-store" });
    } catch (error) {
      return retryLater(state.status ? "orchestrator unreachable (the last data stays shown)" : "orchestrator unreachable");
    }
    if (response.status === 401) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      return askToken(token ? "The token was not accepted: enter the run's API token." : "This page needs the run's API token.");
    }
    if (!response.ok) return retryLater(`HTTP ${response.status}`);
    const data = await response.json();
    if (state.runId !== null && data.run_id !== state.runId) {
      // Another run behind the same address (a fresh start): begin again from nothing.
      resetRun();
      return poll();
    }
    apply(data);
    state.polls += 1;
    state.backoff = POLL_MS;
    if (state.finished) {
      setConnection(`run over: ${new Date().toLocaleTimeString()} (no more polling)`);
    } else {
      setConnection(`updated ${new Date().toLocaleTimeString()}`);
      state.timer = setTimeout(poll, POLL_MS);
    }
  }

  function retryLater(problem) {
    const seconds = Math.round(state.backoff / 1000);
    setConnection(`${problem}; retrying in ${seconds} s`, true);
    state.timer = setTimeout(poll, state.backoff);
    state.backoff = Math.min(state.backoff * 2, MAX_BACKOFF_MS);
  }

  function resetRun() {
    Object.assign(state, { runId: null, spec: null, rounds: [], repetitions: [], records: 0, matrix: null, histogram: null });
  }

  function apply(data) {
    state.runId = data.run_id;
    state.status = data.status;
    state.jobsDone = data.jobs_done;
    state.repetitions = data.repetitions;
    if (data.since === 0) state.rounds = [];
    for (const record of data.rounds) state.rounds.push(record);
    if (data.spec) {
      state.spec = data.spec;
      $("spec").textContent = JSON.stringify(data.spec, null, 2);
    }
    applyDevices(data.devices);
    state.finished = FINISHED.has(data.status.phase);
    $("auth").hidden = true;
    $("live").hidden = false;
    renderStatus();
    // The charts change with new rounds only: a poll that brings none costs no redraw.
    if (data.since === 0 || data.rounds.length > 0 || data.devices.rounds.length > 0) scheduleDraw();
  }

  // ---- device records: the selection matrix, accumulated one round at a time ----

  function applyDevices(devices) {
    state.recordsAvailable = devices.available;
    if (devices.since === 0) state.matrix = null;
    for (const round of devices.rounds) addSelection(devices, round);
    state.records = devices.total;
    state.histogram = devices.histogram;
  }

  function addSelection(devices, round) {
    let matrix = state.matrix;
    if (matrix === null || matrix.repetition !== round.repetition) {
      const cells = devices.rows * devices.columns;
      matrix = state.matrix = {
        repetition: round.repetition, rows: devices.rows, columns: devices.columns, devices: devices.devices,
        deviceBin: devices.device_bin, roundBin: devices.round_bin,
        selected: new Float64Array(cells), failed: new Float64Array(cells),
        roundsIn: new Int32Array(devices.columns), jain: [], lastRound: -1,
      };
    }
    const base = round.column * matrix.rows;
    for (let row = 0; row < matrix.rows; row++) {
      matrix.selected[base + row] += round.selected[row];
      matrix.failed[base + row] += round.failed[row];
    }
    matrix.roundsIn[round.column] += 1;
    matrix.jain.push({ round: round.round, value: round.jain });
    matrix.lastRound = round.round;
  }

  // ---- the status cards ----

  function renderStatus() {
    const s = state.status;
    const phase = $("phase");
    phase.textContent = s.phase;
    phase.dataset.phase = s.phase;
    $("run-id").textContent = `run ${state.runId.slice(0, 12)}`;
    const repetition = s.repetitions > 1 ? ` · repetition ${s.repetition + 1}/${s.repetitions}` : "";
    const round = $("round");
    round.textContent = `round ${s.round}/${s.rounds}${repetition}`;
    round.dataset.round = String(s.round);
    const done = s.repetition * s.rounds + s.round;
    const total = s.repetitions * s.rounds;
    $("progress-bar").style.width = `${(100 * Math.min(done / total, 1)).toFixed(1)}%`;
    $("message").textContent = [s.message, s.stop_reason ? `stopped: ${s.stop_reason}` : ""].filter(Boolean).join(" · ");
    labelMetric(s.metric || "accuracy");
    $("accuracy").textContent = number(s.metric_value, 4);
    $("loss").textContent = number(s.loss, 4);
    $("simulated").textContent = duration(s.simulated_time);
    $("workers").textContent = String(s.workers);
    const done_ = state.jobsDone === null ? "–" : state.jobsDone;
    $("jobs").textContent = `${s.jobs_queued} · ${s.jobs_leased} · ${done_}`;
    $("repetition-note").textContent = s.repetitions > 1 ? "earlier repetitions are drawn faded" : "";
    document.title = `FELES ${s.phase} · round ${s.round}/${s.rounds}`;
  }

  // An error (mae, mse) is never shown as an accuracy, and has no upper bound of 1.
  function labelMetric(metric) {
    const chart = CHARTS[0];
    chart.series = [[`test ${metric}`, `test_${metric}`], [`eval ${metric} (devices)`, `eval_${metric}`]];
    chart.yMax = metric === "accuracy" ? 1 : undefined;
    $("metric-label").textContent = `Test ${metric}`;
    $("metric-caption").textContent = `Test ${metric}`;
  }

  function setConnection(text, warning = false) {
    const element = $("connection");
    element.textContent = text;
    element.classList.toggle("warning", warning);
  }

  // ---- drawing ----

  // Redraws wait for the next frame; a mouse move redraws its own chart only, new data all of them.
  let pending = null;
  function scheduleDraw(id = null) {
    const first = pending === null;
    pending = id === null || pending === "all" ? "all" : new Set([...(pending || []), id]);
    if (first) requestAnimationFrame(drawPending);
  }

  function drawPending() {
    const which = pending;
    pending = null;
    if (state.status === null) return;
    const started = performance.now();
    for (const chart of CHARTS) {
      if (which === "all" || which.has(chart.id)) drawRoundChart(chart);
    }
    if (which === "all" || [...which].some((id) => !CHARTS.some((chart) => chart.id === id))) drawRecords();
    state.drawMs = performance.now() - started;
  }

  function drawRoundChart(chart) {
    const canvas = $(chart.id);
    const x = state.xAxis === "round" ? (r) => r.round + 1 : (r) => r.simulated_time;
    const latest = state.rounds.length ? state.rounds[state.rounds.length - 1].repetition : 0;
    const series = chart.series.map(([label, key], index) => ({
      label, color: (chart.colors || COLORS)[index % COLORS.length],
      points: state.rounds.map((r) => ({ x: x(r), y: r[key], group: r.repetition, faded: r.repetition !== latest, record: r })),
    }));
    const drawn = lineChart(canvas, series, {
      yMin: chart.yMin, yMax: chart.yMax, digits: chart.digits,
      xLabel: state.xAxis === "round" ? "round" : "simulated time", xTime: state.xAxis !== "round",
      // Rounds: the whole planned range from the start, so that the axis stays put and shows what is left.
      xRange: state.xAxis === "round" ? [0, state.status.rounds] : undefined,
    });
    canvas.dataset.points = String(drawn);
  }

  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, width, height };
  }

  // Series of {x, y, group, faded}: a line breaks where y is missing or the group (repetition) changes.
  // Returns how many points with a value it drew.
  function lineChart(canvas, series, options) {
    const { ctx, width, height } = setup(canvas);
    const visible = series.filter((s) => s.points.some((p) => isNumber(p.y)));
    const plot = { left: MARGIN.left, top: MARGIN.top, right: width - MARGIN.right, bottom: height - MARGIN.bottom };
    const key = legendLayout(ctx, visible, plot);
    plot.top = Math.max(plot.top, key.bottom + 8);
    if (visible.length === 0) {
      empty(ctx, width, height, "no rounds yet");
      return 0;
    }
    const xs = visible.flatMap((s) => s.points.map((p) => p.x)).filter(isNumber);
    const ys = visible.flatMap((s) => s.points.map((p) => p.y)).filter(isNumber);
    let [xMin, xMax] = options.xRange || extent(xs);
    if (xMax === xMin) [xMin, xMax] = [xMin - 1, xMax + 1];
    let [yMin, yMax] = extent(ys);
    if (options.yMin !== undefined) yMin = Math.min(yMin, options.yMin);
    if (options.yMax !== undefined) yMax = Math.max(yMax, options.yMax);
    if (yMax === yMin) yMax = yMin + 1;
    const yTicks = ticks(yMin, yMax, 5);
    yMin = Math.min(yMin, yTicks[0]);
    yMax = Math.max(yMax, yTicks[yTicks.length - 1]);
    const sx = (v) => plot.left + ((v - xMin) / (xMax - xMin)) * (plot.right - plot.left);
    const sy = (v) => plot.bottom - ((v - yMin) / (yMax - yMin)) * (plot.bottom - plot.top);
    const xTicks = options.xTime ? timeTicks(xMin, xMax, 6) : ticks(xMin, xMax, 6).map((v) => [v, tickLabel(v)]);
    axes(ctx, plot, yTicks.map((v) => [sy(v), tickLabel(v)]), xTicks.map(([v, label]) => [sx(v), label]), options.xLabel);

    let drawn = 0;
    for (const s of visible) {
      for (const faded of [true, false]) {
        ctx.strokeStyle = s.color;
        ctx.globalAlpha = faded ? 0.3 : 1;
        ctx.lineWidth = 1.6;
        ctx.beginPath();
        let previous = null;
        for (const p of s.points) {
          if (p.faded !== faded || !isNumber(p.y)) { previous = null; continue; }
          if (previous === null || previous.group !== p.group) ctx.moveTo(sx(p.x), sy(p.y));
          else ctx.lineTo(sx(p.x), sy(p.y));
          previous = p;
          if (!faded && s === visible[0]) drawn += 1;
        }
        ctx.stroke();
        if (s.points.length <= 60) {
          ctx.fillStyle = s.color;
          for (const p of s.points) {
            if (p.faded === faded && isNumber(p.y)) ctx.fillRect(sx(p.x) - 2, sy(p.y) - 2, 4, 4);
          }
        }
      }
    }
    ctx.globalAlpha = 1;
    legend(ctx, key.items);
    hover(ctx, canvas, plot, visible, sx, sy, options);
    return drawn;
  }

  function hover(ctx, canvas, plot, series, sx, sy, options) {
    const at = state.hover[canvas.id];
    if (at === undefined || at < plot.left || at > plot.right) return;
    let best = null;
    for (const p of series[0].points) {
      if (!p.faded && (best === null || Math.abs(sx(p.x) - at) < Math.abs(sx(best.x) - at))) best = p;
    }
    if (best === null) return;
    const x = sx(best.x);
    ctx.strokeStyle = "#8891a3";
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(x, plot.top);
    ctx.lineTo(x, plot.bottom);
    ctx.stroke();
    ctx.setLineDash([]);
    const record = best.record;
    const lines = [`round ${record.round + 1}` + (options.xTime ? ` · ${duration(record.simulated_time)}` : "")];
    for (const s of series) {
      const point = s.points.find((p) => p.record === record);
      if (point && isNumber(point.y)) lines.push(`${s.label}: ${number(point.y, options.digits)}`);
    }
    const boxWidth = Math.max(...lines.map((line) => ctx.measureText(line).width)) + 12;
    const left = x + boxWidth + 8 > plot.right ? x - boxWidth - 8 : x + 8;
    ctx.fillStyle = "rgba(255,255,255,0.92)";
    ctx.strokeStyle = "#c4cad6";
    ctx.fillRect(left, plot.top + 4, boxWidth, lines.length * 14 + 8);
    ctx.strokeRect(left, plot.top + 4, boxWidth, lines.length * 14 + 8);
    ctx.fillStyle = "#1d2330";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    lines.forEach((line, i) => ctx.fillText(line, left + 6, plot.top + 9 + i * 14));
    if (best.y !== undefined && isNumber(best.y)) {
      ctx.fillStyle = series[0].color;
      ctx.beginPath();
      ctx.arc(x, sy(best.y), 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  function axes(ctx, plot, yTicks, xTicks, xLabel) {
    ctx.strokeStyle = "#e4e7ed";
    ctx.fillStyle = "#6b7385";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const [y, label] of yTicks) {
      ctx.beginPath();
      ctx.moveTo(plot.left, Math.round(y) + 0.5);
      ctx.lineTo(plot.right, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillText(label, plot.left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const [x, label] of xTicks) {
      if (x < plot.left - 1 || x > plot.right + 1) continue;
      ctx.fillText(label, x, plot.bottom + 5);
    }
    ctx.strokeStyle = "#9aa2b1";
    ctx.beginPath();
    ctx.moveTo(plot.left + 0.5, plot.top);
    ctx.lineTo(plot.left + 0.5, plot.bottom + 0.5);
    ctx.lineTo(plot.right, plot.bottom + 0.5);
    ctx.stroke();
    if (xLabel) {
      ctx.textAlign = "right";
      ctx.fillText(xLabel, plot.right, plot.bottom + 17);
    }
  }

  // Legend entries in lines that fit the plot's width; the plot starts below the last line.
  function legendLayout(ctx, series, plot) {
    const items = [];
    let x = plot.left;
    let y = 13;
    for (const s of series) {
      const width = ctx.measureText(s.label).width + 30;
      if (x + width > plot.right && x > plot.left) {
        x = plot.left;
        y += 16;
      }
      items.push({ series: s, x, y });
      x += width;
    }
    return { items, bottom: y + 5 };
  }

  function legend(ctx, items) {
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const { series, x, y } of items) {
      ctx.fillStyle = series.color;
      ctx.fillRect(x, y - 5, 10, 10);
      ctx.fillStyle = "#1d2330";
      ctx.fillText(series.label, x + 14, y);
    }
  }

  function empty(ctx, width, height, text) {
    ctx.fillStyle = "#8891a3";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text, width / 2, height / 2);
  }

  // ---- the device-records panel ----

  function drawRecords() {
    const matrix = state.matrix;
    $("records-missing").hidden = matrix !== null;
    $("records-panel").hidden = matrix === null;
    if (matrix === null) {
      $("records-missing").textContent = state.recordsAvailable
        ? "Device records exist but hold no round yet."
        : "Device records are not available for this run (yet): they appear once the orchestrator writes " +
          "devices/records/ under its output folder.";
      return;
    }
    const repetitions = state.status.repetitions;
    $("records-repetition").textContent = repetitions > 1 ? `repetition ${matrix.repetition + 1}/${repetitions}` : "";
    const bins = matrix.deviceBin === 1 && matrix.roundBin === 1
      ? "one cell per device and round"
      : `binned: each cell is ${plural(matrix.deviceBin, "device")} × ${plural(matrix.roundBin, "round")}`;
    $("matrix-bins").textContent = `${matrix.devices} devices · ${bins} · blue: selected for fit (darker: more often), red: failed`;
    drawMatrix($("chart-matrix"), matrix);
    const jain = [{
      label: "Jain's index", color: COLORS[0],
      points: matrix.jain.map((j) => ({ x: j.round + 1, y: j.value, group: 0, faded: false, record: { round: j.round } })),
    }];
    const options = { yMin: 0, yMax: 1, digits: 3, xLabel: "round", xRange: [0, state.status.rounds] };
    $("chart-jain").dataset.points = String(lineChart($("chart-jain"), jain, options));
    drawHistogram($("chart-histogram"), state.histogram);
  }

  function drawMatrix(canvas, matrix) {
    const { ctx, width, height } = setup(canvas);
    const plot = { left: MARGIN.left, top: 8, right: width - MARGIN.right, bottom: height - MARGIN.bottom };
    // Shares of device-rounds selected per cell, scaled to the largest so that k = 0.05 is still visible.
    let top = 0;
    const share = (index, column, row) => matrix.selected[index] / (capacity(matrix, row) * matrix.roundsIn[column]);
    for (let column = 0; column < matrix.columns; column++) {
      if (matrix.roundsIn[column] === 0) continue;
      for (let row = 0; row < matrix.rows; row++) top = Math.max(top, share(column * matrix.rows + row, column, row));
    }
    // One pixel per cell, scaled up unsmoothed: 20,000 cells cost one drawImage, not 60,000 fillRects.
    const image = new ImageData(matrix.columns, matrix.rows);
    for (let column = 0; column < matrix.columns; column++) {
      const rounds = matrix.roundsIn[column];
      for (let row = 0; row < matrix.rows; row++) {
        const index = column * matrix.rows + row;
        let rgb = [241, 243, 246]; // no round yet
        if (rounds > 0) {
          const selected = top > 0 ? share(index, column, row) / top : 0;
          rgb = blend([255, 255, 255], [47, 111, 219], selected > 0 ? 0.12 + 0.88 * selected : 0);
          const failed = matrix.failed[index] / (capacity(matrix, row) * rounds);
          if (failed > 0) rgb = blend(rgb, [217, 48, 37], Math.min(0.25 + failed / Math.max(top, 1e-9), 1));
        }
        image.data.set([...rgb, 255], 4 * (row * matrix.columns + column));
      }
    }
    const cells = document.createElement("canvas");
    cells.width = matrix.columns;
    cells.height = matrix.rows;
    cells.getContext("2d").putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cells, plot.left, plot.top, plot.right - plot.left, plot.bottom - plot.top);
    const rounds = matrix.columns * matrix.roundBin;
    const yTicks = ticks(0, matrix.devices, 4)
      .filter((d) => d <= matrix.devices)
      .map((d) => [plot.top + (d / (matrix.rows * matrix.deviceBin)) * (plot.bottom - plot.top), tickLabel(d)]);
    const xTicks = ticks(0, rounds, 8).map((r) => [plot.left + (r / rounds) * (plot.right - plot.left), tickLabel(r)]);
    axes(ctx, plot, yTicks, xTicks, "round");
    ctx.save();
    ctx.translate(12, (plot.top + plot.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillStyle = "#6b7385";
    ctx.fillText("device", 0, 0);
    ctx.restore();
    canvas.dataset.rounds = String(matrix.roundsIn.reduce((a, b) => a + b, 0));
    canvas.dataset.top = top.toFixed(4);
  }

  function blend(under, over, alpha) {
    return under.map((value, i) => Math.round(value * (1 - alpha) + over[i] * alpha));
  }

  function capacity(matrix, row) {
    return Math.min(matrix.deviceBin, matrix.devices - row * matrix.deviceBin);
  }

  function drawHistogram(canvas, histogram) {
    const { ctx, width, height } = setup(canvas);
    if (!histogram || histogram.counts.length === 0) {
      empty(ctx, width, height, "no selection yet");
      return;
    }
    const plot = { left: MARGIN.left, top: 12, right: width - MARGIN.right, bottom: height - MARGIN.bottom };
    const counts = histogram.counts;
    const yTicks = ticks(0, Math.max(...counts), 4);
    const yMax = yTicks[yTicks.length - 1] || 1;
    const sy = (v) => plot.bottom - (v / yMax) * (plot.bottom - plot.top);
    const barWidth = (plot.right - plot.left) / counts.length;
    const label = (i) => histogram.width === 1 ? String(i) : `${i * histogram.width}–${(i + 1) * histogram.width - 1}`;
    const every = Math.ceil(counts.length / Math.max(1, Math.floor((plot.right - plot.left) / 48)));
    const xTicks = counts.map((_, i) => i).filter((i) => i % every === 0).map((i) => [plot.left + (i + 0.5) * barWidth, label(i)]);
    axes(ctx, plot, yTicks.map((v) => [sy(v), tickLabel(v)]), xTicks, "times selected");
    ctx.fillStyle = COLORS[0];
    counts.forEach((count, i) => {
      if (count > 0) ctx.fillRect(plot.left + i * barWidth + 1, sy(count), Math.max(barWidth - 2, 1), plot.bottom - sy(count));
    });
  }

  // ---- numbers ----

  // Min and max by a loop: Math.min(...values) overflows the call stack at some 100,000 values.
  function extent(values) {
    let low = Infinity;
    let high = -Infinity;
    for (const v of values) {
      if (v < low) low = v;
      if (v > high) high = v;
    }
    return [low, high];
  }

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function number(value, digits) {
    return isNumber(value) ? value.toFixed(digits) : "–";
  }

  function plural(count, word) {
    return `${count} ${word}${count === 1 ? "" : "s"}`;
  }

  function duration(seconds) {
    if (!isNumber(seconds)) return "–";
    if (Math.abs(seconds) < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
    if (Math.abs(seconds) < 7200) return `${(seconds / 60).toFixed(1)} min`;
    if (Math.abs(seconds) < 172800) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} d`;
  }

  function tickLabel(value) {
    const size = Math.abs(value);
    if (size >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`;
    if (size >= 1e4) return `${+(value / 1e3).toPrecision(3)}k`;
    return String(+value.toPrecision(4));
  }

  // Ticks of simulated seconds at round numbers of one unit (10 min, 2 h), not at 16.7 min.
  function timeTicks(min, max, count) {
    const span = Math.max(Math.abs(min), Math.abs(max));
    const [unit, name] = span < 120 ? [1, "s"] : span < 7200 ? [60, "min"] : span < 172800 ? [3600, "h"] : [86400, "d"];
    return ticks(min / unit, max / unit, count).map((v) => [v * unit, `${tickLabel(v)} ${name}`]);
  }

  // About `count` round-numbered ticks covering [min, max].
  function ticks(min, max, count) {
    if (!(max > min)) max = min + 1;
    const raw = (max - min) / count;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const normal = raw / magnitude;
    const step = (normal < 1.5 ? 1 : normal < 3 ? 2 : normal < 7 ? 5 : 10) * magnitude;
    const result = [];
    for (let v = Math.floor(min / step) * step; v <= max + step * 0.999; v += step) result.push(+v.toPrecision(12));
    return result;
  }

  // ---- wiring ----

  function start() {
    takeTokenFromFragment();
    $("auth-form").addEventListener("submit", submitToken);
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      askToken("Token forgotten: enter it again to go on.");
    });
    for (const input of document.querySelectorAll("input[name=xaxis]")) {
      input.addEventListener("change", () => {
        state.xAxis = input.value;
        scheduleDraw();
      });
    }
    for (const canvas of document.querySelectorAll("canvas")) {
      canvas.addEventListener("mousemove", (event) => {
        state.hover[canvas.id] = event.clientX - canvas.getBoundingClientRect().left;
        scheduleDraw(canvas.id);
      });
      canvas.addEventListener("mouseleave", () => {
        delete state.hover[canvas.id];
        scheduleDraw(canvas.id);
      });
    }
    window.addEventListener("resize", () => scheduleDraw());
    // The link pasted into a tab that already shows the page changes only the fragment: no reload.
    window.addEventListener("hashchange", () => {
      if (takeTokenFromFragment()) {
        $("auth").hidden = true;
        poll();
      }
    });
    poll();
  }

  start();
})();
