#!/usr/bin/env node
// The `skein` bin. A committed shim rather than dist/main.js itself: npm links bins at install
// time, before anything is built, and skips a bin whose file does not exist yet, so a fresh
// `npm ci` would leave `npx skein` with nothing to run.
try {
  await import('../dist/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    console.error('skein: the CLI is not built yet; run `npm run build` (or `npm start`, which builds) first');
    process.exit(2);
  }
  throw err;
}
