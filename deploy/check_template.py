#!/usr/bin/env python3
"""Checks deploy/sluice.yaml beyond what cfn-lint checks: that every IAM role names only its own
resources, with only the actions its process calls.

    deploy/check_template.py [TEMPLATE]        (scripts/test runs it with the venv of cfn-lint, which
                                                has PyYAML)

What it checks, failing with one line per problem:

1. No statement anywhere (roles, queue policies) has Action "*" or "service:*", or NotAction /
   NotResource.
2. Resource "*" appears only in the statements of STAR (role, Sid), whose actions are exactly the
   ones listed there: the actions that take no resource but "*".
3. Every (action, resource) pair of every role is in ALLOWED[role]: the role's process makes that
   call on that resource (the comments say where in the code). A pair that is not listed fails,
   and so does a listed pair the role no longer grants (the table would be stale).
4. Each ECS task definition runs its own process with its own role, and each role is assumed only
   by the service it is for.
5. The state machines embed statemachine/*.asl.json byte for byte, and their substitutions fill
   exactly the file's placeholders with the right stage queues.

Resources are compared by what they name, not by their ARN text: `!GetAtt ValidatorQueue.Arn` is
`ValidatorQueue`, `!Sub "${WorkBucket.Arn}/runs/*"` is `WorkBucket/runs/*`, an execution ARN of
`${StateMachineName}` is `executions:PipelineStateMachine`, the SES identities of the account are
`ses-identities`.
"""

import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (role, Sid) -> the actions that may have Resource "*", and why.
STAR = {
    ("DispatcherRole", "FindStateMachines"): (
        {"states:ListStateMachines"},
        "ListStateMachines has no resource-level permission",
    ),
    ("GatewayRole", "FindStateMachines"): (
        {"states:ListStateMachines"},
        "ListStateMachines has no resource-level permission",
    ),
    ("TaskExecutionRole", "EcrLogin"): (
        {"ecr:GetAuthorizationToken"},
        "GetAuthorizationToken has no resource-level permission",
    ),
}

QUEUE = ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"]
ANSWER = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
SEND_EMAIL = ["ses:SendEmail", "ses:SendRawEmail"]


def pairs(actions, resources):
    return {(a, r) for a in actions for r in resources}


def worker(stage, machines):
    """What every worker does: its own queue, answers to the state machines it serves, run records."""
    return (
        pairs(QUEUE, [f"{stage}Queue"])
        | pairs(ANSWER, machines)
        | pairs(["dynamodb:GetItem", "dynamodb:UpdateItem"], ["RunsTable"])
    )


BOTH = ["PipelineStateMachine", "BatchStateMachine"]
DEAD_LETTER_QUEUES = [
    f"{q}DeadLetterQueue"
    for q in ["Events", "Validator", "FilterStats", "Partitioner", "Plotter", "Notifier", "Loader"]
]
EXECUTIONS = ["executions:PipelineStateMachine", "executions:BatchStateMachine"]
# Checking a landed object's current ETag (supersede.rs: HeadObject, which needs s3:GetObject, and
# s3:ListBucket for a 404 on a missing object) and the key's other runs (runs_of_source: Scan).
SUPERSEDE = (
    pairs(["s3:ListBucket"], ["LandingBucket"])
    | pairs(["s3:GetObject"], ["LandingBucket/*"])
    | pairs(["dynamodb:Scan"], ["RunsTable"])
)

