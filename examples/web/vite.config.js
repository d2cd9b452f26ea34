import { defineConfig } from "vite";

// Relative asset paths: the built page works from any folder or static server.
export default defineConfig({
  base: "./",
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: { host: "127.0.0.1", port: 5173, strictPort: true },
});
