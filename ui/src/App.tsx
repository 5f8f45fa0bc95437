import { lazy, Suspense, useEffect, useState } from "react";

import { canEdit, getJson, prefetch, type Me } from "./api";
import { DefinitionPage } from "./pages/DefinitionPage";
import { Definitions } from "./pages/Definitions";
import { Overview } from "./pages/Overview";
import { RunExplorer } from "./pages/RunExplorer";

/** The page the iframe's URL asks for: ``?page=run&dag_id=...&run_id=...`` (the "Automation" tab of a
 * DAG run), ``?page=definition&dag_id=...`` (the tab of a DAG), ``?page=definitions`` (the list), else
 * the overview. */
export function App({ search = window.location.search }: { search?: string }) {
  const params = new URLSearchParams(search);
  const page = params.get("page");
  if (page === "run") {
    return (
      <main>
        <RunExplorer dagId={params.get("dag_id") ?? ""} runId={params.get("run_id") ?? ""} />
      </main>
    );
  }
  if (page === "definition") {
    return (
      <main>
        <DefinitionPage dagId={params.get("dag_id") ?? ""} />
      </main>
    );
  }
  const wanted = params.get("organization") ?? undefined; // links from the pages say which
  if (page === "designer") {
    void loadDesigner();
    const name = params.get("name") ?? "";
    if (name && wanted) prefetch(`workflows/${encodeURIComponent(name)}`, { organization: wanted });
    return <Shell page="designer" workflow={name} wanted={wanted} />; // no name: a new one
  }
  if (page === "rule") {
    void loadRuleEditor();
    return <Shell page="rule" workflow={params.get("name") ?? ""} wanted={wanted} />;
  }
  return <Shell page={page === "definitions" ? "definitions" : "overview"} />;
}

// the designer (and its graph editor) loads only when it is opened: the other pages do not carry it
// (each chunk starts loading with the page, while the shell asks who is signed in)
const loadDesigner = () => import("./designer/Designer");
const loadRuleEditor = () => import("./rules/RuleEditor");
const Designer = lazy(() => loadDesigner().then((module) => ({ default: module.Designer })));
const RuleEditor = lazy(() => loadRuleEditor().then((module) => ({ default: module.RuleEditor })));

const PAGES = { overview: "Overview", definitions: "Definitions" } as const;

/** The Automations entry's shell: who is signed in, the pages, and which of their organizations is shown. */
function Shell({ page, workflow = "", wanted }: { page: keyof typeof PAGES | "designer" | "rule"; workflow?: string; wanted?: string }) {
  const [me, setMe] = useState<Me>();
  const [error, setError] = useState<string>();
  const [organization, setOrganization] = useState<string>();
  useEffect(() => {
    getJson<Me>("me")
      .then((found) => {
        setMe(found);
        const named = found.memberships.find((m) => m.organization === wanted);
        setOrganization((named ?? found.memberships[0])?.organization);
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
        <nav aria-label="Automations pages">
          <ul>
            {Object.entries(PAGES).map(([key, label]) => (
              <li key={key}>
                <a href={`?page=${key}`} aria-current={key === page ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
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
      {!organization ? (
        <p>
          You are not a member of any organization yet: an organization admin adds you
          (<code>PUT /automations/api/v1/memberships/{me.username}</code>).
        </p>
      ) : page === "designer" ? (
        <Suspense fallback={<p aria-live="polite">Loading the designer…</p>}>
          <Designer organization={organization} name={workflow} editable={canEdit(me, organization)} />
        </Suspense>
      ) : page === "rule" ? (
        <Suspense fallback={<p aria-live="polite">Loading the rule editor…</p>}>
          <RuleEditor organization={organization} name={workflow} editable={canEdit(me, organization)} />
        </Suspense>
      ) : page === "definitions" ? (
        <Definitions organization={organization} editable={canEdit(me, organization)} />
      ) : (
        <Overview organization={organization} />
      )}
    </main>
  );
}
