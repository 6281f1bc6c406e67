"""Marshmallow schemas of every request body, query string and response of the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import EXCLUDE, INCLUDE, fields, validate, validates_schema

from bpm.api.common import ID_PATTERN
from bpm.api.envelope import envelope_schema
from bpm.records import SORT_FIELDS, Instance

MAX_PAGE_SIZE = 1000
#: ids in bodies have the shape of the ids in paths
ID_REGEXP = f"^{ID_PATTERN.pattern}$"
MAX_FETCH_TASKS = 100
MAX_TOPICS = 100
#: the longest lock (and lock extension) a worker may ask for: one day
MAX_LOCK_MS = 86_400_000
#: the longest retry back-off: 30 days
MAX_RETRY_TIMEOUT_MS = 30 * MAX_LOCK_MS
MAX_RETRIES = 1_000_000
MAX_ERROR_MESSAGE = 4000
MAX_ERROR_DETAILS = 65536
MAX_NAME_LENGTH = 200
#: most names one query parameter or identity list may carry
MAX_NAMES = 100


def _printable(value: str) -> None:
    """Names (users, groups, roles) hold no control, format or separator characters but spaces."""
    if not value.isprintable():
        raise ma.ValidationError("Not a valid name: it holds control or invisible characters.")


Validator = Callable[[Any], Any]
NAME: list[Validator] = [validate.Length(min=1, max=MAX_NAME_LENGTH), _printable]
#: a user/group/role name in a query string ("" counts as absent, so it is let through here)
QUERY_NAME: list[Validator] = [validate.Length(max=MAX_NAME_LENGTH), _printable]


def names_field(description: str) -> fields.List:
    """A repeatable query parameter of names."""
    names = validate.Length(max=MAX_NAMES)
    return fields.List(fields.String(validate=QUERY_NAME), validate=names, metadata={"description": description})


class QuerySchema(ma.Schema):
    """Base of query-string schemas: parameters nobody asked for are ignored."""

    class Meta:
        unknown = EXCLUDE


# -- query strings --------------------------------------------------------------------


class UserQuerySchema(QuerySchema):
    user = fields.String(validate=QUERY_NAME, metadata={"description": "the acting user"})


class RequiredUserQuerySchema(QuerySchema):
    user = fields.String(required=True, validate=QUERY_NAME, metadata={"description": "the user (required)"})


class ActingUserQuerySchema(QuerySchema):
    user = fields.String(
        validate=QUERY_NAME,
        metadata={"description": "the acting user: required, except for a JWT caller (who acts as themself)"},
    )


def business_key_field(description: str = "the instance's business key (extension)") -> fields.String:
    return fields.String(validate=QUERY_NAME, allow_none=True, metadata={"description": description})


class StartQuerySchema(UserQuerySchema):
    businessKey = business_key_field()
    appName = fields.String(
        validate=validate.Length(max=200), metadata={"description": "app the process is deployed under"}
    )
    snapVersion = fields.String(
        validate=validate.Length(max=200), metadata={"description": "version number or version tag (default: latest)"}
    )


class UsersQuerySchema(QuerySchema):
    user = names_field("one user (assignee) or several (candidates)")


class TaskListQuerySchema(QuerySchema):
    user = names_field("to-do list of these users")
    group = names_field("queue of these candidate groups")
    role = names_field("queue of these candidate roles")
    includeAssigned = fields.Boolean(
        load_default=False, metadata={"description": "group/role queues also list assigned tasks"}
    )
    start = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={"description": "first record"})
    size = fields.Integer(
        load_default=100, validate=validate.Range(min=1, max=MAX_PAGE_SIZE), metadata={"description": "page size"}
    )
    sort = fields.String(load_default="priority", validate=validate.OneOf(SORT_FIELDS))
    order = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(("asc", "desc")))
    unassigned = fields.Boolean(
        load_default=False,
        metadata={
            "description": "only unassigned tasks (with user: those the user may claim); wins over includeAssigned"
        },
    )
    processKey = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "filter: process key (allowed alone)"}
    )
    businessKey = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "filter: the instance's business key"}
    )
    taskDefinitionKey = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "filter: the task's element id"}
    )
    instanceId = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "filter: tasks of this instance (allowed without user/group/role)"},
    )


class InstanceListQuerySchema(QuerySchema):
    processKey = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "process key"})
    businessKey = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "business key"})
    state = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(("active", "ended")),
        metadata={"description": "active or ended (default: both)"},
    )
    start = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={"description": "first record"})
    size = fields.Integer(
        load_default=100, validate=validate.Range(min=1, max=MAX_PAGE_SIZE), metadata={"description": "page size"}
    )


class InstanceTasksQuerySchema(QuerySchema):
    includeChildren = fields.Boolean(
        load_default=False,
        metadata={"description": "also the tasks of the instances its call activities started, recursively"},
    )


class DeploymentQuerySchema(QuerySchema):
    appName = fields.String(load_default="", validate=validate.Length(max=200))
    fileName = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,199}$", error="Not a plain file name."),
        metadata={"description": "file name to record (default: the upload's name, or upload.bpmn)"},
    )


# -- request bodies -------------------------------------------------------------------


class StartBodySchema(ma.Schema):
    """Route 1: which process to start, and the business object."""

    class Meta:
        unknown = EXCLUDE

    processName = fields.String(
        validate=validate.Length(max=200), metadata={"description": "BPMN name (else key) of the process"}
    )
    uniqueId = fields.String(
        validate=validate.Length(max=200), metadata={"description": "BPMN id (key) of the process"}
    )
    appName = fields.String(validate=validate.Length(max=200))
    snapVersion = fields.String(validate=validate.Length(max=200))
    object = fields.Dict(
        keys=fields.String(), allow_none=True, metadata={"description": "the business object: name -> JSON value"}
    )
    businessKey = business_key_field()

    @validates_schema
    def _needs_a_process(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("processName") and not data.get("uniqueId"):
            raise ma.ValidationError("'processName' or 'uniqueId' is required.", field_name="processName")


class ObjectBodySchema(ma.Schema):
    """A free JSON object (business object / process variables), possibly empty."""

    class Meta:
        unknown = INCLUDE


class VariablesBodySchema(ma.Schema):
    class Meta:
        unknown = EXCLUDE

    names = fields.List(fields.String(), metadata={"description": "return only these variables"})


class ClassActionBodySchema(ma.Schema):
    class Meta:
        unknown = EXCLUDE

    fileNames = fields.List(
        fields.String(validate=validate.Length(max=400)),
        metadata={"description": "<uniqueId>.<appName>.<processName>.<snapVersion>.jar or <file>.bpmn"},
    )
    event = fields.String(load_default="refresh", validate=validate.OneOf(("refresh", "file", "generate")))
    processName = fields.String(validate=validate.Length(max=200))

    @validates_schema
    def _needs_a_target(self, data: dict[str, Any], **_: Any) -> None:
        if not any(n and n.strip() for n in data.get("fileNames") or ()) and not data.get("processName"):
            raise ma.ValidationError("'fileNames' or 'processName' is required.", field_name="fileNames")


def variables_field(description: str) -> fields.Dict:
    """A map of process variables, name -> plain JSON value (not Camunda's typed values)."""
    return fields.Dict(keys=fields.String(), load_default=dict, metadata={"description": description})


class BodySchema(ma.Schema):
    """Base of JSON bodies: fields nobody asked for are ignored (as Camunda's clients send more)."""

    class Meta:
        unknown = EXCLUDE


class MessageBodySchema(BodySchema):
    """A message to correlate: to the instance(s) waiting for it, else a message start event."""

    messageName = fields.String(required=True, validate=NAME, metadata={"description": "the BPMN message name"})
    businessKey = business_key_field("only instances with this business key; the new instance's on a start")
    processInstanceId = fields.String(
        validate=validate.Regexp(ID_REGEXP, error="Not an instance id."), metadata={"description": "only this instance"}
    )
    correlationKeys = variables_field("only instances whose variables have these values")
    processVariables = variables_field("variables set on the instance that receives the message")
    all = fields.Boolean(load_default=False, metadata={"description": "deliver to every match instead of 409"})


class SignalBodySchema(BodySchema):
    name = fields.String(required=True, validate=NAME, metadata={"description": "the BPMN signal name"})
    variables = variables_field("variables set on every instance the signal reaches or starts")


class ConditionBodySchema(BodySchema):
    """Evaluate the conditional start events (Camunda 7's ``POST /condition``)."""

    variables = variables_field("the variables the start conditions read; each started instance gets them")
    processKey = fields.String(
        validate=NAME, allow_none=True, metadata={"description": "evaluate only this process's start events"}
    )
    businessKey = business_key_field("the business key of every instance started")


class TopicSchema(BodySchema):
    topicName = fields.String(required=True, validate=NAME)
    lockDuration = fields.Integer(
        required=True, validate=validate.Range(min=1, max=MAX_LOCK_MS), metadata={"description": "lock time, ms"}
    )


class FetchAndLockBodySchema(BodySchema):
    workerId = fields.String(required=True, validate=NAME)
    maxTasks = fields.Integer(load_default=10, validate=validate.Range(min=1, max=MAX_FETCH_TASKS))
    topics = fields.List(fields.Nested(TopicSchema), required=True, validate=validate.Length(min=1, max=MAX_TOPICS))


class WorkerBodySchema(BodySchema):
    workerId = fields.String(required=True, validate=NAME, metadata={"description": "the worker holding the lock"})


class CompleteExternalBodySchema(WorkerBodySchema):
    variables = variables_field("merged into the process variables")


class FailureBodySchema(WorkerBodySchema):
    errorMessage = fields.String(allow_none=True, validate=validate.Length(max=MAX_ERROR_MESSAGE))
    errorDetails = fields.String(allow_none=True, validate=validate.Length(max=MAX_ERROR_DETAILS))
    retries = fields.Integer(
        required=True,
        validate=validate.Range(min=0, max=MAX_RETRIES),
        metadata={"description": "retries left: 0 makes an incident"},
    )
    retryTimeout = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_RETRY_TIMEOUT_MS),
        metadata={"description": "ms until the task may be fetched again"},
    )