ALLOWED = {
    # Both state machines send task messages to the stage queues (waitForTaskToken).
    "StateMachineRole": pairs(
        ["sqs:SendMessage"],
        [f"{s}Queue" for s in ["Validator", "FilterStats", "Partitioner", "Plotter", "Loader", "Notifier"]],
    ),
    # Schedules send their ticks to the events queue.
    "SchedulerRole": pairs(["sqs:SendMessage"], ["EventsQueue"]),
    "DispatcherRole": (
        pairs(QUEUE, ["EventsQueue"])
        | pairs(["sqs:GetQueueUrl", "sqs:GetQueueAttributes"], DEAD_LETTER_QUEUES)  # dead-letter alert
        | pairs(["states:ListStateMachines"], ["*"])  # find_state_machine
        | pairs(["states:StartExecution"], BOTH)
        | pairs(["states:DescribeExecution"], EXECUTIONS)  # reconciliation, never_ran
        | pairs(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"], ["RunsTable"])
        | pairs(["s3:ListBucket"], ["LandingBucket", "WorkBucket"])  # sweeps; 404s of HeadObject
        | pairs(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], ["LandingBucket/*"])  # sources land
        | pairs(["s3:GetObject", "s3:PutObject"], ["WorkBucket/sources/*"])  # sources/{name}.json
        | pairs(SEND_EMAIL, ["ses-identities"])  # reconciled runs, dead letters, failing sources
    ),
    "ValidatorRole": (
        worker("Validator", BOTH)
        | SUPERSEDE
        | pairs(["dynamodb:BatchWriteItem", "dynamodb:Query"], ["RowsTable"])
        | pairs(["s3:PutObject", "s3:AbortMultipartUpload"], ["WorkBucket/runs/*"])
    ),
    "FilterStatsRole": (
        worker("FilterStats", ["PipelineStateMachine"])
        | pairs(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], ["WorkBucket/runs/*"])
    ),
    "PartitionerRole": (
        worker("Partitioner", ["PipelineStateMachine"])
        | SUPERSEDE
        | pairs(["s3:ListBucket"], ["WorkBucket"])  # an earlier run's manifest may be missing
        | pairs(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
            ["WorkBucket/runs/*"],
        )
        | pairs(["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"], ["CuratedBucket/*"])
        # [dataset.catalog] (glue.rs), when CatalogDatabase is set.
        | pairs(
            ["glue:CreateDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:BatchCreatePartition"],
            ["glue-catalog", "glue-database", "glue-tables"],
        )
    ),
    "PlotterRole": (
        worker("Plotter", ["PipelineStateMachine"])
        | pairs(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], ["WorkBucket/runs/*"])
    ),
    "NotifierRole": (
        worker("Notifier", BOTH)
        | pairs(["s3:GetObject"], ["WorkBucket/runs/*"])  # invalid.csv, attached
        | pairs(SEND_EMAIL, ["ses-identities"])
    ),
    "LoaderRole": (
        worker("Loader", BOTH)
        | SUPERSEDE
        | pairs(["s3:GetObject"], ["WorkBucket/runs/*"])
        | pairs(["s3:PutObject", "s3:AbortMultipartUpload"], ["CuratedBucket/*"])  # batch exports
    ),
    # services/gateway over S3, DynamoDB and Step Functions (aws_mode.rs `gateway`).
    "GatewayRole": (
        pairs(["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"], ["LandingBucket/*"])  # upload, then HeadObject
        | pairs(["s3:GetObject"], ["WorkBucket/runs/*"])  # downloads (the partition manifest too)
        | pairs(["dynamodb:GetItem", "dynamodb:Scan"], ["RunsTable"])
        | pairs(["states:ListStateMachines"], ["*"])  # find_state_machine
        | pairs(["states:GetExecutionHistory"], ["executions:PipelineStateMachine"])
    ),
    "TaskExecutionRole": (
        pairs(["ecr:GetAuthorizationToken"], ["*"])
        | pairs(
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            ["ecr-repository:ImageRepository"],
        )
        | pairs(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [
                f"{p}LogGroup"
                for p in [
                    "Dispatcher", "Gateway", "Validator", "FilterStats", "Partitioner", "Plotter",
                    "Notifier", "Loader",
                ]
            ],
        )
        | pairs(["secretsmanager:GetSecretValue"], ["param:WarehouseUrlSecretArn"])
    ),
}

# Who may assume each role.
TRUST = {
    "StateMachineRole": "states.amazonaws.com",
    "SchedulerRole": "scheduler.amazonaws.com",
}

