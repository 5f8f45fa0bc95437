// The baseline of benchmarks/ui.py's designer case: a bare React Flow page drawing the same stored workflow
// (its nodes at their positions, its connections with their labels, a minimap, controls, fitted), with none
// of the designer around it. Built by `vite build --config vite.bench.config.ts`; never shipped.
import "@xyflow/react/dist/style.css";

import { Background, Controls, MarkerType, MiniMap, Position, ReactFlow, type Edge, type Node } from "@xyflow/react";
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

interface Stored {
  definition: {
    nodes: { id: string; type: string; position?: { x: number; y: number } }[];
    connections?: { from: string; to: string; when?: string }[];
  };
}

function Bare({ url }: { url: string }) {
  const [flow, setFlow] = useState<{ nodes: Node[]; edges: Edge[] }>();
  useEffect(() => {
    fetch(url, { credentials: "same-origin" })
      .then((response) => response.json())
      .then(({ definition }: Stored) =>
        setFlow({
          nodes: definition.nodes.map((node) => ({
            id: node.id,
            position: node.position ?? { x: 0, y: 0 },
            data: { label: `${node.id} · ${node.type}` },
            type: node.type === "trigger" ? "input" : "default",
            sourcePosition: Position.Right,
            targetPosition: Position.Left,
          })),
          edges: (definition.connections ?? []).map((c) => ({
            id: `${c.from}->${c.to}:${c.when ?? ""}`,
            source: c.from,
            target: c.to,
            label: c.when,
            markerEnd: { type: MarkerType.ArrowClosed },
          })),
        }),
      );
  }, [url]);
  if (!flow) return <p>Loading…</p>;
  return (
    <div style={{ height: "100%" }}>
      <ReactFlow defaultNodes={flow.nodes} defaultEdges={flow.edges} fitView proOptions={{ hideAttribution: true }}>
        <Background />
        <Controls />
        <MiniMap />
      </ReactFlow>
    </div>
  );
}

const url = new URLSearchParams(location.search).get("workflow") ?? "";
createRoot(document.getElementById("root")!).render(<Bare url={url} />);
