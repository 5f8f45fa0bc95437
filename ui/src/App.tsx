import { useEffect, useState } from "react";

import { getJson, type Me } from "./api";
import { DefinitionPage } from "./pages/DefinitionPage";
import { Overview } from "./pages/Overview";
import { RunExplorer } from "./pages/RunExplorer";

/** The page the iframe's URL asks for: ``?page=run&dag_id=...&run_id=...`` (the "Automation" tab of a
 * DAG run), ``?page=definition&dag_id=...`` (the tab of a DAG), else the overview. */
export function App({ search = window.location.search }: { search?: string }) {
  const params = new URLSearchParams(search);
  if (params.get("page") === "run") {
    return (
      <main>
        <RunExplorer dagId={params.get("dag_id") ?? ""} runId={params.get("run_id") ?? ""} />
      </main>
    );
  }
  if (params.get("page") === "definition") {
    return (
      <main>
        <DefinitionPage dagId={params.get("dag_id") ?? ""} />
      </main>
    );
  }
  return <OverviewShell />;
}

/** The overview's shell: who is signed in, and which of their organizations is shown. */
function OverviewShell() {
  const [me, setMe] = useState<Me>();
  const [error, setError] = useState<string>();
  const [organization, setOrganization] = useState<string>();
  useEffect(() => {
    getJson<Me>("me")
      .then((found) => {
        setMe(found);
        setOrganization(found.memberships[0]?.organization);
      })
      .catch((problem: Error) => setError(problem.message));
  }, []);

  if (error) {
    return (
      <main>
        <p role="alert" className="error">
          {error}
        </p>
      </main>
    );
  }
  if (!me) return <main aria-busy="true">Loading…</main>;
  return (
    <main>
      <header className="shell">
        <span>Automations</span>
        {me.memberships.length > 1 && (
          <label>
            Organization{" "}
            <select value={organization} onChange={(event) => setOrganization(event.target.value)}>
              {me.memberships.map((m) => (
                <option key={m.organization}>{m.organization}</option>
              ))}
            </select>
          </label>
        )}
        <span className="who">{me.username}</span>
      </header>
      {organization ? (
        <Overview organization={organization} />
      ) : (
        <p>
          You are not a member of any organization yet: an organization admin adds you
          (<code>PUT /automations/api/v1/memberships/{me.username}</code>).
        </p>
      )}
    </main>
  );
}
