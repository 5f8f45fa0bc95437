// The workflow document the designer edits: the stored definition as JSON, changed only by these pure
// functions (each returns a new document), so what is saved is what was drawn, key for key.

export type NodeType = "trigger" | "condition" | "action" | "delay" | "approval" | "report" | "join";
export const NODE_TYPES: NodeType[] = ["trigger", "condition", "action", "delay", "approval", "report", "join"];

export interface Position {
  x: number;
  y: number;
}

export interface WorkflowNode {
  id: string;
  type: NodeType;
  position?: Position;
  [field: string]: unknown;
}

export interface Connection {
  from: string;
  to: string;
  when?: string;
}

export interface WorkflowDocument {
  nodes: WorkflowNode[];
  connections?: Connection[];
  [field: string]: unknown;
}

/** The ``when`` a connection out of a node of this type must carry; none for the others. */
export function branchesOf(type: NodeType | undefined): string[] {
  if (type === "condition") return ["true", "false"];
  if (type === "approval") return ["approved", "rejected"];
  return [];
}

/** A new node's fields beyond id, type and position: the least each type needs, to be filled in. */
export const NEW_NODE: Record<NodeType, Record<string, unknown>> = {
  trigger: { trigger: { type: "manual" } },
  condition: { conditions: { all: [] } },
  action: { action: { type: "send_notification", channel: "in_app", to: [], body: "" } },
  delay: { duration: "1h" },
  approval: { subject: "", assignees: [], timeout: "1d" },
  report: { report: "" },
  join: {},
};

const ROUND = (value: number) => Math.round(value);
/** Positions are stored within ±100,000 (the format's bound). */
const BOUND = 100_000;
const clamp = (value: number) => Math.max(-BOUND, Math.min(BOUND, ROUND(value)));

export function connections(doc: WorkflowDocument): Connection[] {
  return doc.connections ?? [];
}

export function moveNode(doc: WorkflowDocument, id: string, position: Position): WorkflowDocument {
  return {
    ...doc,
    nodes: doc.nodes.map((node) => (node.id === id ? { ...node, position: { x: clamp(position.x), y: clamp(position.y) } } : node)),
  };
}

/** A connection from ``from`` to ``to`` (with ``when`` out of a condition or approval); the document
 * unchanged when that connection exists or would join a node to itself. */
export function connect(doc: WorkflowDocument, from: string, to: string, when?: string): WorkflowDocument {
  if (from === to) return doc;
  const edge: Connection = when ? { from, to, when } : { from, to };
  if (connections(doc).some((c) => sameConnection(c, edge))) return doc;
  return { ...doc, connections: [...connections(doc), edge] };
}

export function disconnect(doc: WorkflowDocument, edge: Connection): WorkflowDocument {
  return { ...doc, connections: connections(doc).filter((c) => !sameConnection(c, edge)) };
}

export function sameConnection(a: Connection, b: Connection): boolean {
  return a.from === b.from && a.to === b.to && (a.when ?? "") === (b.when ?? "");
}

/** A node of ``type`` with a fresh id (``condition-2``) at ``position``. */
export function addNode(doc: WorkflowDocument, type: NodeType, position: Position): { doc: WorkflowDocument; id: string } {
  const taken = new Set(doc.nodes.map((node) => node.id));
  let n = 1;
  while (taken.has(`${type}-${n}`)) n += 1;
  const id = `${type}-${n}`;
  const node: WorkflowNode = { id, type, ...structuredClone(NEW_NODE[type]), position: { x: clamp(position.x), y: clamp(position.y) } };
  return { doc: { ...doc, nodes: [...doc.nodes, node] }, id };
}

/** The document without the node and every connection into or out of it. */
export function removeNode(doc: WorkflowDocument, id: string): WorkflowDocument {
  return {
    ...doc,
    nodes: doc.nodes.filter((node) => node.id !== id),
    connections: connections(doc).filter((c) => c.from !== id && c.to !== id),
  };
}

