// pmx's preload for Node apps (NODE_OPTIONS=--require): a server that listens on a port the
// daemon holds takes the inherited socket instead (a cluster worker asks the daemon for it),
// process.send('ready') reaches the daemon, and a stop drains connections before the process
// exits. Apps need no change.
'use strict';
const net = require('net');

const inherited = JSON.parse(process.env.PMX_LISTEN || '[]'); // [{fd, port} | {fd, path}]
// The app's own Node children do not load the shim again: it is the app's, as PM2's is.
if (process.env.NODE_OPTIONS) {
  process.env.NODE_OPTIONS = process.env.NODE_OPTIONS
    .replace(`--require "${__filename}"`, '')
    .trim();
}

// As PM2: stack traces go through source maps when the script has a `.map` file beside it
// (or `source_map_support` says so), never with `disable_source_map_support`.
const sourceMaps = process.env.PMX_SOURCE_MAPS;
delete process.env.PMX_SOURCE_MAPS;
const script = process.argv[1];
const mapped = sourceMaps === '1'
  || (sourceMaps !== '0' && typeof script === 'string' && require('fs').existsSync(`${script}.map`));
if (mapped && typeof process.setSourceMapsEnabled === 'function') {
  process.setSourceMapsEnabled(true);
}

// As PM2: an unhandled promise rejection is logged, not fatal (Node's default is to crash),
// unless the app handles them itself.
process.on('unhandledRejection', (reason) => {
  if (process.listenerCount('unhandledRejection') > 1) return;
  console.error(
    'You have triggered an unhandledRejection, you may have forgotten to catch a Promise rejection:',
  );
  console.error(reason);
});
const channelFd = Number(process.env.PMX_CHANNEL_FD);
const deep = process.env.PMX_DEEP_MONITORING === '1';
// A process the app starts must not take the sockets over again.
for (const k of ['PMX_LISTEN', 'PMX_CHANNEL_FD', 'PMX_DEEP_MONITORING', 'LISTEN_FDS', 'LISTEN_PID',
  'LISTEN_FDNAMES']) {
  delete process.env[k];
}

// One line per message, both ways: READY=1, LISTENING=1, DRAINED=1 up; DRAIN, SHUTDOWN down.
let channel = null;
if (Number.isInteger(channelFd) && channelFd > 2) {
  try {
    channel = new net.Socket({ fd: channelFd, readable: true, writable: true });
    channel.on('error', () => {});
    channel.unref();
  } catch (_) {
    channel = null;
  }
}
function tell(line) {
  if (channel && !channel.destroyed) channel.write(line + '\n');
}

// As PM2's agent: the app's heap and event loop figures go to the daemon (`axm_monitor`),
// and so do the messages an app's own agent (@pm2/io) sends through process.send.
function report(type, data) {
  if (!channel) return;
  let line;
  try {
    line = JSON.stringify({ type, data });
  } catch (_) {
    return;
  }
  if (line.length < 16000) tell(`AXM ${line}`);
}
function agentMessage(message) {
  return message !== null && typeof message === 'object'
    && typeof message.type === 'string' && message.type.startsWith('axm:');
}
if (channel) {
  const { monitorEventLoopDelay } = require('perf_hooks');
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const mib = (bytes) => (bytes / 1048576).toFixed(2);
  const ms = (ns) => (Number.isFinite(ns) ? +(ns / 1e6).toFixed(2) : 0);
  const resources = () => (typeof process.getActiveResourcesInfo === 'function'
    ? process.getActiveResourcesInfo().length : 0);
  report('axm:option:configuration', { module_name: process.env.PMX_NAME });
  // Deep monitoring (PM2's `deep_monitoring`): garbage collection pauses and HTTP requests.
  const gc = { count: 0, ms: 0 };
  const http = { count: 0, times: [] };
  if (deep) {
    const { PerformanceObserver } = require('perf_hooks');
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        gc.count += 1;
        gc.ms += entry.duration;
      }
    }).observe({ entryTypes: ['gc'] });
    const emit = require('http').Server.prototype.emit;
    require('http').Server.prototype.emit = function (event, req, res) {
      if (event === 'request' && res && typeof res.once === 'function') {
        const started = process.hrtime.bigint();
        res.once('finish', () => {
          http.count += 1;
          if (http.times.length < 10000) http.times.push(Number(process.hrtime.bigint() - started) / 1e6);
        });
      }
      return emit.apply(this, arguments);
    };
  }
  let last = Date.now();
  const deepFigures = () => {
    const seconds = Math.max((Date.now() - last) / 1000, 0.001);
    last = Date.now();
    const sorted = http.times.sort((a, b) => a - b);
    const p95 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] : 0;
    const out = {
      'GC pauses': { value: gc.count, unit: 'per interval' },
      'GC pause time': { value: +gc.ms.toFixed(2), unit: 'ms' },
      'HTTP': { value: +((http.count * 60) / seconds).toFixed(1), unit: 'req/min' },
      'HTTP p95 latency': { value: +p95.toFixed(2), unit: 'ms' },
    };
    gc.count = 0;
    gc.ms = 0;
    http.count = 0;
    http.times = [];
    return out;
  };
  const figures = () => {
    const m = process.memoryUsage();
    report('axm:monitor', {
      ...(deep ? deepFigures() : {}),
      'Heap Size': { value: mib(m.heapTotal), unit: 'MiB' },
      'Used Heap Size': { value: mib(m.heapUsed), unit: 'MiB' },
      'Heap Usage': { value: +((100 * m.heapUsed) / m.heapTotal).toFixed(2), unit: '%' },
      'Event Loop Latency': { value: ms(loop.percentile(50)), unit: 'ms' },
      'Event Loop Latency p95': { value: ms(loop.percentile(95)), unit: 'ms' },
      'Active resources': { value: resources() },
    });
    loop.reset();
    setTimeout(figures, 5000).unref();
  };
  setTimeout(figures, 1000).unref();
}

