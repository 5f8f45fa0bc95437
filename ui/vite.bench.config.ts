import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// benchmarks/ui.py builds the bare React Flow page with this (into a temporary folder it passes with
// --outDir); it is not part of the plugin's bundle.
export default defineConfig({
  plugins: [react()],
  root: "bench",
  base: "./",
  build: { emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 800, rollupOptions: { input: "bench/bare-flow.html" } },
});
