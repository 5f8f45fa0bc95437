// The REST view, called from the page Airflow shows in its iframe: same origin, signed in by the
// `_token` cookie Airflow's UI sets (no second login). The page lives at /automations/ui/, the API
// at /automations/api/v1/.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | undefined>;

export function apiUrl(path: string, query: Query = {}, base: string = document.baseURI): string {
  const url = new URL(`../api/v1/${path.replace(/^\//, "")}`, base);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  return url.toString();
}

export async function getJson<T>(path: string, query: Query = {}): Promise<T> {
  const response = await fetch(apiUrl(path, query), {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new ApiError(response.status, await problem(response));
  return (await response.json()) as T;
}

async function problem(response: Response): Promise<string> {
  if (response.status === 401) return "Your Airflow session has ended: sign in to Airflow again.";
  try {
    const body = (await response.json()) as { detail?: unknown };
    if (typeof body.detail === "string") return body.detail;
    if (body.detail !== undefined) return JSON.stringify(body.detail);
  } catch {
    // not JSON: the status says enough
  }
  return `${response.status} ${response.statusText}`;
}

// -- the shapes the pages read (plugins/rule_engine/api/schemas*.py) ---------------------------------

export interface RunSummary {
  runs: number;
  no_match: number;
  success: number;
  failed: number;
  partial: number;
  evaluated: number;
  matched: number;
  acted: number;
  success_rate: number | null;
  failure_rate: number | null;
  partial_rate: number | null;
  match_rate: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
}

export interface SeriesPoint extends RunSummary {
  start: string;
}

export interface ErrorCount {
  kind: string;
  name: string;
  step: string;
  error_class: string;
  count: number;
  first_seen: string;
  last_seen: string;
}

export interface OrganizationAnalytics {
  organization: string;
  range: { since: string; until: string; bucket: "hour" | "day" };
  summary: RunSummary;
  series: SeriesPoint[];
  definitions: { kind: string; name: string; summary: RunSummary }[];
  errors: ErrorCount[];
}

export interface Me {
  username: string;
  platform_admin: boolean;
  memberships: { organization: string; role: string }[];
}

export interface ConsumerLag {
  connection: string;
  table: string;
  consumer: string;
  rules: string[];
  status: "ok" | "behind" | "stalled" | "no_outbox" | "unreachable";
  pending: number | null;
  pending_capped: boolean;
  oldest_pending_age_seconds: number | null;
}

export interface HealthReport {
  status: "ok" | "degraded";
  consumers: ConsumerLag[];
}
