"""Forms of user tasks and start events: the form key and generated form fields.

- form key: ``camunda:formKey`` / ``flowable:formKey`` / ``activiti:formKey``, else
  ``camunda:formRef`` (a Camunda Form's id), else Zeebe ``formDefinition`` ``formKey``
  or ``formId``;
- fields: ``camunda:formData`` / ``camunda:formField`` (``id``, ``label``, ``type``,
  ``defaultValue``, ``camunda:value`` choices, ``camunda:validation`` /
  ``camunda:constraint`` with ``required``, ``readonly``, ``min``, ``max``,
  ``minlength``, ``maxlength``), and ``flowable:formProperty`` /
  ``activiti:formProperty`` (``id``, ``name``, ``type``, ``default``, ``required``,
  ``writable``, ``variable``, ``datePattern``, ``flowable:value`` choices).
"""

from __future__ import annotations

from lxml import etree

from bpm.model.context import _bool_attr, _Context, _extension, _extensions, _template
from bpm.model.spec import FormField
from bpm.model.xmlsafe import ACTIVITI_NS, CAMUNDA_NS, FLOWABLE_NS, ZEEBE_NS, _invalid, _vendor_attr

#: Camunda constraints checked on submission besides ``required`` and ``readonly``
CHECKED_CONSTRAINTS = frozenset({"min", "max", "minlength", "maxlength"})
_NUMERIC_CONSTRAINTS = CHECKED_CONSTRAINTS


def form_key(node: etree._Element) -> str | None:
    """The element's form key, from whichever vendor attribute or extension gives one."""
    key = _vendor_attr(node, "formKey") or _vendor_attr(node, "formRef")
    if key:
        return key
    zeebe = _extension(node, ZEEBE_NS, "formDefinition")
    if zeebe is not None:
        return (zeebe.get("formKey") or zeebe.get("formId") or "").strip() or None
    return None


def form_fields(ctx: _Context, node: etree._Element) -> tuple[FormField, ...]:
    """The generated form of a user task or start event (empty when it has none)."""
    fields: list[FormField] = []
    for data in _extensions(node, CAMUNDA_NS, "formData"):
        fields.extend(_camunda_field(ctx, node, field) for field in data.iterchildren(f"{{{CAMUNDA_NS}}}formField"))
    for namespace in (FLOWABLE_NS, ACTIVITI_NS, CAMUNDA_NS):
        fields.extend(_flowable_property(ctx, node, prop) for prop in _extensions(node, namespace, "formProperty"))
    seen: set[str] = set()
    for field in fields:
        if field.id in seen:
            raise _invalid(ctx.file, node, f"form field '{field.id}' is defined twice", attribute="formField")
        seen.add(field.id)
    return tuple(fields)


def _field_id(ctx: _Context, node: etree._Element, field: etree._Element, what: str) -> str:
    field_id = (field.get("id") or "").strip()
    if not field_id:
        raise _invalid(ctx.file, node, f"{what} has no id", at=field, attribute=what)
    return field_id


def _values(field: etree._Element, namespace: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        ((value.get("id") or "").strip(), (value.get("name") or value.get("id") or "").strip())
        for value in field.iterchildren(f"{{{namespace}}}value")
    )


def _default(ctx: _Context, node: etree._Element, field: etree._Element, attr: str) -> str | None:
    default = field.get(attr)
    if default is None:
        return None
    if "${" in default or "#{" in default:
        _template(ctx, node, f"{field.get('id')}.{attr}", default, at=field)  # syntax checked at deployment
    return default


def _camunda_field(ctx: _Context, node: etree._Element, field: etree._Element) -> FormField:
    field_id = _field_id(ctx, node, field, "camunda:formField")
    required = False
    writable = True
    constraints: list[tuple[str, str]] = []
    for validation in field.iterchildren(f"{{{CAMUNDA_NS}}}validation"):
        for constraint in validation.iterchildren(f"{{{CAMUNDA_NS}}}constraint"):
            name = (constraint.get("name") or "").strip()
            config = (constraint.get("config") or "").strip()
            if name == "required":
                required = True
            elif name == "readonly":
                writable = False
            elif name in _NUMERIC_CONSTRAINTS:
                try:
                    float(config)
                except ValueError:
                    message = f"form field '{field_id}': constraint {name} needs a number, not '{config}'"
                    raise _invalid(ctx.file, node, message, at=constraint, attribute="camunda:constraint") from None
                constraints.append((name, config))
            else:
                ctx.warn(
                    node, constraint, "camunda:constraint",
                    f"form field '{field_id}': validation constraint '{name}' is not checked",
                    "the value is accepted without this check",
                )  # fmt: skip
    return FormField(
        id=field_id,
        label=(field.get("label") or "").strip(),
        type=(field.get("type") or "string").strip(),
        default_value=_default(ctx, node, field, "defaultValue"),
        required=required,
        values=_values(field, CAMUNDA_NS),
        constraints=tuple(constraints),
        writable=writable,
        date_pattern=(field.get("datePattern") or "").strip() or None,
        line=field.sourceline,
    )


def _flowable_property(ctx: _Context, node: etree._Element, prop: etree._Element) -> FormField:
    field_id = _field_id(ctx, node, prop, "formProperty")
    namespace = etree.QName(prop).namespace or FLOWABLE_NS
    return FormField(
        id=field_id,
        label=(prop.get("name") or "").strip(),
        type=(prop.get("type") or "string").strip(),
        default_value=_default(ctx, node, prop, "default"),
        required=_bool_attr(ctx, node, prop, "required", False),
        values=_values(prop, namespace),
        writable=_bool_attr(ctx, node, prop, "writable", True),
        variable=(prop.get("variable") or "").strip() or None,
        date_pattern=(prop.get("datePattern") or "").strip() or None,
        line=prop.sourceline,
    )