# Task definition -> (role, command).
TASKS = {
    "DispatcherTaskDefinition": ("DispatcherRole", ["dispatcher"]),
    "GatewayTaskDefinition": ("GatewayRole", ["gateway", "--bind", "0.0.0.0", "--port", "8080"]),
    "ValidatorTaskDefinition": ("ValidatorRole", ["worker", "validator"]),
    "FilterStatsTaskDefinition": ("FilterStatsRole", ["worker", "filter-stats"]),
    "PartitionerTaskDefinition": ("PartitionerRole", ["worker", "partitioner"]),
    "PlotterTaskDefinition": ("PlotterRole", ["worker", "plotter"]),
    "NotifierTaskDefinition": ("NotifierRole", ["worker", "notifier"]),
    "LoaderTaskDefinition": ("LoaderRole", ["worker", "loader"]),
}

DEFINITIONS = {
    "PipelineStateMachine": "statemachine/pipeline.asl.json",
    "BatchStateMachine": "statemachine/batch.asl.json",
}
# The placeholder of each stage queue (sluice_pipeline::definition::queue_placeholder).
PLACEHOLDERS = {
    "ValidatorQueueUrl": "ValidatorQueue",
    "FilterStatsQueueUrl": "FilterStatsQueue",
    "PartitionerQueueUrl": "PartitionerQueue",
    "PlotterQueueUrl": "PlotterQueue",
    "LoaderQueueUrl": "LoaderQueue",
    "NotifierQueueUrl": "NotifierQueue",
}


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !GetAtt, !Sub, ...) read as their long forms."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _tag)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)


def listify(v):
    return v if isinstance(v, list) else [v]


def resource_name(r):
    """What a Resource entry names (see the module's doc)."""
    if r == "*":
        return "*"
    if isinstance(r, dict) and "Ref" in r:
        ref = r["Ref"]
        return f"param:{ref}" if ref in PARAMETERS else ref
    if isinstance(r, dict) and "Fn::GetAtt" in r:
        name, attr = r["Fn::GetAtt"]
        return name if attr == "Arn" else f"{name}.{attr}"
    if isinstance(r, dict) and "Fn::Sub" in r:
        text = r["Fn::Sub"]
        m = re.fullmatch(r"\$\{(\w+)\.Arn\}(/.*)?", text)
        if m:
            return m.group(1) + (m.group(2) or "")
        m = re.fullmatch(r"arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:execution:\$\{(\w+)\}:\*", text)
        if m:
            machine = {"StateMachineName": "PipelineStateMachine", "BatchStateMachineName": "BatchStateMachine"}
            return "executions:" + machine.get(m.group(1), "?" + m.group(1))
        glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
        if text == glue + "catalog":
            return "glue-catalog"
        if text == glue + "database/${CatalogDatabase}":
            return "glue-database"
        if text == glue + "table/${CatalogDatabase}/*":
            return "glue-tables"
        if text == "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*":
            return "ses-identities"
        m = re.fullmatch(r"arn:\$\{AWS::Partition\}:ecr:\$\{AWS::Region\}:\$\{AWS::AccountId\}:repository/\$\{(\w+)\}", text)
        if m:
            return "ecr-repository:" + m.group(1)
    return f"?{r!r}"


def statements(document):
    """The statements of a policy document; an Fn::If of statements yields its true branch."""
    for s in listify(document.get("Statement", [])):
        if isinstance(s, dict) and "Fn::If" in s:
            _, yes, _ = s["Fn::If"]
            if isinstance(yes, dict) and "Sid" in yes:
                yield yes
            continue
        yield s


