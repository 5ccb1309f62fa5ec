// Vite builds the reference web client into web/dist; the gateway serves it at /app (gateway/web-app.ts).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig(({ command }) => ({
  root: import.meta.dirname,
  base: '/app/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  // The build is always React's production build, whatever NODE_ENV the builder runs under (vitest
  // sets `test`, which would otherwise leave React's development build in web/dist for `npm start`).
  define: command === 'build' ? { 'process.env.NODE_ENV': JSON.stringify('production') } : {},
  // `vite` (dev server) proxies the API to a running `npm start`.
  server: { proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true }, '/dev': 'http://127.0.0.1:4000' } },
}));
