"""A workflow's action node: any action of the registry, without ``id`` and ``depends_on``.

In a workflow the node's id is the action's id and connections are its edges, so the two fields a
rule's action has for that are left out. Each step model is derived field for field from the
registry's model (:mod:`.action_types`), so an action gains a field in rules and workflows at once;
:func:`as_action` gives back the registry's action, which every rule check and operator takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union, get_args

from pydantic import BaseModel, Discriminator, Tag, create_model

from rule_compiler.definitions.action_types import ACTION_TYPES, Action, ActionBase
from rule_compiler.definitions.common import StrictModel, tag_of

#: What only a rule's action has: its id and its edges.
RULE_ONLY_FIELDS = frozenset({"id", "depends_on"})


def _registry() -> dict[str, type[ActionBase]]:
    """Action type → the registry's model, read from the :data:`Action` union."""
    members = [get_args(member)[0] for member in get_args(get_args(Action)[0])]
    return {get_args(model.model_fields["type"].annotation)[0]: model for model in members}


#: Action type → the registry's model (``update_record`` → :class:`UpdateRecord`).
ACTION_MODELS: dict[str, type[ActionBase]] = _registry()


def _step_model(action: type[ActionBase]) -> type[StrictModel]:
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in action.model_fields.items()
        if name not in RULE_ONLY_FIELDS
    }
    return create_model(
        f"{action.__name__}Step",
        __base__=StrictModel,
        __doc__=action.__doc__,
        __module__=__name__,
        **fields,
    )


#: Action type → its step model (``update_record`` → ``UpdateRecordStep``), in the registry's order.
STEP_MODELS: dict[str, type[StrictModel]] = {kind: _step_model(ACTION_MODELS[kind]) for kind in ACTION_TYPES}


def _step_kind(value: Any) -> str | None:
    return tag_of(value, "type", "#")


if TYPE_CHECKING:
    ActionStep = StrictModel
else:  # the same tags as the rule's union: errors name an unknown "action type" alike
    ActionStep = Annotated[
        Union[tuple(Annotated[model, Tag(f"#{kind}")] for kind, model in STEP_MODELS.items())],  # noqa: UP007
        Discriminator(_step_kind),
    ]


def as_action(step: BaseModel, action_id: str) -> ActionBase:
    """The registry's action ``step`` stands for, with ``action_id`` as its id and no ``depends_on``.

    Not validated again: every field was validated in the step, and the id is a node id (a slug).
    """
    model = ACTION_MODELS[getattr(step, "type")]  # noqa: B009 - step models are built at run time
    return model.model_construct(_fields_set={*step.model_fields_set, "id"}, **dict(step), id=action_id)


def as_step(action: BaseModel) -> StrictModel:
    """The step of a registry action (its id and ``depends_on`` dropped): :func:`as_action` undone."""
    model = STEP_MODELS[getattr(action, "type")]  # noqa: B009 - step models are built at run time
    values = {name: value for name, value in action if name not in RULE_ONLY_FIELDS}
    return model.model_construct(_fields_set=action.model_fields_set - RULE_ONLY_FIELDS, **values)