class BpmnErrorBodySchema(WorkerBodySchema):
    errorCode = fields.String(required=True, validate=NAME, metadata={"description": "the BPMN errorCode"})
    errorMessage = fields.String(allow_none=True, validate=validate.Length(max=MAX_ERROR_MESSAGE))
    variables = variables_field("merged into the process variables when the error is caught")


class ExtendLockBodySchema(WorkerBodySchema):
    newDuration = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=MAX_LOCK_MS),
        metadata={"description": "the lock now ends this many ms from now"},
    )


class RetriesBodySchema(BodySchema):
    retries = fields.Integer(
        required=True,
        validate=validate.Range(min=0, max=MAX_RETRIES),
        metadata={"description": "above 0 resolves an incident (the task is fetchable again)"},
    )


class IdentityBodySchema(ma.Schema):
    groups = fields.List(fields.String(validate=NAME), load_default=list, validate=validate.Length(max=1000))
    roles = fields.List(fields.String(validate=NAME), load_default=list, validate=validate.Length(max=1000))


# -- response payloads ----------------------------------------------------------------


class TaskSchema(ma.Schema):
    """A task as API.md lists it: the 15 original fields, then ours; never the variables."""

    id = fields.String()
    name = fields.String()
    description = fields.String()
    instance_id = fields.String(data_key="instanceId")
    definition_id = fields.String(data_key="definitionId", metadata={"description": "<processKey>:<version>"})
    process_name = fields.String(data_key="processName")
    create_time = fields.Integer(data_key="createTime", metadata={"description": "epoch ms"})
    create_by = fields.String(data_key="createBy")
    due_date = fields.Integer(data_key="dueDate", allow_none=True, metadata={"description": "epoch ms"})
    priority = fields.Integer(metadata={"description": "1-99, default 50"})
    assignee = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    parent_task_id = fields.String(data_key="parentTaskId", allow_none=True)
    loadlink_entity_id = fields.String(data_key="loadlinkEntityId")
    loadlink_param = fields.String(data_key="loadlinkParam")
    task_definition_key = fields.String(data_key="taskDefinitionKey", metadata={"description": "BPMN element id"})
    candidate_users = fields.List(fields.String(), data_key="candidateUsers")
    candidate_groups = fields.List(fields.String(), data_key="candidateGroups")
    candidate_roles = fields.List(fields.String(), data_key="candidateRoles")
    form_key = fields.String(
        data_key="formKey",
        allow_none=True,
        metadata={"description": "camunda:formKey, flowable:formKey or camunda:formRef of the task, or null"},
    )


