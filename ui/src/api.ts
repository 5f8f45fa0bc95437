// The REST view, called from the page Airflow shows in its iframe: same origin, signed in by the
// `_token` cookie Airflow's UI sets (no second login). The page lives at /automations/ui/, the API
// at /automations/api/v1/.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The answer's JSON body, when it had one (a 422's problems). */
    readonly body?: unknown,
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

const prefetched = new Map<string, Promise<unknown>>();

/** Start a GET before the page that needs it is drawn (a deep link's definition, while the shell asks who
 * is signed in); :func:`takePrefetched` hands it over once, then a GET is a GET again. */
export function prefetch(path: string, query: Query = {}): void {
  const url = apiUrl(path, query);
  const request = getJson(path, query);
  request.catch(() => undefined); // its taker sees the failure; an untaken one is not an unhandled error
  prefetched.set(url, request);
}

/** The GET :func:`prefetch` started for this path and query, or a new one. */
export function takePrefetched<T>(path: string, query: Query = {}): Promise<T> {
  const url = apiUrl(path, query);
  const found = prefetched.get(url);
  prefetched.delete(url);
  return (found as Promise<T> | undefined) ?? getJson<T>(path, query);
}

async function problemBody(response: Response): Promise<unknown> {
  try {
    return await response.clone().json();
  } catch {
    return undefined;
  }
}

async function problem(response: Response): Promise<string> {
  if (response.status === 401) return "Your Airflow session has ended: sign in to Airflow again.";
  try {
    const body = (await response.clone().json()) as { detail?: unknown };
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

export interface ActionResult {
  action_id: string;
  status: string;
  attempts: number;
  output: unknown;
  error: string | null;
  updated_at: string;
}

export interface RunSummaryRow {
  id: number;
  rule_name: string;
  dag_id: string;
  run_id: string;
  status: string;
  trigger_type: string;
  matched_count: number;
  started_at: string;
  finished_at: string | null;
  actions: ActionResult[];
}

export interface TraceNode {
  kind: string;
  path: string;
  result: boolean | null;
  skipped: boolean;
  children: TraceNode[];
  field?: string;
  operator?: string;
  expected?: unknown;
  actual?: unknown;
  reason?: string;
}

export interface TracedItem {
  key?: unknown;
  event_id?: string | number;
  operation?: string;
  matched: boolean;
  ignored?: string;
  node?: TraceNode | null;
}

export interface RunDetail extends RunSummaryRow {
  trigger_context: Record<string, unknown>;
  trace: { evaluated?: number; matched?: number; rows?: TracedItem[] } | null;
}

export interface Page<T> {
  items: T[];
  has_more: boolean;
}

/** ``rule__acme__flag-orders`` → the kind, organization and name; null for a DAG that is not ours. */
export function definitionOf(dagId: string): { kind: string; organization: string; name: string } | null {
  const parts = dagId.split("__");
  if (parts.length !== 3 || !["rule", "workflow", "report"].includes(parts[0])) return null;
  return { kind: parts[0], organization: parts[1], name: parts[2] };
}

export async function postJson<T>(path: string, query: Query = {}): Promise<T> {
  const response = await fetch(apiUrl(path, query), {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new ApiError(response.status, await problem(response));
  return (await response.json()) as T;
}

export interface StepSummary {
  step: string;
  results: number;
  success: number;
  failed: number;
  skipped: number;
  attempts: number;
  retries: number;
  acted: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

export interface DefinitionAnalytics {
  organization: string;
  kind: string;
  name: string;
  range: { since: string; until: string; bucket: "hour" | "day" };
  summary: RunSummary;
  series: SeriesPoint[];
  steps: StepSummary[];
  errors: ErrorCount[];
}

export type DefinitionState = "active" | "paused" | "render_error";

export interface BoardDay {
  day: string;
  runs: number;
  succeeded: number;
  failed: number;
  success_rate: number | null;
}

export interface DefinitionCard {
  kind: "rule" | "workflow" | "report";
  name: string;
  dag_id: string;
  title: string;
  description: string;
  owner: string | null;
  state: DefinitionState;
  render_error: string | null;
  active: boolean;
  trigger_type: string | null;
  trigger: string;
  version: number;
  etag: string;
  updated_at: string;
  updated_by: string;
  last_run: { run_id: string; status: string; started_at: string; finished_at: string | null } | null;
  runs: number;
  success_rate: number | null;
  days: BoardDay[];
}

export interface DefinitionBoard {
  items: DefinitionCard[];
  limit: number;
  offset: number;
  has_more: boolean;
  total: number;
  states: Record<DefinitionState, number>;
}

/** A JSON merge patch of a definition, guarded by the ETag it was read with (412 when it changed since). */
export async function patchJson<T>(path: string, body: unknown, etag: string, query: Query = {}): Promise<T> {
  const response = await fetch(apiUrl(path, query), {
    method: "PATCH",
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/merge-patch+json", "If-Match": etag },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await problem(response));
  return (await response.json()) as T;
}

/** The roles that may change definitions. */
export function canEdit(me: Me, organization: string): boolean {
  if (me.platform_admin) return true;
  const role = me.memberships.find((m) => m.organization === organization)?.role;
  return role === "editor" || role === "admin";
}

export interface WorkflowNode {
  id: string;
  type: string;
  title?: string;
}

export interface WorkflowDocument {
  name: string;
  definition: { nodes?: WorkflowNode[]; connections?: { from: string; to: string; when?: string }[] };
}

export interface ReportSummary {
  runs: number;
  by_status: Record<string, number>;
  p50_ms: number | null;
  p95_ms: number | null;
  bytes: number;
  bytes_per_run: number | null;
  deliveries: number;
  deliveries_by_status: Record<string, number>;
  deliveries_by_type: Record<string, number>;
  attempts: number;
}

export interface ReportAnalytics {
  organization: string;
  summary: ReportSummary;
}

export interface ReportRun {
  id: number;
  dag_id: string;
  run_id: string;
  status: string;
  interval_start: string;
  interval_end: string;
  files: Record<string, { file: string; bytes: number }>;
  error: string | null;
  started_at: string;
  deliveries: { index: number; type: string; target: string; status: string; attempts: number; error: string | null }[];
}

/** A request with a JSON body (``POST``, ``PUT``) and extra headers such as ``If-Match``. */
export async function sendJson<T>(
  method: "POST" | "PUT",
  path: string,
  body: unknown,
  { query = {}, headers = {} }: { query?: Query; headers?: Record<string, string> } = {},
): Promise<T> {
  const response = await fetch(apiUrl(path, query), {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await problem(response), await problemBody(response));
  return (await response.json()) as T;
}
