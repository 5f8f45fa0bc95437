import { useEffect, useRef, useState } from "react";

import { getJson, type Page } from "../api";

/** The pickers of a form about `table` (a record action's): its fields offered to `field`, its columns to
 * the keys of `values`. */
export function aboutTable(pickers: Pickers, table: string | undefined): Pickers {
  const fields = table ? pickers.fieldsByTable[table] : undefined;
  return fields ? { ...pickers, fields, columns: fields.filter((field) => !field.includes("__")) } : pickers;
}

/** What the organization's definitions may name, offered by the forms' text inputs as suggestions. */
export interface Pickers {
  connections: string[];
  tables: string[];
  /** The fields (columns and foreign-key paths) of the table the conditions are about. */
  fields: string[];
  /** Every table's fields: a record action's `where` is about its own table. */
  fieldsByTable: Record<string, string[]>;
  /** The columns a record action's `values` may set (its table's own columns). */
  columns: string[];
  conditionTemplates: string[];
  notificationTemplates: string[];
  reports: string[];
  workflows: string[];
}

export const NO_PICKERS: Pickers = {
  connections: [], tables: [], fields: [], fieldsByTable: {}, columns: [], conditionTemplates: [], notificationTemplates: [], reports: [], workflows: [],
};

/** Which suggestions a field of the format takes, by its name. */
export function offersFor(name: string, pickers: Pickers): string[] {
  switch (name) {
    case "connection":
      return pickers.connections;
    case "table":
      return pickers.tables;
    case "field":
      return pickers.fields;
    case "use":
      return pickers.conditionTemplates;
    case "template":
      return pickers.notificationTemplates;
    case "report":
      return pickers.reports;
    case "workflow":
      return pickers.workflows;
    default:
      return [];
  }
}

interface CatalogNames {
  connections: { name: string; kind: string; tables: { name: string; fields: { path: string }[] }[] }[];
}

/** The suggestions for an organization's forms: its catalog (`GET /catalog/names`) and its stored
 * templates, reports and workflows; `table` picks whose fields are offered; nothing is read until
 * `wanted`. What cannot be read offers nothing (an organization without a catalog, say). */
export function usePickers(organization: string, table?: string, wanted = true): Pickers {
  const [read, setRead] = useState<{ catalog?: CatalogNames; names: Record<string, string[]> }>({ names: {} });
  const asked = useRef<string | undefined>(undefined);
  useEffect(() => {
    // read once a form wants them (not while the page first draws), and again for another organization
    if (!wanted || asked.current === organization) return;
    asked.current = organization;
    let current = true;
    let done = false;
    const names = (path: string) =>
      getJson<Page<{ name: string }>>(path, { organization, limit: "200" })
        .then((page) => page.items.map((item) => item.name))
        .catch(() => [] as string[]);
    Promise.all([
      getJson<CatalogNames>("catalog/names", { organization }).catch(() => undefined),
      names("condition-templates"),
      names("notification-templates"),
      names("reports"),
      names("workflows"),
    ]).then(([catalog, conditionTemplates, notificationTemplates, reports, workflows]) => {
      done = true;
      if (current) setRead({ catalog, names: { conditionTemplates, notificationTemplates, reports, workflows } });
    });
    return () => {
      current = false;
      if (!done) asked.current = undefined; // not read yet: read again next time
    };
  }, [organization, wanted]);
  const connections = read.catalog?.connections ?? [];
  const tables = connections.flatMap((c) => c.tables);
  return {
    connections: connections.map((c) => c.name),
    tables: [...new Set(tables.map((t) => t.name))],
    fields: tables.find((t) => t.name === table)?.fields.map((f) => f.path) ?? [],
    fieldsByTable: Object.fromEntries(tables.map((t) => [t.name, t.fields.map((f) => f.path)])),
    columns: (tables.find((t) => t.name === table)?.fields ?? []).map((f) => f.path).filter((path) => !path.includes("__")),
    conditionTemplates: read.names.conditionTemplates ?? [],
    notificationTemplates: read.names.notificationTemplates ?? [],
    reports: read.names.reports ?? [],
    workflows: read.names.workflows ?? [],
  };
}