def task_to_api(task: Any) -> dict[str, Any]:
    """A task record as :class:`TaskSchema` dumps it (same keys, order and values), without
    marshmallow: the hot lists are written with this, the schema documents them."""
    return {
        "id": task.id,
        "name": task.name,
        "description": task.description,
        "instanceId": task.instance_id,
        "definitionId": task.definition_id,
        "processName": task.process_name,
        "createTime": task.create_time,
        "createBy": task.create_by,
        "dueDate": task.due_date,
        "priority": task.priority,
        "assignee": task.assignee,
        "owner": task.owner,
        "parentTaskId": task.parent_task_id,
        "loadlinkEntityId": task.loadlink_entity_id,
        "loadlinkParam": task.loadlink_param,
        "taskDefinitionKey": task.task_definition_key,
        "candidateUsers": list(task.candidate_users),
        "candidateGroups": list(task.candidate_groups),
        "candidateRoles": list(task.candidate_roles),
        "formKey": task.form_key,
    }


class IncidentSchema(ma.Schema):
    """An external task whose failures left no retries (resolved by ``PUT …/external-task/<id>/retries``),
    or a timer whose step failed three times (resolved by ``POST …/instance/<id>/incidents/<id>/retry``)."""

    id = fields.String(metadata={"description": "the external task id, or the timer's wait id"})
    type = fields.String(metadata={"description": "externalTask or timer"})
    element_id = fields.String(data_key="elementId", metadata={"description": "the BPMN element id"})
    topic = fields.String(allow_none=True)
    error_message = fields.String(data_key="errorMessage", allow_none=True)
    error_details = fields.String(data_key="errorDetails", allow_none=True)


