import "@xyflow/react/dist/style.css";

import {
  Background,
  Controls,
  MarkerType,
  MiniMap,
  Position as Side,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type Connection as FlowConnection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useState } from "react";

import { ApiError, sendJson, takePrefetched } from "../api";
import {
  addNode,
  branchesOf,
  connect,
  connections,
  disconnect,
  layout,
  moveNode,
  NODE_TYPES,
  removeNode,
  replaceNode,
  targetOf,
  type NodeDiff,
  type NodeType,
  type Problem,
  type WorkflowDocument,
} from "./model";
import { usePickers } from "../forms/pickers";
import { NodePanel } from "./NodePanel";
import { SaveAsTemplate, StartFromTemplate } from "./TemplatePanel";
import { TestPanel, type TestedNode } from "./TestPanel";
import { VersionsPanel } from "./VersionsPanel";

/** How long the designer waits after a change before it asks the REST view to validate. */
export const VALIDATE_DELAY_MS = 400;

interface Stored {
  definition: WorkflowDocument;
  etag: string;
  version: number;
}

interface Props {
  organization: string;
  /** The stored workflow to open; "" starts a new one. */
  name: string;
  editable: boolean;
}

/** What a new workflow starts from: a manual trigger, to be changed. */
export const NEW_WORKFLOW: WorkflowDocument = {
  kind: "workflow",
  name: "",
  nodes: [{ id: "start", type: "trigger", trigger: { type: "manual" }, position: { x: 0, y: 0 } }],
  connections: [],
};

/** The table the workflow's trigger watches (its conditions name this table's fields), if it says. */
export function triggerTable(doc: WorkflowDocument | undefined): string | undefined {
  const trigger = doc?.nodes.find((node) => node.type === "trigger")?.trigger as
    | { table?: unknown; target?: { table?: unknown } }
    | undefined;
  const table = trigger?.table ?? trigger?.target?.table;
  return typeof table === "string" ? table : undefined;
}

/** The visual designer of one stored workflow: its nodes at their stored positions, moved, connected and
 * added on a canvas; validated by the REST view as it changes; saved with the ETag it was read with. */
export function Designer(props: Props) {
  return (
    <ReactFlowProvider>
      <DesignerPage {...props} />
    </ReactFlowProvider>
  );
}

