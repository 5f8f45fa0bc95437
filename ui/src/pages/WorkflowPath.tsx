import type { ActionResult, TracedItem, WorkflowDocument, WorkflowNode } from "../api";

type Connection = { from: string; to: string; when?: string };

/** A workflow's graph and what its run recorded per node (the node's id is its result's ``action_id``). */
export interface WorkflowRun {
  nodes: WorkflowNode[];
  connections: Connection[];
  results: Map<string, ActionResult>;
}

export function workflowRun(document: WorkflowDocument, actions: ActionResult[]): WorkflowRun {
  return {
    nodes: document.definition.nodes ?? [],
    connections: document.definition.connections ?? [],
    results: new Map(actions.map((action) => [action.action_id, action])),
  };
}

/** The node ids in the order a run reaches them: from the trigger, breadth first. */
export function nodeOrder(run: WorkflowRun): string[] {
  const starts = run.nodes.filter((node) => node.type === "trigger").map((node) => node.id);
  const seen = new Set(starts);
  const queue = [...starts];
  for (let i = 0; i < queue.length; i++) {
    for (const edge of run.connections) {
      if (edge.from === queue[i] && !seen.has(edge.to)) {
        seen.add(edge.to);
        queue.push(edge.to);
      }
    }
  }
  return [...queue, ...run.nodes.map((node) => node.id).filter((id) => !seen.has(id))];
}

/** How an item is named in a node's output: ``event:<id>`` for an event, else its key as canonical JSON
 * (sorted keys, no spaces), as the tasks write it. */
export function identityOf(item: TracedItem): string {
  return item.event_id !== undefined ? `event:${item.event_id}` : canonical(item.key);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

interface Branches {
  true?: { count: number; keys: string[] };
  false?: { count: number; keys: string[] };
}

export interface Step {
  node: string;
  branch?: "true" | "false";
  /** The way on is unknown: the node logged only its first keys, and this item was not among them. */
  unknown?: boolean;
}

/** The nodes a matched item went through: along a condition's branch that listed it, and on to every
 * node after another node that ran. */
export function itemPath(run: WorkflowRun, identity: string): Step[] {
  const types = new Map(run.nodes.map((node) => [node.id, node.type]));
  const steps: Step[] = [];
  const seen = new Set<string>();
  const queue = run.nodes.filter((node) => node.type === "trigger").map((node) => node.id);
  queue.forEach((id) => seen.add(id));
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    const step: Step = { node: id };
    steps.push(step);
    let follow = run.connections.filter((edge) => edge.from === id);
    if (types.get(id) === "condition") {
      const output = (run.results.get(id)?.output ?? {}) as Branches;
      const branch = output.true?.keys.includes(identity) ? "true" : output.false?.keys.includes(identity) ? "false" : undefined;
      if (!branch) {
        step.unknown = true;
        continue;
      }
      step.branch = branch;
      follow = follow.filter((edge) => (edge.when ?? "true") === branch);
    }
    for (const edge of follow) {
      if (!seen.has(edge.to) && run.results.has(edge.to)) {
        seen.add(edge.to);
        queue.push(edge.to);
      }
    }
  }
  return steps;
}

/** Each node of the workflow in the order the run reaches it: ran (with its status and items), or not. */
export function WorkflowNodes({ run, evaluated }: { run: WorkflowRun; evaluated: number | undefined }) {
  const types = new Map(run.nodes.map((node) => [node.id, node.type]));
  return (
    <table className="nodes">
      <caption className="visually-hidden">The workflow's nodes in this run</caption>
      <thead>
        <tr>
          <th scope="col">node</th>
          <th scope="col">type</th>
          <th scope="col">status</th>
          <th scope="col">items</th>
        </tr>
      </thead>
      <tbody>
        {nodeOrder(run).map((id) => {
          const type = types.get(id) ?? "?";
          const result = run.results.get(id);
          const output = (result?.output ?? {}) as Branches & { items?: number };
          const ran = type === "trigger" || result !== undefined;
          return (
            <tr key={id}>
              <th scope="row">{id}</th>
              <td>{type}</td>
              <td className={ran ? `status status-${result?.status ?? "success"}` : "not-reached"}>
                {type === "trigger" ? "started the run" : (result?.status ?? "not reached")}
              </td>
              <td>
                {type === "trigger"
                  ? `${evaluated ?? "–"} tested`
                  : output.true || output.false
                    ? `${output.true?.count ?? 0} went true, ${output.false?.count ?? 0} went false`
                    : typeof output.items === "number"
                      ? output.items
                      : ""}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** One item's way through the workflow, as a list of the nodes it reached. */
export function ItemPath({ run, item }: { run: WorkflowRun; item: TracedItem }) {
  const steps = itemPath(run, identityOf(item));
  return (
    <div>
      <span>Path: </span>
      <ol className="path" aria-label="path through the workflow">
        {steps.map((step) => (
          <li key={step.node}>
            {step.node}
            {step.branch ? ` (${step.branch})` : ""}
            {step.unknown ? " (which way is not logged: only a node's first 50 items are)" : ""}
          </li>
        ))}
      </ol>
    </div>
  );
}
