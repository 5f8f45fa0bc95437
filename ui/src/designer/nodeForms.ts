import type { RJSFSchema } from "@rjsf/utils";

import workflowSchema from "../../../include/schemas/workflow.schema.json";
import { formOf, friendlySchema } from "../forms/schema";
import type { NodeType } from "./model";

/** Each node type's definition in the workflow format's JSON Schema (`include/schemas/workflow.schema.json`). */
export const NODE_DEFINITIONS: Record<NodeType, string> = {
  trigger: "TriggerNode",
  condition: "ConditionStep",
  action: "ActionNode",
  delay: "DelayNode",
  approval: "ApprovalNode",
  report: "ReportNode",
  join: "JoinNode",
};

const FRIENDLY = friendlySchema(workflowSchema as Record<string, unknown>);
const cache = new Map<NodeType, RJSFSchema>();

/** The side panel's form of a node type: its definition without `id`, `type` and `position`. */
export function nodeFormSchema(type: NodeType): RJSFSchema {
  let found = cache.get(type);
  if (!found) cache.set(type, (found = formOf(FRIENDLY, NODE_DEFINITIONS[type], ["id", "type", "position"])));
  return found;
}