/** The node with its fields replaced by ``fields`` (its id, type and position kept). */
export function replaceNode(doc: WorkflowDocument, id: string, fields: Record<string, unknown>): WorkflowDocument {
  return {
    ...doc,
    nodes: doc.nodes.map((node) =>
      node.id === id ? { ...fields, id: node.id, type: node.type, ...(node.position ? { position: node.position } : {}) } : node,
    ),
  };
}

/** Where each node is drawn: its stored position, else a place by its depth from the trigger (left to
 * right) and its order among the nodes at that depth (top to bottom). */
export function layout(doc: WorkflowDocument): Map<string, Position> {
  const depth = new Map<string, number>();
  const queue = doc.nodes.filter((node) => node.type === "trigger").map((node) => node.id);
  queue.forEach((id) => depth.set(id, 0));
  for (let i = 0; i < queue.length; i++) {
    for (const c of connections(doc)) {
      if (c.from === queue[i] && !depth.has(c.to)) {
        depth.set(c.to, (depth.get(queue[i]) ?? 0) + 1);
        queue.push(c.to);
      }
    }
  }
  const rows = new Map<number, number>();
  const placed = new Map<string, Position>();
  for (const node of doc.nodes) {
    if (node.position) {
      placed.set(node.id, node.position);
      continue;
    }
    const column = depth.get(node.id) ?? 0;
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    placed.set(node.id, { x: column * 240, y: row * 120 });
  }
  return placed;
}

export interface Problem {
  path: string;
  message: string;
  code?: string;
}

/** What an error's JSON path names: a node (by id) or a connection (by index), or the whole workflow. */
export function targetOf(problem: Problem, doc: WorkflowDocument): { node?: string; connection?: number } {
  const node = /^nodes\[(\d+)\]/.exec(problem.path);
  if (node) {
    const found = doc.nodes[Number(node[1])];
    return found ? { node: found.id } : {};
  }
  const edge = /^connections\[(\d+)\]/.exec(problem.path);
  if (edge && Number(edge[1]) < connections(doc).length) return { connection: Number(edge[1]) };
  return {};
}

/** What changed from ``before`` (an older version) to ``after``, node by node (by id). */
export interface NodeDiff {
  added: string[];
  removed: string[];
  /** Their configuration changed. */
  changed: string[];
  /** Only their position changed. */
  moved: string[];
  connectionsAdded: Connection[];
  connectionsRemoved: Connection[];
}

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value as Record<string, unknown>).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stable((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function nodeDiff(before: WorkflowDocument, after: WorkflowDocument): NodeDiff {
  const old = new Map(before.nodes.map((node) => [node.id, node]));
  const now = new Map(after.nodes.map((node) => [node.id, node]));
  const diff: NodeDiff = { added: [], removed: [], changed: [], moved: [], connectionsAdded: [], connectionsRemoved: [] };
  for (const [id, node] of now) {
    const was = old.get(id);
    if (!was) diff.added.push(id);
    else {
      const { position: p1, ...a } = was;
      const { position: p2, ...b } = node;
      if (stable(a) !== stable(b)) diff.changed.push(id);
      else if (stable(p1 ?? null) !== stable(p2 ?? null)) diff.moved.push(id);
    }
  }
  for (const id of old.keys()) if (!now.has(id)) diff.removed.push(id);
  diff.connectionsAdded = connections(after).filter((c) => !connections(before).some((d) => sameConnection(c, d)));
  diff.connectionsRemoved = connections(before).filter((c) => !connections(after).some((d) => sameConnection(c, d)));
  return diff;
}

/** A workflow template's body from the document: the nodes of `ids` (all of them when empty) and the
 * connections between them, without the document's own fields (`kind`, `name`, `organization`). */
export function templateBody(doc: WorkflowDocument, ids: string[]): WorkflowDocument {
  const { kind, name, organization, schema_version, nodes, connections: edges, ...rest } = doc;
  void kind;
  void name;
  void organization;
  void schema_version;
  if (!ids.length) return { ...rest, nodes, connections: edges ?? [] };
  const chosen = new Set(ids);
  return {
    nodes: nodes.filter((node) => chosen.has(node.id)),
    connections: (edges ?? []).filter((c) => chosen.has(c.from) && chosen.has(c.to)),
  };
}