function DesignerPage({ organization, name, editable }: Props) {
  const [stored, setStored] = useState<Stored>();
  const [doc, setDoc] = useState<WorkflowDocument>();
  const [error, setError] = useState<string>();
  const [problems, setProblems] = useState<Problem[]>([]);
  const [message, setMessage] = useState<{ text: string; alert?: boolean }>();
  const [selected, setSelected] = useState<string>();
  // the nodes selected together (Ctrl/⌘-click, a Shift-drawn box): what "Save as a template" saves
  const [together, setTogether] = useState<string[]>([]);
  /** Select one node (or none) from the page: the palette, a problem's "Show", a removal. */
  const selectOnly = useCallback((id: string | undefined) => {
    setSelected(id);
    setTogether(id ? [id] : []);
  }, []);
  const [pending, setPending] = useState<{ from: string; to: string; branches: string[] }>();
  // the sizes React Flow measured: nodes are rebuilt from the document, and carry them (the minimap and
  // fitting need them)
  const [compared, setCompared] = useState<{ version: number; diff: NodeDiff }>();
  const [tested, setTested] = useState<TestedNode[]>();
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const flow = useReactFlow();
  const pickers = usePickers(organization, triggerTable(doc), selected !== undefined); // for the node forms

  useEffect(() => {
    if (!name) {
      setDoc(NEW_WORKFLOW);
      return;
    }
    takePrefetched<Stored>(`workflows/${encodeURIComponent(name)}`, { organization })
      .then((found) => {
        setStored(found);
        setDoc(found.definition);
      })
      .catch((problem: Error) => setError(problem.message));
  }, [organization, name]);

  // validation as you edit: the REST view's checks, a moment after the last change
  useEffect(() => {
    if (!doc || doc === (stored?.definition ?? NEW_WORKFLOW)) return;
    let current = true;
    const timer = setTimeout(() => {
      sendJson<{ valid: boolean; errors: Problem[] }>("POST", "workflows/validate", doc, { query: { organization } })
        .then((answer) => current && setProblems(answer.errors))
        .catch((problem: Error) => current && setMessage({ text: problem.message, alert: true }));
    }, VALIDATE_DELAY_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [doc, stored, organization]);

  const change = useCallback((next: WorkflowDocument) => {
    setDoc(next);
    setMessage(undefined);
  }, []);

  const byNode = useMemo(() => {
    const found = new Map<string, Problem[]>();
    if (doc) for (const p of problems) {
      const node = targetOf(p, doc).node;
      if (node) found.set(node, [...(found.get(node) ?? []), p]);
    }
    return found;
  }, [problems, doc]);

  const nodes: Node[] = useMemo(() => {
    if (!doc) return [];
    const placed = layout(doc);
    const mark = (id: string) => {
      const d = compared?.diff;
      if (!d) return "";
      if (d.added.includes(id)) return " diff-added";
      if (d.changed.includes(id)) return " diff-changed";
      return d.moved.includes(id) ? " diff-moved" : "";
    };
    const steps = new Map((tested ?? []).map((step) => [step.id, step.status]));
    return doc.nodes.map((node) => ({
      id: node.id,
      position: placed.get(node.id) ?? { x: 0, y: 0 },
      data: { label: `${node.id} · ${node.type}` },
      selected: node.id === selected || together.includes(node.id),
      className: `flow-node flow-${node.type}${byNode.has(node.id) ? " has-error" : ""}${mark(node.id)}${steps.has(node.id) ? ` test-${steps.get(node.id)}` : ""}`,
      ariaLabel: `${node.type} node ${node.id}${byNode.has(node.id) ? `, ${byNode.get(node.id)!.length} problem(s)` : ""}`,
      type: node.type === "trigger" ? "input" : "default",
      measured: measured[node.id],
      sourcePosition: Side.Right, // items flow left to right, as the stored positions are laid out
      targetPosition: Side.Left,
    }));
  }, [doc, selected, together, byNode, measured, compared, tested]);

  const edges: Edge[] = useMemo(() => {
    if (!doc) return [];
    const broken = new Set(problems.map((p) => targetOf(p, doc).connection).filter((i) => i !== undefined));
    return connections(doc).map((c, i) => ({
      id: `${c.from}->${c.to}:${c.when ?? ""}`,
      source: c.from,
      target: c.to,
      label: c.when,
      markerEnd: { type: MarkerType.ArrowClosed },
      className: broken.has(i) ? "has-error" : undefined,
      data: { connection: c },
    }));
  }, [doc, problems]);

  const onNodesChange = useCallback(
    (changes: NodeChange[]) => {
      if (!doc) return;
      let next = doc;
      const sizes: Record<string, { width: number; height: number }> = {};
      for (const c of changes) {
        if (c.type === "dimensions" && c.dimensions) sizes[c.id] = c.dimensions;
        if (c.type === "select") {
          setSelected((was) => (c.selected ? c.id : was === c.id ? undefined : was));
          setTogether((was) => (c.selected ? [...was.filter((id) => id !== c.id), c.id] : was.filter((id) => id !== c.id)));
        }
        if (!editable) continue;
        if (c.type === "position" && c.position) next = moveNode(next, c.id, c.position);
        if (c.type === "remove") next = removeNode(next, c.id);
      }
      if (Object.keys(sizes).length) setMeasured((was) => ({ ...was, ...sizes }));
      if (next !== doc) change(next);
    },
    [doc, editable, change],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      if (!doc || !editable) return;
      let next = doc;
      for (const c of changes) {
        if (c.type !== "remove") continue;
        const edge = edges.find((e) => e.id === c.id);
        if (edge) next = disconnect(next, (edge.data as { connection: { from: string; to: string; when?: string } }).connection);
      }
      if (next !== doc) change(next);
    },
    [doc, editable, edges, change],
  );

  const onConnect = useCallback(
    (params: FlowConnection) => {
      if (!doc || !params.source || !params.target) return;
      const type = doc.nodes.find((n) => n.id === params.source)?.type;
      const branches = branchesOf(type);
      if (branches.length) setPending({ from: params.source, to: params.target, branches });
      else change(connect(doc, params.source, params.target));
    },
    [doc, change],
  );

  const add = (type: NodeType) => {
    if (!doc) return;
    const placed = [...layout(doc).values()];
    const right = placed.length ? Math.max(...placed.map((p) => p.x)) + 240 : 0;
    const { doc: next, id } = addNode(doc, type, { x: right, y: 0 });
    change(next);
    selectOnly(id);
  };

  const save = () => {
    if (!doc) return;
    const request = stored
      ? sendJson<Stored>("PUT", `workflows/${encodeURIComponent(String(stored.definition.name))}`, doc, {
          query: { organization },
          headers: { "If-Match": stored.etag },
        })
      : sendJson<Stored>("POST", "workflows", doc, { query: { organization } });
    request
      .then((saved) => {
        setStored(saved);
        setDoc(saved.definition);
        setProblems([]);
        setMessage({ text: `Saved as version ${saved.version}.` });
        if (!stored) {
          const url = new URL(window.location.href);
          url.searchParams.set("name", String(saved.definition.name));
          window.history.replaceState(null, "", url);
        }
      })
      .catch((problem: Error) => {
        if (problem instanceof ApiError && problem.status === 412) {
          setMessage({
            alert: true,
            text: "Not saved: someone saved this workflow after you opened it. Your changes are still here; reload the page to see theirs.",
          });
        } else if (problem instanceof ApiError && problem.status === 422) {
          setProblems(((problem.body as { errors?: Problem[] } | undefined)?.errors ?? []) as Problem[]);
          setMessage({ alert: true, text: `Not saved: ${problem.message}` });
        } else setMessage({ alert: true, text: problem.message });
      });
  };

  const show = (node: string) => {
    selectOnly(node);
    void flow.fitView({ nodes: [{ id: node }], duration: 200, maxZoom: 1.5 });
  };

  if (error) return <p role="alert" className="error">{error}</p>;
  if (!doc) return <p aria-live="polite">Loading…</p>;
  const node = doc.nodes.find((n) => n.id === selected);
  const changed = !stored || doc !== stored.definition;
  return (
    <section className="designer" aria-labelledby="designer-title">
      <div className="toolbar">
        <h1 id="designer-title">
          {stored ? (
            <>
              Workflow {String(stored.definition.name)}{" "}
              <span className="kind">
                version {stored.version}
                {changed ? ", changed" : ""}
              </span>
            </>
          ) : (
            "New workflow"
          )}
        </h1>
        {editable ? (
          <button type="button" onClick={save} disabled={!changed}>
            Save
          </button>
        ) : (
          <p className="note">Read only: your role in {organization} does not change workflows.</p>
        )}
      </div>
      {message && (
        <p role={message.alert ? "alert" : "status"} className={message.alert ? "error" : "note"}>
          {message.text}
        </p>
      )}
      {!stored && editable && (
        <label className="new-name">
          Name{" "}
          <input
            value={String(doc.name ?? "")}
            placeholder="a-slug-like-this"
            onChange={(event) => change({ ...doc, name: event.target.value })}
          />
        </label>
      )}
      {!stored && editable && (
        <StartFromTemplate
          organization={organization}
          onStart={(started, template) => {
            change({ ...started, kind: "workflow", name: doc.name ?? "" });
            selectOnly(undefined);
            setMessage({ text: `Started from template ${template}: change it, then save.` });
            window.setTimeout(() => void flow.fitView(), 50);
          }}
        />
      )}
      {editable && (
        <SaveAsTemplate
          organization={organization}
          doc={doc}
          selection={[...new Set([...together, ...(selected ? [selected] : [])])].filter((id) => doc.nodes.some((n) => n.id === id))}
        />
      )}
      {editable && (
        <div className="palette" role="toolbar" aria-label="Add a node">
          {NODE_TYPES.map((type) => (
            <button type="button" key={type} onClick={() => add(type)}>
              + {type}
            </button>
          ))}
        </div>
      )}
      {pending && (
        <div className="when-chooser" role="dialog" aria-label="Which branch does this connection carry?">
          <span>
            {pending.from} → {pending.to} when:
          </span>
          {pending.branches.map((branch) => (
            <button
              type="button"
              key={branch}
              onClick={() => {
                change(connect(doc, pending.from, pending.to, branch));
                setPending(undefined);
              }}
            >
              {branch}
            </button>
          ))}
          <button type="button" onClick={() => setPending(undefined)}>
            Cancel
          </button>
        </div>
      )}
      <div className="designer-body">
        <div className="canvas" aria-label="workflow canvas">
          <ReactFlow
            nodes={nodes}
            edges={edges}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={onConnect}
            nodesDraggable={editable}
            nodesConnectable={editable}
            deleteKeyCode={editable ? ["Delete", "Backspace"] : null}
            fitView
            proOptions={{ hideAttribution: true }}
          >
            <Background />
            <Controls />
            <MiniMap pannable zoomable ariaLabel="minimap" nodeColor="#93c5fd" nodeStrokeColor="#1d4ed8" />
          </ReactFlow>
        </div>
        <aside className="side">
          <h2>Problems</h2>
          {problems.length === 0 ? (
            <p>{changed ? "None found so far." : "None."}</p>
          ) : (
            <ul className="problems">
              {problems.map((p, i) => {
                const target = targetOf(p, doc);
                return (
                  <li key={i}>
                    <code>{p.path}</code>: {p.message}{" "}
                    {target.node && (
                      <button type="button" onClick={() => show(target.node!)}>
                        Show {target.node}
                      </button>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
          {stored && (
            <VersionsPanel
              organization={organization}
              name={String(stored.definition.name)}
              version={stored.version}
              etag={stored.etag}
              doc={doc}
              editable={editable}
              onDiff={setCompared}
              onRestored={(saved) => {
                setStored(saved);
                setDoc(saved.definition);
                setProblems([]);
                setMessage({ text: `Restored as version ${saved.version}.` });
              }}
              onError={(text) => setMessage({ text, alert: true })}
            />
          )}
          {stored && (
            <TestPanel
              organization={organization}
              name={String(stored.definition.name)}
              saved={stored.definition}
              changed={changed}
              onTested={setTested}
            />
          )}
          {node ? (
            <NodePanel
              key={node.id}
              doc={doc}
              node={node}
              editable={editable}
              problems={byNode.get(node.id) ?? []}
              pickers={pickers}
              onReplace={(fields) => {
                // on the document as it is now: a form may report a change after other edits were made
                setDoc((current) => (current ? replaceNode(current, node.id, fields) : current));
                setMessage(undefined);
              }}
              onConnect={(to, when) => change(connect(doc, node.id, to, when))}
              onDisconnect={(edge) => change(disconnect(doc, edge))}
              onRemove={() => {
                change(removeNode(doc, node.id));
                selectOnly(undefined);
              }}
            />
          ) : (
            <p>Select a node (click it, or Tab to it and press Enter) to see and change it.</p>
          )}
        </aside>
      </div>
    </section>
  );
}
