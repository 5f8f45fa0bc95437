import type { BoardDay } from "./api";
import { percent } from "./format";

const WIDTH = 84;
const HEIGHT = 20;
const PAD = 2;

/** A definition's daily success rate as a small line; days without a finished run are gaps. The numbers
 * are in the label for screen readers, and a title for a pointer. */
export function Sparkline({ days }: { days: BoardDay[] }) {
  const step = days.length > 1 ? (WIDTH - 2 * PAD) / (days.length - 1) : 0;
  const segments: string[][] = [];
  let open: string[] | null = null;
  days.forEach((day, i) => {
    if (day.success_rate === null) {
      open = null;
      return;
    }
    const point = `${(PAD + i * step).toFixed(1)},${(PAD + (1 - day.success_rate) * (HEIGHT - 2 * PAD)).toFixed(1)}`;
    if (!open) segments.push((open = []));
    open.push(point);
  });
  const rated = days.filter((day) => day.success_rate !== null);
  const label =
    rated.length === 0
      ? `no run succeeded or failed in ${days.length} days`
      : `success rate by day: ${rated.map((day) => `${day.day.slice(5)} ${percent(day.success_rate)}`).join(", ")}`;
  return (
    <svg className="sparkline" width={WIDTH} height={HEIGHT} role="img" aria-label={label}>
      <title>{label}</title>
      <line x1="0" x2={WIDTH} y1={HEIGHT - PAD} y2={HEIGHT - PAD} className="baseline" />
      {segments.map((points, i) =>
        points.length === 1 ? (
          <circle key={i} cx={points[0].split(",")[0]} cy={points[0].split(",")[1]} r="2" />
        ) : (
          <polyline key={i} points={points.join(" ")} />
        ),
      )}
    </svg>
  );
}
