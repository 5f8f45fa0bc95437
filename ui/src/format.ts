// How numbers read on the pages.

export function percent(value: number | null): string {
  return value === null ? "–" : `${(value * 100).toFixed(value >= 0.995 || value === 0 ? 0 : 1)} %`;
}

export function duration(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

export function count(value: number): string {
  return value.toLocaleString("en-US");
}

export function when(iso: string): string {
  return iso.replace("T", " ").replace(/:\d\d(\.\d+)?(Z|\+00:00)$/, " UTC");
}