const servers = new Set();
const listen = net.Server.prototype.listen;

// The inherited fd for a listen(...) call's port or path, if the daemon holds it.
function fdFor(args) {
  const a = args[0];
  let port;
  let path;
  if (a !== null && typeof a === 'object') {
    if (a.fd !== undefined || a.handle !== undefined || a._handle !== undefined) return undefined;
    port = a.port;
    path = a.path;
  } else if (typeof a === 'string' && Number.isNaN(Number(a))) {
    path = a;
  } else {
    port = a;
  }
  const found = path !== undefined
    ? inherited.find((l) => l.path === path)
    : inherited.find((l) => port !== undefined && port !== null && l.port === Number(port));
  return found && found.fd;
}

// A cluster worker (PM2's cluster mode) gets every socket from the daemon, so each of its
// servers is drained on a stop like an inherited one.
const worker = require('cluster').isWorker;

net.Server.prototype.listen = function (...args) {
  const fd = fdFor(args);
  if (fd === undefined) {
    if (worker) servers.add(this);
    return listen.apply(this, args);
  }
  const callback = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
  servers.add(this);
  this.once('listening', () => tell('LISTENING=1'));
  return listen.call(this, { fd }, callback);
};

if (typeof process.send !== 'function') {
  process.send = function (message, ...rest) {
    if (message === 'ready') tell('READY=1');
    else if (agentMessage(message)) report(message.type, message.data);
    const callback = rest.find((r) => typeof r === 'function');
    if (callback) process.nextTick(callback, null);
    return true;
  };
}

// Leave the rotation: stop accepting (the socket stays open in the daemon and the other
// instances, so nothing queued is lost), answer what is in flight with `Connection: close`,
// and resolve once no connection is left. Idle keep-alive connections get a short grace.
const IDLE_GRACE_MS = 500;
let drained = null;
function drain() {
  if (drained) return drained;
  drained = new Promise((resolve) => {
    const started = Date.now();
    for (const server of servers) {
      if (server.listening) net.Server.prototype.close.call(server);
      server.prependListener('request', (_req, res) => {
        res.shouldKeepAlive = false;
      });
    }
    const poll = () => {
      const late = Date.now() - started >= IDLE_GRACE_MS;
      let pending = servers.size;
      let open = 0;
      if (pending === 0) return resolve();
      for (const server of servers) {
        if (late && typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
        server.getConnections((_err, count) => {
          open += count || 0;
          if (--pending === 0) {
            if (open === 0) resolve();
            else setTimeout(poll, 20).unref();
          }
        });
      }
    };
    poll();
  });
  return drained;
}

if (channel) {
  let buffered = '';
  channel.on('data', (chunk) => {
    buffered += chunk.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line === 'DRAIN') drain().then(() => tell('DRAINED=1'));
      if (line === 'SHUTDOWN') process.emit('message', 'shutdown');
    }
  });
}

// Stopped by a signal and the app has no handler of its own: drain, then exit.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (process.listenerCount(signal) > 1) return;
    drain().then(() => process.exit(0));
  });
}
