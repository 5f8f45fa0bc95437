import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The build lands in the plugin (committed): the api-server serves it at /automations/ui/ without Node.
export default defineConfig({
  plugins: [react()],
  base: "./",
  build: {
    outDir: "../plugins/rule_engine/ui_dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  test: { environment: "jsdom", include: ["src/**/*.test.tsx", "src/**/*.test.ts"] },
});