class InstanceSchema(ma.Schema):
    id = fields.String()
    definitionId = fields.String()
    processName = fields.String()
    createBy = fields.String()
    createTime = fields.Integer()
    ended = fields.Boolean()
    endTime = fields.Integer(allow_none=True)
    variables = fields.Dict(keys=fields.String())
    activeTasks = fields.List(fields.String(), metadata={"description": "ids of the active tasks"})
    businessKey = fields.String(metadata={"description": 'the business key, or ""'})
    parentId = fields.String(allow_none=True, metadata={"description": "the calling instance (call activity)"})
    activeElements = fields.List(fields.String(), metadata={"description": "ids of the elements where tokens wait"})
    incidents = fields.List(fields.Nested(IncidentSchema))
    externalTasks = fields.List(fields.String(), metadata={"description": "ids of the active external tasks"})
    historyTruncated = fields.Boolean(
        metadata={"description": "true once BPM_HISTORY_LIMIT dropped the oldest element entries of its history"}
    )


class InstanceSummarySchema(ma.Schema):
    """An instance in a list: GET …/instance/<id> has the variables, tasks and incidents."""

    id = fields.String()
    definitionId = fields.String(metadata={"description": "<processKey>:<version>"})
    processKey = fields.String()
    processName = fields.String()
    businessKey = fields.String(metadata={"description": 'the business key, or ""'})
    createBy = fields.String()
    createTime = fields.Integer()
    ended = fields.Boolean()
    endTime = fields.Integer(allow_none=True)
    parentId = fields.String(allow_none=True, metadata={"description": "the calling instance (call activity)"})


def instance_summary(instance: Instance) -> dict[str, Any]:
    return {
        "id": instance.id,
        "definitionId": instance.definition_id,
        "processKey": instance.process_key,
        "processName": instance.process_name,
        "businessKey": instance.business_key,
        "createBy": instance.create_by,
        "createTime": instance.create_time,
        "ended": instance.ended,
        "endTime": instance.end_time,
        "parentId": instance.parent_id,
    }


