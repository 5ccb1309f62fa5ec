// Vite builds the reference web client into web/dist; the gateway serves it at /app (gateway/web-app.ts).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/app/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  // `vite` (dev server) proxies the API to a running `npm start`.
  server: { proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true }, '/dev': 'http://127.0.0.1:4000' } },
});
