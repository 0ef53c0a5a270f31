'use strict';

// One line per event on stderr, in the balancer's text format:
// "2026-01-02T03:04:05.678Z INFO message".
function createLog(stream = process.stderr) {
  const line = (level) => (message) =>
    stream.write(`${new Date().toISOString()} ${level} ${message}\n`);
  return {info: line('INFO'), warn: line('WARN'), error: line('ERROR')};
}

module.exports = { createLog };