class ExternalTaskSchema(ma.Schema):
    """A locked external task as fetchAndLock returns it (Camunda's names; times in epoch ms)."""

    id = fields.String()
    topic = fields.String(data_key="topicName")
    worker = fields.String(data_key="workerId", allow_none=True)
    lock_expiry = fields.Integer(data_key="lockExpirationTime", allow_none=True, metadata={"description": "epoch ms"})
    instance_id = fields.String(data_key="processInstanceId")
    definition_id = fields.String(data_key="processDefinitionId", metadata={"description": "<processKey>:<version>"})
    process_key = fields.String(data_key="processDefinitionKey")
    element_id = fields.String(data_key="activityId")
    name = fields.String(data_key="activityName")
    retries = fields.Integer()
    priority = fields.Integer()
    business_key = fields.String(data_key="businessKey")
    variables = fields.Dict(
        keys=fields.String(), metadata={"description": "the instance's variables with the task's own"}
    )


class ExternalTaskDetailSchema(ExternalTaskSchema):
    status = fields.String(metadata={"description": "active, completed or cancelled"})
    incident = fields.Boolean(metadata={"description": "failures left no retries"})
    error_message = fields.String(data_key="errorMessage", allow_none=True)
    error_details = fields.String(data_key="errorDetails", allow_none=True)
    create_time = fields.Integer(data_key="createTime", metadata={"description": "epoch ms"})


class MessageResultSchema(ma.Schema):
    resultType = fields.String(
        metadata={"description": "Execution (delivered to waiting instances) or ProcessDefinition (started one)"}
    )
    instanceIds = fields.List(fields.String())


class SignalResultSchema(ma.Schema):
    triggered = fields.Integer(metadata={"description": "waiting instances the signal reached"})
    instanceIds = fields.List(fields.String(), metadata={"description": "instances started by the signal"})


class DefinitionSchema(ma.Schema):
    key = fields.String(metadata={"description": "BPMN process id"})
    name = fields.String()
    version = fields.Integer()
    definition_id = fields.String(data_key="definitionId")
    file = fields.String()
    app_name = fields.String(data_key="appName")
    version_tag = fields.String(data_key="versionTag", allow_none=True)
    warnings = fields.List(
        fields.Nested("DeployWarningSchema"),
        metadata={"description": "deployments only: what the engine does not honour in the file (it still runs)"},
    )


class FormValueSchema(ma.Schema):
    id = fields.String()
    name = fields.String()


class FormFieldSchema(ma.Schema):
    id = fields.String(metadata={"description": "the field id (the variable it sets)"})
    label = fields.String()
    type = fields.String(metadata={"description": "string, long, boolean, date, enum, double ... as written"})
    defaultValue = fields.Raw(allow_none=True)
    required = fields.Boolean()
    values = fields.List(fields.Nested(FormValueSchema), metadata={"description": "the choices of an enum"})


class FormSchema(ma.Schema):
    formKey = fields.String(allow_none=True)
    fields_ = fields.List(fields.Nested(FormFieldSchema), data_key="fields", attribute="fields")


class FormQuerySchema(QuerySchema):
    version = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "version number or tag (default: latest)"}
    )


class DeployWarningSchema(ma.Schema):
    file = fields.String()
    elementId = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)
    attribute = fields.String(metadata={"description": "the extension element or attribute not honoured"})
    message = fields.String()
    instead = fields.String(metadata={"description": "what happens instead"})
    fix = fields.String(metadata={"description": "how to get the behaviour, where there is a way"})


class ProcessSummarySchema(ma.Schema):
    key = fields.String()
    name = fields.String()
    version = fields.Integer()


class FileErrorSchema(ma.Schema):
    file = fields.String()
    message = fields.String()


class RefreshSchema(ma.Schema):
    processes = fields.List(fields.Nested(ProcessSummarySchema))
    errors = fields.List(fields.Nested(FileErrorSchema))
    warnings = fields.List(fields.Nested("DeployWarningSchema"), metadata={"description": "not honoured, per file"})


class ProcessFileSchema(ma.Schema):
    fileName = fields.String()
    key = fields.String()
    name = fields.String()
    version = fields.Integer()
    xml = fields.String()


class ClassActionSchema(ma.Schema):
    responseStatus = fields.String(metadata={"description": "SUCCESS or FAILURE"})
    process = fields.List(fields.Nested(ProcessSummarySchema))
    files = fields.List(fields.Nested(ProcessFileSchema), metadata={"description": "event 'file' only"})
    exception = fields.String()


