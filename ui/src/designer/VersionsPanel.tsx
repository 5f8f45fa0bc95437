import { useEffect, useMemo, useState } from "react";

import { getJson, sendJson } from "../api";
import { when } from "../format";
import { nodeDiff, type NodeDiff, type WorkflowDocument } from "./model";

interface Version {
  version: number;
  actor: string;
  created_at: string;
}

interface Props {
  organization: string;
  name: string;
  version: number;
  etag: string;
  doc: WorkflowDocument;
  editable: boolean;
  onDiff: (diff: { version: number; diff: NodeDiff } | undefined) => void;
  onRestored: (saved: { definition: WorkflowDocument; etag: string; version: number }) => void;
  onError: (message: string) => void;
}

/** The workflow's stored versions: one compared with the canvas (its differences drawn on the nodes and
 * listed here), and restored by editors (as a new version, with If-Match). */
export function VersionsPanel({ organization, name, version, etag, doc, editable, onDiff, onRestored, onError }: Props) {
  const [versions, setVersions] = useState<Version[]>([]);
  const [chosen, setChosen] = useState<number>();
  const [older, setOlder] = useState<WorkflowDocument>();
  const path = `workflows/${encodeURIComponent(name)}/versions`;

  useEffect(() => {
    getJson<Version[]>(path, { organization })
      .then(setVersions)
      .catch((problem: Error) => onError(problem.message));
  }, [path, organization, version]);

  useEffect(() => {
    if (chosen === undefined) {
      setOlder(undefined);
      return;
    }
    getJson<{ definition: WorkflowDocument }>(`${path}/${chosen}`, { organization })
      .then((found) => setOlder(found.definition))
      .catch((problem: Error) => onError(problem.message));
  }, [chosen, path, organization]);

  const diff = useMemo(() => (older ? nodeDiff(older, doc) : undefined), [older, doc]);
  useEffect(() => onDiff(diff && chosen !== undefined ? { version: chosen, diff } : undefined), [diff, chosen]);

  const restore = () =>
    sendJson<{ definition: WorkflowDocument; etag: string; version: number }>("POST", `${path}/${chosen}/restore`, {}, {
      query: { organization },
      headers: { "If-Match": etag },
    })
      .then((saved) => {
        setChosen(undefined);
        onRestored(saved);
      })
      .catch((problem: Error) => onError(`Not restored: ${problem.message}`));

  return (
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <label>
        Compare with{" "}
        <select
          value={chosen ?? ""}
          onChange={(event) => setChosen(event.target.value ? Number(event.target.value) : undefined)}
        >
          <option value="">no other version</option>
          {versions
            .filter((v) => v.version !== version)
            .map((v) => (
              <option key={v.version} value={v.version}>
                version {v.version} by {v.actor}, {when(v.created_at)}
              </option>
            ))}
        </select>
      </label>
      {diff && chosen !== undefined && (
        <>
          <ul className="diff" aria-label={`changes since version ${chosen}`}>
            <DiffLine label="added" items={diff.added} />
            <DiffLine label="removed" items={diff.removed} />
            <DiffLine label="changed" items={diff.changed} />
            <DiffLine label="moved" items={diff.moved} />
            <DiffLine label="connections added" items={diff.connectionsAdded.map((c) => `${c.from} → ${c.to}${c.when ? ` (${c.when})` : ""}`)} />
            <DiffLine label="connections removed" items={diff.connectionsRemoved.map((c) => `${c.from} → ${c.to}${c.when ? ` (${c.when})` : ""}`)} />
          </ul>
          {editable && (
            <button type="button" onClick={restore}>
              Restore version {chosen}
            </button>
          )}
        </>
      )}
    </section>
  );
}

function DiffLine({ label, items }: { label: string; items: string[] }) {
  if (items.length === 0) return null;
  return (
    <li>
      {label}: {items.join(", ")}
    </li>
  );
}
