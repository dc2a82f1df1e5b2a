"""AdminService handlers for registered entities: tasks, workflows, launch plans, projects, domains, version.

Registration is idempotent by content, as in FlyteAdmin: re-creating an id with identical content answers
ALREADY_EXISTS (which flytekit treats as success), with different content INVALID_ARGUMENT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncrun._proto.flyteidl import admin, core
from asyncrun._version import __version__
from asyncrun.sandbox._admin_common import (
    AdminState,
    already_exists,
    invalid,
    list_query,
    not_found,
    page_token,
    validate_identifier,
    validate_project_domain,
)
from asyncrun.sandbox._compiler import (
    CompileError,
    compile_workflow,
    expected_launch_plan_inputs,
    format_id,
    referenced_entities,
)
from asyncrun.sandbox._store import CreateOutcome

if TYPE_CHECKING:
    from asyncrun.sandbox._query import Query

__all__ = ["EntityHandlers"]

TASK = core.ResourceType.TASK
WORKFLOW = core.ResourceType.WORKFLOW
LAUNCH_PLAN = core.ResourceType.LAUNCH_PLAN


def _answer_outcome(outcome: CreateOutcome, what: str) -> None:
    if outcome is CreateOutcome.IDENTICAL:
        already_exists(f"{what} with identical structure already exists")
    if outcome is CreateOutcome.DIFFERENT:
        invalid(f"{what} with different structure already exists")


def _validate_task_template(template: core.TaskTemplate) -> None:
    if not template.type:
        invalid("missing type")
    if template.metadata is None:
        invalid("missing metadata")
    if template.metadata.runtime is not None and not template.metadata.runtime.version:
        invalid("missing runtime version")
    if template.interface is None:
        invalid("missing interface")
    if template.container is not None and not template.container.image:
        invalid("missing image")


def _short_description(description: admin.DescriptionEntity | None) -> str:
    return description.short_description if description is not None else ""


def _named_conditions(project: str, domain: str, name: str = "") -> list[tuple[str, list[object]]]:
    conditions: list[tuple[str, list[object]]] = [("project = ?", [project]), ("domain = ?", [domain])]
    if name:
        conditions.append(("name = ?", [name]))
    return conditions


class EntityHandlers(AdminState):
    """Tasks, workflows, launch plans, projects, domains and the version."""

    # ------------------------------------------------------------------------------------------------
    # Tasks
    # ------------------------------------------------------------------------------------------------

    async def create_task(self, message: admin.TaskCreateRequest) -> admin.TaskCreateResponse:
        """Register a task (idempotent by content; the template takes the request id)."""
        validate_identifier(self.store, message.id, TASK, must_exist=True)
        assert message.id is not None
        if message.spec is None or message.spec.template is None:
            invalid("missing task template")
        _validate_task_template(message.spec.template)
        template = core.TaskTemplate.parse(bytes(message.spec.template))
        # FlyteAdmin registers the template under the request's id, whatever the template said.
        template.id = core.Identifier.parse(bytes(message.id))
        outcome = await self.store.create_task(
            template, short_description=_short_description(message.spec.description)
        )
        _answer_outcome(outcome, "task")
        return admin.TaskCreateResponse()

    async def get_task(self, message: admin.ObjectGetRequest) -> admin.Task:
        """A registered task; NOT_FOUND when missing."""
        key = validate_identifier(self.store, message.id, TASK)
        task = await self.store.get_task(key)
        if task is None:
            not_found(f"task [{format_id(key)}] does not exist")
        return task

    async def list_task_ids(
        self, message: admin.NamedEntityIdentifierListRequest
    ) -> admin.NamedEntityIdentifierList:
        """Names of the tasks of a project/domain, sorted by name, paged."""
        return await self._list_ids("task", message)

    async def list_tasks(self, message: admin.ResourceListRequest) -> admin.TaskList:
        """Task versions of a project/domain (optionally one name), filtered, sorted, paged."""
        query = self._resource_query("task", message)
        tasks = await self.store.list_tasks(query)
        return admin.TaskList(tasks=tasks, token=page_token(query, len(tasks)))

    # ------------------------------------------------------------------------------------------------
    # Workflows
    # ------------------------------------------------------------------------------------------------

    async def create_workflow(self, message: admin.WorkflowCreateRequest) -> admin.WorkflowCreateResponse:
        """Compile and register a workflow; every referenced task must be registered."""
        validate_identifier(self.store, message.id, WORKFLOW, must_exist=True)
        assert message.id is not None
        if message.spec is None or message.spec.template is None:
            invalid("missing workflow template")
        template = core.WorkflowTemplate.parse(bytes(message.spec.template))
        template.id = core.Identifier.parse(bytes(message.id))
        task_keys, launch_plan_keys = referenced_entities(template, message.spec.sub_workflows)
        tasks = await self.store.get_task_templates(task_keys)
        launch_plans = await self.store.get_launch_plan_outputs(launch_plan_keys)
        try:
            compiled = compile_workflow(template, message.spec.sub_workflows, tasks, launch_plans)
        except CompileError as exc:
            invalid(f"failed to compile workflow for [{format_id(message.id)}] with err: {exc}")
        outcome = await self.store.create_workflow(
            message.id, compiled, short_description=_short_description(message.spec.description)
        )
        _answer_outcome(outcome, "workflow")
        return admin.WorkflowCreateResponse()

    async def get_workflow(self, message: admin.ObjectGetRequest) -> admin.Workflow:
        """A registered workflow with its compiled closure; NOT_FOUND when missing."""
        key = validate_identifier(self.store, message.id, WORKFLOW)
        workflow = await self.store.get_workflow(key)
        if workflow is None:
            not_found(f"workflow [{format_id(key)}] does not exist")
        return workflow

    async def list_workflow_ids(
        self, message: admin.NamedEntityIdentifierListRequest
    ) -> admin.NamedEntityIdentifierList:
        """Names of the workflows of a project/domain, sorted by name, paged."""
        return await self._list_ids("workflow", message)

    async def list_workflows(self, message: admin.ResourceListRequest) -> admin.WorkflowList:
        """Workflow versions of a project/domain (optionally one name), filtered, sorted, paged."""
        query = self._resource_query("workflow", message)
        workflows = await self.store.list_workflows(query)
        return admin.WorkflowList(workflows=workflows, token=page_token(query, len(workflows)))

    # ------------------------------------------------------------------------------------------------
    # Launch plans
    # ------------------------------------------------------------------------------------------------

    async def create_launch_plan(
        self, message: admin.LaunchPlanCreateRequest
    ) -> admin.LaunchPlanCreateResponse:
        """Register a launch plan (INACTIVE) for a registered workflow, validating its inputs."""
        validate_identifier(self.store, message.id, LAUNCH_PLAN, must_exist=True)
        assert message.id is not None
        if message.spec is None:
            invalid("missing spec")
        workflow_key = validate_identifier(self.store, message.spec.workflow_id, WORKFLOW)
        workflow = await self.store.get_workflow(workflow_key)
        compiled = workflow.closure.compiled_workflow if workflow and workflow.closure else None
        if compiled is None or compiled.primary is None or compiled.primary.template is None:
            not_found(f"workflow [{format_id(workflow_key)}] does not exist")
        interface = compiled.primary.template.interface or core.TypedInterface()
        try:
            expected = expected_launch_plan_inputs(interface.inputs, message.spec)
        except CompileError as exc:
            invalid(str(exc))
        spec = admin.LaunchPlanSpec.parse(bytes(message.spec))
        # FlyteAdmin lists every input a launch needs in default_inputs, unbound ones as required.
        spec.default_inputs = core.ParameterMap.parse(bytes(expected))
        closure = admin.LaunchPlanClosure(
            expected_inputs=expected, expected_outputs=interface.outputs or core.VariableMap()
        )
        outcome = await self.store.create_launch_plan(message.id, spec, closure)
        _answer_outcome(outcome, "launch plan")
        return admin.LaunchPlanCreateResponse()

    async def get_launch_plan(self, message: admin.ObjectGetRequest) -> admin.LaunchPlan:
        """A registered launch plan; NOT_FOUND when missing."""
        key = validate_identifier(self.store, message.id, LAUNCH_PLAN)
        launch_plan = await self.store.get_launch_plan(key)
        if launch_plan is None:
            not_found(f"launch plan [{format_id(key)}] does not exist")
        return launch_plan

    async def get_active_launch_plan(self, message: admin.ActiveLaunchPlanRequest) -> admin.LaunchPlan:
        """The ACTIVE version of a launch plan name; NOT_FOUND when none is active."""
        named = message.id
        if named is None:
            invalid("missing id")
        validate_project_domain(self.store, named.project, named.domain, must_exist=False)
        if not named.name:
            invalid("missing name")
        launch_plan = await self.store.get_active_launch_plan(named.project, named.domain, named.name)
        if launch_plan is None:
            not_found(f"no active launch plan named [{named.project}:{named.domain}:{named.name}]")
        return launch_plan

    async def list_launch_plan_ids(
        self, message: admin.NamedEntityIdentifierListRequest
    ) -> admin.NamedEntityIdentifierList:
        """Names of the launch plans of a project/domain, sorted by name, paged."""
        return await self._list_ids("launch_plan", message)

    async def list_launch_plans(self, message: admin.ResourceListRequest) -> admin.LaunchPlanList:
        """Launch plan versions of a project/domain (optionally one name), filtered, sorted, paged."""
        query = self._resource_query("launch_plan", message)
        launch_plans = await self.store.list_launch_plans(query)
        return admin.LaunchPlanList(launch_plans=launch_plans, token=page_token(query, len(launch_plans)))

    async def update_launch_plan(
        self, message: admin.LaunchPlanUpdateRequest
    ) -> admin.LaunchPlanUpdateResponse:
        """Activate (deactivating the other versions) or deactivate a launch plan."""
        key = validate_identifier(self.store, message.id, LAUNCH_PLAN)
        if not await self.store.set_launch_plan_state(key, message.state):
            not_found(f"launch plan [{format_id(key)}] does not exist")
        return admin.LaunchPlanUpdateResponse()

    # ------------------------------------------------------------------------------------------------
    # Listing helpers
    # ------------------------------------------------------------------------------------------------

    def _resource_query(self, entity: str, message: admin.ResourceListRequest) -> Query:
        named = message.id
        if named is None:
            invalid("missing id")
        validate_project_domain(self.store, named.project, named.domain, must_exist=False)
        return list_query(
            entity,
            filters=message.filters,
            sort_by=message.sort_by,
            limit=message.limit,
            token=message.token,
            conditions=_named_conditions(named.project, named.domain, named.name),
        )

    async def _list_ids(
        self, entity: str, message: admin.NamedEntityIdentifierListRequest
    ) -> admin.NamedEntityIdentifierList:
        validate_project_domain(self.store, message.project, message.domain, must_exist=False)
        query = list_query(
            entity,
            filters=message.filters,
            sort_by=message.sort_by,
            limit=message.limit,
            token=message.token,
            conditions=_named_conditions(message.project, message.domain),
            ids=True,
        )
        entities = await self.store.list_entity_names(entity, query)
        return admin.NamedEntityIdentifierList(entities=entities, token=page_token(query, len(entities)))

    # ------------------------------------------------------------------------------------------------
    # Projects, domains, version
    # ------------------------------------------------------------------------------------------------

    async def list_projects(self, message: admin.ProjectListRequest) -> admin.Projects:
        """Registered projects, each with the configured domains."""
        query = list_query(
            "project",
            filters=message.filters,
            sort_by=message.sort_by,
            limit=message.limit,
            token=message.token,
            allow_unlimited=True,
        )
        projects = await self.store.list_projects(query)
        return admin.Projects(projects=projects, token=page_token(query, len(projects)))

    async def get_domains(self, message: admin.GetDomainRequest) -> admin.GetDomainsResponse:
        """The configured domains."""
        return admin.GetDomainsResponse(
            domains=[admin.Domain(id=domain, name=domain) for domain in self.store.domains]
        )

    async def get_version(self, message: admin.GetVersionRequest) -> admin.GetVersionResponse:
        """The version in FlyteAdmin's form (`v0.1.0`, which clients parse); our name as the build."""
        return admin.GetVersionResponse(
            control_plane_version=admin.Version(
                build="asyncrun-sandbox", version=f"v{__version__}", build_time=""
            )
        )