class IdentitySchema(ma.Schema):
    user = fields.String()
    groups = fields.Method("_groups")
    roles = fields.Method("_roles")

    def _groups(self, identity: Any) -> list[str]:
        return sorted(identity.groups)

    def _roles(self, identity: Any) -> list[str]:
        return sorted(identity.roles)


_NULLABLE_TEXT = {"type": "string", "nullable": True}
#: the documented keys of a history entry; entries may carry more (the engine's element entries)
HISTORY_ENTRY_PROPERTIES = {
    "time": {"type": "integer", "description": "epoch ms"},
    "type": {"type": "string", "description": "task.claimed, task.unclaimed, task.completed, task.assigned, "
             "task.delegated, instance.started, instance.cancelled ..."},
    "taskId": {**_NULLABLE_TEXT, "description": "the task (null for instance entries)"},
    "taskName": _NULLABLE_TEXT,
    "elementId": {**_NULLABLE_TEXT, "description": "the BPMN element id"},
    "user": {**_NULLABLE_TEXT, "description": "the user the entry is about (claimer, completer, new assignee)"},
    "actor": {**_NULLABLE_TEXT, "description": "the authenticated caller (JWT user or apikey:<name>); "
              "with authentication off, the acting user"},
    "previousAssignee": {**_NULLABLE_TEXT, "description": "task.assigned/task.delegated: the assignee before"},
    "owner": {**_NULLABLE_TEXT, "description": "task.assigned/task.delegated: the owner after"},
    "candidateUsers": {"type": "array", "items": {"type": "string"}, "description": "task.delegated"},
    "definitionId": {"type": "string", "description": "instance.started"},
}  # fmt: skip

HistoryEntry = fields.Dict(
    keys=fields.String(),
    metadata={"description": "one audit entry", "properties": HISTORY_ENTRY_PROPERTIES},
)


class HealthSchema(ma.Schema):
    status = fields.String(metadata={"description": "UP"})
    backend = fields.String(metadata={"description": "backend URL scheme"})


# -- envelopes ------------------------------------------------------------------------

EmptyEnvelope = envelope_schema("EmptyEnvelope", fields.String(metadata={"description": '""'}))
IdEnvelope = envelope_schema("IdEnvelope", fields.String(metadata={"description": "the new instance id"}))
IdListEnvelope = envelope_schema("IdListEnvelope", fields.List(fields.String()))
TaskListEnvelope = envelope_schema("TaskListEnvelope", fields.List(fields.Nested(TaskSchema)))
VariablesEnvelope = envelope_schema("VariablesEnvelope", fields.Dict(keys=fields.String()))
InstanceEnvelope = envelope_schema("InstanceEnvelope", fields.Nested(InstanceSchema))
InstanceListEnvelope = envelope_schema("InstanceListEnvelope", fields.List(fields.Nested(InstanceSummarySchema)))
DefinitionListEnvelope = envelope_schema("DefinitionListEnvelope", fields.List(fields.Nested(DefinitionSchema)))
RefreshEnvelope = envelope_schema("RefreshEnvelope", fields.Nested(RefreshSchema))
ClassActionEnvelope = envelope_schema("ClassActionEnvelope", fields.Nested(ClassActionSchema))
IdentityEnvelope = envelope_schema("IdentityEnvelope", fields.Nested(IdentitySchema))
FormEnvelope = envelope_schema("FormEnvelope", fields.Nested(FormSchema))
HealthEnvelope = envelope_schema("HealthEnvelope", fields.Nested(HealthSchema))
HistoryEnvelope = envelope_schema("HistoryEnvelope", fields.List(HistoryEntry))
IncidentListEnvelope = envelope_schema("IncidentListEnvelope", fields.List(fields.Nested(IncidentSchema)))
ExternalTaskListEnvelope = envelope_schema("ExternalTaskListEnvelope", fields.List(fields.Nested(ExternalTaskSchema)))
ExternalTaskEnvelope = envelope_schema("ExternalTaskEnvelope", fields.Nested(ExternalTaskDetailSchema))
MessageResultEnvelope = envelope_schema("MessageResultEnvelope", fields.Nested(MessageResultSchema))
SignalResultEnvelope = envelope_schema("SignalResultEnvelope", fields.Nested(SignalResultSchema))