def check(path):
    global PARAMETERS
    template = load(path)
    PARAMETERS = set(template.get("Parameters", {}))
    resources = template["Resources"]
    problems = []

    def problem(where, what):
        problems.append(f"{where}: {what}")

    # 1 and 2, over every policy document in the template.
    def walk_documents(logical, resource):
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for p in props.get("Policies", []):
                yield f"{logical}/{p['PolicyName']}", logical, p["PolicyDocument"]
        elif "PolicyDocument" in props:
            yield logical, None, props["PolicyDocument"]

    granted = {}
    for logical, resource in resources.items():
        for where, role, document in walk_documents(logical, resource):
            for s in statements(document):
                sid = s.get("Sid", "?")
                at = f"{where} [{sid}]"
                for key in ("NotAction", "NotResource"):
                    if key in s:
                        problem(at, f"{key} is not allowed: name actions and resources")
                actions = listify(s.get("Action", []))
                for a in actions:
                    if a == "*" or (isinstance(a, str) and a.endswith(":*")):
                        problem(at, f"Action {a!r}: name the actions")
                if role is None:
                    continue  # a resource policy: its Resource is the queue itself
                names = [resource_name(r) for r in listify(s.get("Resource", []))]
                if "*" in names:
                    allowed, _why = STAR.get((role, sid), (set(), None))
                    if not allowed:
                        problem(at, 'Resource "*" without an entry in STAR (check_template.py) saying why')
                    elif set(actions) != allowed:
                        problem(at, f'Resource "*" for {sorted(actions)}; STAR allows it for {sorted(allowed)} only')
                for n in names:
                    if n.startswith("?"):
                        problem(at, f"cannot tell what Resource {n[1:]} names")
                for a in actions:
                    for n in names:
                        granted.setdefault(role, set()).add((a, n))

    # 3.
    roles = {k for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    for role in sorted(roles | set(ALLOWED)):
        if role not in ALLOWED:
            problem(role, "a role check_template.py does not know: add what its process calls to ALLOWED")
            continue
        if role not in roles:
            problem(role, "in ALLOWED but not in the template")
            continue
        have = granted.get(role, set())
        for a, n in sorted(have - ALLOWED[role]):
            problem(role, f"grants {a} on {n}, which its process does not use (or add it to ALLOWED with where it is called)")
        for a, n in sorted(ALLOWED[role] - have):
            problem(role, f"ALLOWED lists {a} on {n} but the role does not grant it (a stale entry?)")

    # 4.
    for role in sorted(roles):
        trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]
        principals = set()
        for s in statements(trust):
            principals |= set(listify(s.get("Principal", {}).get("Service", [])))
        want = TRUST.get(role, "ecs-tasks.amazonaws.com")
        if principals != {want}:
            problem(role, f"assumed by {sorted(principals)}, expected only {want}")
    task_roles = {}
    for task, (role, command) in TASKS.items():
        if task not in resources:
            problem(task, "missing")
            continue
        props = resources[task]["Properties"]
        got_role = resource_name(props.get("TaskRoleArn"))
        if got_role != role:
            problem(task, f"runs as {got_role}, expected {role}")
        task_roles.setdefault(got_role, []).append(task)
        containers = props.get("ContainerDefinitions", [])
        if len(containers) != 1 or [str(c) for c in containers[0].get("Command", [])] != command:
            problem(task, f"expected one container running `sluice {' '.join(command)}`")
    for role, tasks in task_roles.items():
        if len(tasks) > 1:
            problem(role, f"shared by {tasks}: one role per process")

    # 5.
    for machine, file in DEFINITIONS.items():
        props = resources[machine]["Properties"]
        with open(os.path.join(ROOT, file), encoding="utf-8") as f:
            text = f.read()
        if props.get("DefinitionString") != text:
            problem(machine, f"DefinitionString is not {file} byte for byte: copy the file in again "
                             f"(indented 8 spaces) after changing it")
        used = set(re.findall(r"\$\{(\w+)\}", text))
        subs = props.get("DefinitionSubstitutions", {})
        if set(subs) != used:
            problem(machine, f"DefinitionSubstitutions {sorted(subs)} but {file} has placeholders {sorted(used)}")
        for key, value in subs.items():
            want = PLACEHOLDERS.get(key)
            if value != {"Ref": want}:
                problem(machine, f"{key} is {value!r}, expected the URL of {want} (Ref)")
    return problems


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "deploy", "sluice.yaml")
    problems = check(path)
    for p in problems:
        print(f"check_template: {p}", file=sys.stderr)
    if problems:
        print(f"check_template: {len(problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    roles = len(ALLOWED)
    print(f"check_template: {path}: {roles} roles name only their own resources; definitions current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
