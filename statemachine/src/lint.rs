//! Checks a definition the way `statelint` does, and reports every problem found, each as a
//! sentence naming the state (and the branch it sits in).
//!
//! It works on the raw JSON so that it can report several problems at once and explain fields the
//! typed model would not even read: unknown or misplaced fields, missing `Next`/`End`, transitions
//! to states that do not exist, unreachable states, malformed Choice rules, paths, payload
//! templates, intrinsic calls, Retry/Catch rules (`States.ALL` alone and last) and field
//! combinations (`Seconds` xor `Timestamp`..., `HeartbeatSeconds` < `TimeoutSeconds`), machines
//! that can never end, Task Resource ARNs, Credentials, the Distributed Map fields (ItemReader,
//! ItemBatcher, ResultWriter, Label), intrinsic arguments given as literals of the wrong type, and
//! workflow variables (`Assign` names, `$name` reads of variables no state assigns, branches that
//! assign an outer variable). Parallel branches and Map item processors are checked recursively.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use crate::choice::{Condition, parse_timestamp};
use crate::error;
use crate::intrinsics::Intrinsic;
use crate::model::DEFAULT_TASK_TIMEOUT_SECONDS;
use crate::path::{Path, Root};
pub use crate::problem::Problem;
use crate::template::{PathOrIntrinsic, PayloadTemplate};
use crate::variables::check_name as check_variable_name;

/// Lints a definition given as JSON text.
pub fn lint_str(json: &str) -> Vec<Problem> {
    match serde_json::from_str::<Value>(json) {
        Ok(v) => lint_value(&v),
        Err(e) => vec![Problem::new(
            "",
            format!("the definition is not valid JSON: {e}"),
        )],
    }
}

/// Lints a parsed definition.
pub fn lint_value(v: &Value) -> Vec<Problem> {
    lint(v, true)
}

/// The problems that keep a definition from running locally: all of [`lint_value`]'s except the
/// shape of Task `Resource`s, which the local executor never calls (every Task is answered by its
/// [`crate::executor::TaskRunner`], whatever its Resource; see the responder's contract).
pub fn lint_for_execution(v: &Value) -> Vec<Problem> {
    lint(v, false)
}

fn lint(v: &Value, check_resources: bool) -> Vec<Problem> {
    let mut l = Linter {
        problems: Vec::new(),
        names: HashMap::new(),
        check_resources,
        scopes: Vec::new(),
        next_isolated: false,
    };
    // JSONata states: their own checks, then the checks below on a JSONPath-shaped copy.
    let v = &crate::lint_jsonata::check(v, &mut l.problems);
    let Value::Object(top) = v else {
        l.problems.push(Problem::new(
            "",
            "the definition must be a JSON object with StartAt and States",
        ));
        return l.problems;
    };
    for (key, value) in top {
        match key.as_str() {
            "StartAt" | "States" | "Comment" => {}
            "Version" => {
                if !value.is_string() {
                    l.push("", "\"Version\" must be a string such as \"1.0\"");
                }
            }
            "TimeoutSeconds" => l.positive_int("", key, value),
            "QueryLanguage" => l.query_language("", value),
            other => l.push("", format!("unknown top-level field \"{other}\" (allowed: Comment, StartAt, States, TimeoutSeconds, Version, QueryLanguage)")),
        }
    }
    l.machine(top, &Scope::Top);
    l.problems
}

/// Which machine a state belongs to, for messages.
#[derive(Clone)]
enum Scope {
    Top,
    Nested { label: String, parent: Box<Scope> },
}

impl Scope {
    fn suffix(&self) -> String {
        match self {
            Scope::Top => String::new(),
            Scope::Nested { label, parent } => format!(" in {label}{}", parent.suffix()),
        }
    }

    fn state(&self, name: &str) -> String {
        format!("state \"{name}\"{}", self.suffix())
    }

    fn machine(&self) -> String {
        match self {
            Scope::Top => String::new(),
            Scope::Nested { label, parent } => format!("{label}{}", parent.suffix()),
        }
    }

    fn nested(&self, label: String) -> Scope {
        Scope::Nested {
            label,
            parent: Box::new(self.clone()),
        }
    }
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
const IO: &[&str] = &["InputPath", "OutputPath"];

fn allowed_fields(kind: &str) -> Option<Vec<&'static str>> {
    let specific: &[&str] = match kind {
        "Task" => &[
            "Resource",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
            "Assign",
            "Next",
            "End",
        ],
        "Pass" => &[
            "ResultPath",
            "Parameters",
            "Result",
            "Assign",
            "Next",
            "End",
        ],
        "Choice" => &["Choices", "Default", "Assign"],
        "Wait" => &[
            "Assign",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Next",
            "End",
        ],
        "Succeed" => &[],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &[
            "Branches",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Retry",
            "Catch",
            "Assign",
            "Next",
            "End",
        ],
        "Map" => &[
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "Label",
            "Assign",
            "ResultPath",
            "ResultSelector",
            "Retry",
            "Catch",
            "Next",
            "End",
        ],
        _ => return None,
    };
    let mut all: Vec<&'static str> = COMMON.to_vec();
    if kind != "Fail" {
        all.extend_from_slice(IO);
    }
    all.extend_from_slice(specific);
    Some(all)
}

const KNOWN_ERRORS: &[&str] = &[
    error::ALL,
    error::TIMEOUT,
    error::HEARTBEAT_TIMEOUT,
    error::TASK_FAILED,
    error::RUNTIME,
    error::DATA_LIMIT_EXCEEDED,
    error::PERMISSIONS,
    error::RESULT_PATH_MATCH_FAILURE,
    error::PARAMETER_PATH_FAILURE,
    error::BRANCH_FAILED,
    error::NO_CHOICE_MATCHED,
    error::INTRINSIC_FAILURE,
    error::EXCEED_TOLERATED_FAILURE_THRESHOLD,
    error::ITEM_READER_FAILED,
    "States.ResultWriterFailed",
    "States.QueryEvaluationError",
];

/// The largest integer Step Functions accepts in its numeric fields.
const MAX_INT: u64 = 99_999_999;

struct Linter {
    problems: Vec<Problem>,
    /// Every state name seen so far and where: names must be unique in the whole state machine,
    /// branches and item processors included.
    names: HashMap<String, String>,
    /// Whether Task `Resource`s must have the shape of an ARN.
    check_resources: bool,
    /// The variables each machine being checked assigns, outermost first.
    scopes: Vec<VarScope>,
    /// Set by a Distributed Map for its item processor: a scope that sees no outer variable.
    next_isolated: bool,
}

/// The workflow variables one machine (the top level, a branch, an item processor) assigns.
struct VarScope {
    assigned: HashSet<String>,
    /// A Distributed Map's item processor: its iterations are child executions.
    isolated: bool,
}

impl Linter {
    fn push(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(location, message));
    }

    fn query_language(&mut self, at: &str, v: &Value) {
        match v.as_str() {
            Some("JSONPath" | "JSONata") => {}
            _ => self.push(at, "\"QueryLanguage\" must be \"JSONPath\" or \"JSONata\""),
        }
    }

    fn positive_int(&mut self, at: &str, field: &str, v: &Value) {
        match v.as_u64() {
            Some(n) if (1..=MAX_INT).contains(&n) => {}
            _ => self.push(
                at,
                format!("\"{field}\" must be a positive integer (1 to {MAX_INT}), got {v}"),
            ),
        }
    }

    fn non_negative_int(&mut self, at: &str, field: &str, v: &Value) {
        match v.as_u64() {
            Some(n) if n <= MAX_INT => {}
            _ => self.push(
                at,
                format!("\"{field}\" must be a non-negative integer (0 to {MAX_INT}), got {v}"),
            ),
        }
    }

    fn path_field(&mut self, at: &str, field: &str, v: &Value, nullable: bool) {
        match v {
            Value::Null if nullable => {}
            Value::String(s) => {
                if let Err(e) = Path::parse(s) {
                    self.push(at, format!("\"{field}\": {e}"));
                }
            }
            _ => self.push(
                at,
                format!(
                    "\"{field}\" must be a path string{}",
                    if nullable { " or null" } else { "" }
                ),
            ),
        }
    }

    fn reference_path_field(
        &mut self,
        at: &str,
        field: &str,
        v: &Value,
        nullable: bool,
        input_only: bool,
    ) {
        match v {
            Value::Null if nullable => {}
            Value::String(s) => match Path::parse_reference(s) {
                Ok(p) if input_only && p.root() == Root::Context => {
                    self.push(at, format!("\"{field}\" must point into the state input ($...), not the context object ($$...)"))
                }
                Ok(p) if input_only && p.root() == Root::Variable => {
                    self.push(at, format!("\"{field}\" must point into the state input ($...), not a variable: set variables with \"Assign\""))
                }
                Ok(_) => {}
                Err(e) => self.push(at, format!("\"{field}\": {e}")),
            },
            _ => self.push(at, format!("\"{field}\" must be a reference path string{}", if nullable { " or null" } else { "" })),
        }
    }

    fn template_field(&mut self, at: &str, field: &str, v: &Value) {
        match PayloadTemplate::compile(v) {
            Ok(t) => {
                for call in t.intrinsics() {
                    self.intrinsic_literals(at, field, call);
                }
            }
            Err(e) => self.push(at, format!("\"{field}\": {e}")),
        }
    }

    /// An `Assign` (of a state, a Choice rule or a catcher): an object of variable names, each
    /// a literal value or, with a name ending in `.$`, a path or an intrinsic function.
    fn assign_field(&mut self, at: &str, what: &str, v: &Value) {
        let Value::Object(m) = v else {
            self.push(
                at,
                format!("\"{what}\" must be an object of variable names and values, got {v}"),
            );
            return;
        };
        for key in m.keys() {
            let name = key.strip_suffix(".$").unwrap_or(key);
            if let Err(why) = check_variable_name(name) {
                self.push(
                    at,
                    format!("\"{what}\": \"{key}\" is not a valid variable name: {why}"),
                );
            }
        }
        self.template_field(at, what, v);
    }

    /// An intrinsic call whose literal arguments are sure to fail at run time.
    fn intrinsic_literals(&mut self, at: &str, field: &str, call: &Intrinsic) {
        for problem in call.literal_problems() {
            self.push(at, format!("\"{field}\": in {call}: {problem}"));
        }
    }

    fn machine(&mut self, m: &Map<String, Value>, scope: &Scope) {
        let where_ = scope.machine();
        let start_at = match m.get("StartAt") {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.push(
                    where_.clone(),
                    "\"StartAt\" must be a state name (a string)",
                );
                None
            }
            None => {
                self.push(
                    where_.clone(),
                    "\"StartAt\" is missing: name the first state to run",
                );
                None
            }
        };
        let states = match m.get("States") {
            Some(Value::Object(s)) if !s.is_empty() => s,
            Some(Value::Object(_)) => {
                self.push(where_, "\"States\" is empty: add at least one state");
                return;
            }
            Some(_) => {
                self.push(where_, "\"States\" must be an object of states by name");
                return;
            }
            None => {
                self.push(where_, "\"States\" is missing");
                return;
            }
        };
        if let Some(start) = start_at
            && !states.contains_key(start)
        {
            self.push(
                where_.clone(),
                format!(
                    "\"StartAt\" names \"{start}\", which is not one of the states{}",
                    scope.suffix()
                ),
            );
        }
        // Variables: a branch or an iteration reads those around it but cannot assign them.
        let assigned = assigned_variables(states);
        let isolated = std::mem::take(&mut self.next_isolated);
        if !isolated {
            let mut outer: Vec<&String> = assigned.iter().filter(|n| self.is_visible(n)).collect();
            outer.sort();
            for name in outer {
                self.push(
                    where_.clone(),
                    format!("assigns ${name}, a variable of an outer scope: a Parallel branch or Map iteration can read the variables around it but not assign them (use another name)"),
                );
            }
        }
        self.scopes.push(VarScope { assigned, isolated });
        for (name, state) in states {
            let here = scope.state(name);
            if let Some(first) = self.names.get(name) {
                self.push(
                    here.clone(),
                    format!("the name is already used by {first}; state names must be unique in the whole state machine, branches included"),
                );
            } else {
                self.names.insert(name.clone(), here);
            }
            self.state(name, state, states, scope);
        }
        if let Some(start) = start_at
            && states.contains_key(start)
        {
            let reachable = reachable(start, states);
            for name in states.keys() {
                if !reachable.contains(name.as_str()) {
                    self.push(
                        scope.state(name),
                        "it is never reached: no Next, Default, Choice rule or Catch leads to it from StartAt",
                    );
                }
            }
            // AWS refuses a machine (and each branch and item processor) none of whose reachable
            // states can end it ("no terminal state"): every path from StartAt loops forever.
            if !reachable
                .iter()
                .any(|name| states.get(*name).is_some_and(is_terminal))
            {
                self.push(
                    where_,
                    format!(
                        "no terminal state can be reached from StartAt \"{start}\"{}: every path loops; add a Succeed or Fail state, or \"End\": true",
                        scope.suffix()
                    ),
                );
            }
        }
        self.scopes.pop();
    }

    /// Whether some state of the machines being checked (this one and those around it, up to a
    /// Distributed Map's item processor) assigns `name`.
    fn is_visible(&self, name: &str) -> bool {
        for s in self.scopes.iter().rev() {
            if s.assigned.contains(name) {
                return true;
            }
            if s.isolated {
                return false;
            }
        }
        false
    }

    /// The `$name` variables a state reads (in its paths, `.$` fields, Choice rules and intrinsic
    /// functions; not in the branches and item processor it holds) must be valid names that some
    /// state assigns, in its machine or around it.
    fn variable_references(&mut self, at: &str, state: &Value) {
        let mut names = Vec::new();
        referenced_variables(state, None, &mut names);
        let mut seen = HashSet::new();
        for name in names {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Err(why) = check_variable_name(&name) {
                self.push(
                    at,
                    format!("reads ${name}, which is not a valid variable name: {why}"),
                );
            } else if !self.is_visible(&name) {
                self.push(at, format!("reads the variable ${name}, which no state assigns (in its machine or around it; a Distributed Map's iterations see no outer variable)"));
            }
        }
    }

    fn state(&mut self, name: &str, state: &Value, states: &Map<String, Value>, scope: &Scope) {
        let at = scope.state(name);
        if name.chars().count() > 80 {
            self.push(at.clone(), "state names are at most 80 characters long");
        }
        let Value::Object(s) = state else {
            self.push(at, "a state must be an object with a \"Type\"");
            return;
        };
        let kind = match s.get("Type") {
            Some(Value::String(t)) => t.as_str(),
            Some(_) => {
                self.push(at, "\"Type\" must be a string");
                return;
            }
            None => {
                self.push(at, "\"Type\" is missing (Task, Pass, Choice, Wait, Succeed, Fail, Parallel or Map)");
                return;
            }
        };
        let Some(allowed) = allowed_fields(kind) else {
            self.push(at, format!("unknown Type \"{kind}\" (use Task, Pass, Choice, Wait, Succeed, Fail, Parallel or Map)"));
            return;
        };
        for key in s.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let msg = match key.as_str() {
                "Assign" => format!(
                    "\"Assign\" is not allowed in a {kind} state: it ends the execution, so there is nothing to assign for"
                ),
                "Arguments" | "Output" => format!(
                    "\"{key}\" is a JSONata field; this engine runs JSONPath definitions only"
                ),
                _ => format!(
                    "\"{key}\" is not allowed in a {kind} state (allowed: {})",
                    allowed.join(", ")
                ),
            };
            self.push(at.clone(), msg);
        }
        if let Some(q) = s.get("QueryLanguage") {
            self.query_language(&at, q);
        }
        if let Some(c) = s.get("Comment")
            && !c.is_string()
        {
            self.push(at.clone(), "\"Comment\" must be a string");
        }

        // Transitions.
        let exists = |target: &str| states.contains_key(target);
        let has_transition = matches!(kind, "Task" | "Pass" | "Wait" | "Parallel" | "Map");
        if has_transition {
            match (s.get("Next"), s.get("End")) {
                (Some(_), Some(_)) => {
                    self.push(at.clone(), "has both \"Next\" and \"End\"; keep one")
                }
                (None, None) => self.push(
                    at.clone(),
                    "needs \"Next\" (the state to go to) or \"End\": true",
                ),
                (None, Some(Value::Bool(true))) => {}
                (None, Some(_)) => self.push(at.clone(), "\"End\" must be true (or use \"Next\")"),
                (Some(Value::String(n)), None) => {
                    if !exists(n) {
                        self.push(
                            at.clone(),
                            format!(
                                "\"Next\" names \"{n}\", which is not one of the states{}",
                                scope.suffix()
                            ),
                        );
                    }
                }
                (Some(_), None) => {
                    self.push(at.clone(), "\"Next\" must be a state name (a string)")
                }
            }
        }

        // Input and output processing fields.
        for field in ["InputPath", "OutputPath"] {
            if let Some(v) = s.get(field)
                && allowed.contains(&field)
            {
                self.path_field(&at, field, v, true);
            }
        }
        if let Some(v) = s.get("ResultPath")
            && allowed.contains(&"ResultPath")
        {
            self.reference_path_field(&at, "ResultPath", v, true, true);
        }
        for field in ["Parameters", "ResultSelector", "ItemSelector"] {
            if let Some(v) = s.get(field)
                && allowed.contains(&field)
            {
                self.template_field(&at, field, v);
            }
        }
        if let Some(v) = s.get("ResultSelector")
            && !v.is_object()
        {
            self.push(at.clone(), "\"ResultSelector\" must be an object");
        }
        if let Some(v) = s.get("Assign")
            && allowed.contains(&"Assign")
        {
            self.assign_field(&at, "Assign", v);
        }
        self.variable_references(&at, state);

        match kind {
            "Task" => self.task(&at, s),
            "Choice" => self.choice(&at, s, states, scope),
            "Wait" => self.wait(&at, s),
            "Fail" => self.fail(&at, s),
            "Parallel" => self.parallel(name, &at, s, scope),
            "Map" => self.map(name, &at, s, scope),
            _ => {}
        }
        if matches!(kind, "Task" | "Parallel" | "Map") {
            self.retry(&at, s.get("Retry"));
            self.catch(&at, s.get("Catch"), states, scope);
        }
    }

    fn task(&mut self, at: &str, s: &Map<String, Value>) {
        match s.get("Resource") {
            Some(Value::String(r)) if !r.is_empty() => {
                if self.check_resources
                    && let Err(why) = check_resource(r)
                {
                    self.push(at, format!("\"Resource\" {r:?} {why}"));
                }
            }
            Some(_) => self.push(at, "\"Resource\" must be a non-empty string (an ARN)"),
            None => self.push(
                at,
                "\"Resource\" is missing: a Task needs the ARN of what it runs",
            ),
        }
        for (lit, path) in [
            ("TimeoutSeconds", "TimeoutSecondsPath"),
            ("HeartbeatSeconds", "HeartbeatSecondsPath"),
        ] {
            if s.contains_key(lit) && s.contains_key(path) {
                self.push(at, format!("has both \"{lit}\" and \"{path}\"; keep one"));
            }
            if let Some(v) = s.get(lit) {
                self.positive_int(at, lit, v);
            }
            if let Some(v) = s.get(path) {
                self.reference_path_field(at, path, v, false, false);
            }
        }
        // Developer Guide, "Task workflow state": "Credentials: specifies a target role the state
        // machine's execution role must assume before invoking the specified Resource" — an object
        // with RoleArn (a string) or RoleArn.$ (a path or an intrinsic function).
        if let Some(c) = s.get("Credentials") {
            match c {
                Value::Object(m) => {
                    match (m.get("RoleArn"), m.get("RoleArn.$")) {
                        (Some(_), Some(_)) => self.push(at, "\"Credentials\" has both \"RoleArn\" and \"RoleArn.$\"; keep one"),
                        (None, None) => self.push(at, "\"Credentials\" needs \"RoleArn\" (an IAM role ARN) or \"RoleArn.$\" (a path to one)"),
                        (Some(Value::String(_)), None) => {}
                        (Some(_), None) => self.push(at, "\"Credentials.RoleArn\" must be a string (an IAM role ARN)"),
                        (None, Some(_)) => self.template_field(at, "Credentials", c),
                    }
                    for key in m.keys() {
                        if key != "RoleArn" && key != "RoleArn.$" {
                            self.push(at, format!("\"Credentials\" takes only \"RoleArn\" or \"RoleArn.$\", not \"{key}\""));
                        }
                    }
                }
                _ => self.push(at, format!("\"Credentials\" must be an object with \"RoleArn\" or \"RoleArn.$\", got {c}")),
            }
        }
        if let Some(hb) = s.get("HeartbeatSeconds").and_then(Value::as_u64) {
            let timeout = s.get("TimeoutSeconds").and_then(Value::as_u64);
            let limit = timeout.unwrap_or(DEFAULT_TASK_TIMEOUT_SECONDS);
            if hb >= limit && !s.contains_key("TimeoutSecondsPath") {
                self.push(
                    at,
                    format!("\"HeartbeatSeconds\" ({hb}) must be smaller than \"TimeoutSeconds\" ({limit}), or the heartbeat never matters"),
                );
            }
        }
    }

    fn choice(
        &mut self,
        at: &str,
        s: &Map<String, Value>,
        states: &Map<String, Value>,
        scope: &Scope,
    ) {
        for field in ["Next", "End"] {
            if s.contains_key(field) {
                self.push(
                    at,
                    format!(
                        "a Choice state takes no \"{field}\": its rules and Default say where to go"
                    ),
                );
            }
        }
        match s.get("Choices") {
            Some(Value::Array(rules)) if !rules.is_empty() => {
                for (i, rule) in rules.iter().enumerate() {
                    if let Err(e) = Condition::from_json(rule, true) {
                        self.push(at, format!("Choice rule {}: {e}", i + 1));
                    }
                    if let Some(a) = rule.get("Assign") {
                        self.assign_field(at, &format!("Choice rule {} Assign", i + 1), a);
                    }
                    match rule.get("Next") {
                        Some(Value::String(n)) => {
                            if !states.contains_key(n) {
                                self.push(
                                    at,
                                    format!("Choice rule {} goes to \"{n}\", which is not one of the states{}", i + 1, scope.suffix()),
                                );
                            }
                        }
                        Some(_) => self.push(
                            at,
                            format!("Choice rule {}: \"Next\" must be a state name", i + 1),
                        ),
                        None => self.push(
                            at,
                            format!(
                                "Choice rule {} needs \"Next\": the state to go to when it matches",
                                i + 1
                            ),
                        ),
                    }
                }
            }
            Some(_) => self.push(at, "\"Choices\" must be a non-empty array of rules"),
            None => self.push(
                at,
                "\"Choices\" is missing: a Choice state needs at least one rule",
            ),
        }
        match s.get("Default") {
            Some(Value::String(d)) if !states.contains_key(d) => self.push(
                at,
                format!(
                    "\"Default\" names \"{d}\", which is not one of the states{}",
                    scope.suffix()
                ),
            ),
            Some(Value::String(_)) | None => {}
            Some(_) => self.push(at, "\"Default\" must be a state name"),
        }
    }

    fn wait(&mut self, at: &str, s: &Map<String, Value>) {
        let given: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
            .into_iter()
            .filter(|f| s.contains_key(*f))
            .collect();
        if given.len() != 1 {
            self.push(
                at,
                if given.is_empty() {
                    "needs exactly one of \"Seconds\", \"Timestamp\", \"SecondsPath\" or \"TimestampPath\"".to_string()
                } else {
                    format!("has {}; a Wait state takes exactly one of them", given.join(" and "))
                },
            );
        }
        if let Some(v) = s.get("Seconds") {
            self.non_negative_int(at, "Seconds", v);
        }
        if let Some(v) = s.get("Timestamp")
            && v.as_str().and_then(parse_timestamp).is_none()
        {
            self.push(at, format!("\"Timestamp\" must be an RFC 3339 timestamp such as \"2016-03-14T01:59:00Z\", got {v}"));
        }
        for f in ["SecondsPath", "TimestampPath"] {
            if let Some(v) = s.get(f) {
                self.reference_path_field(at, f, v, false, false);
            }
        }
    }

    fn fail(&mut self, at: &str, s: &Map<String, Value>) {
        for (lit, path) in [("Error", "ErrorPath"), ("Cause", "CausePath")] {
            if s.contains_key(lit) && s.contains_key(path) {
                self.push(at, format!("has both \"{lit}\" and \"{path}\"; keep one"));
            }
            if let Some(v) = s.get(lit)
                && !v.is_string()
            {
                self.push(at, format!("\"{lit}\" must be a string"));
            }
            if let Some(v) = s.get(path) {
                match v.as_str() {
                    Some(text) => match PathOrIntrinsic::parse(text) {
                        Ok(PathOrIntrinsic::Intrinsic(call)) => {
                            // Developer Guide, "Fail workflow state": ErrorPath and CausePath
                            // take "an intrinsic function that returns a string", one of these.
                            use crate::intrinsics::Function as F;
                            let f = call.call().function;
                            if !matches!(
                                f,
                                F::Format
                                    | F::JsonToString
                                    | F::ArrayGetItem
                                    | F::Base64Encode
                                    | F::Base64Decode
                                    | F::Hash
                                    | F::Uuid
                            ) {
                                self.push(at, format!("\"{path}\": {} does not return a string; use States.Format, States.JsonToString, States.ArrayGetItem, States.Base64Encode, States.Base64Decode, States.Hash or States.UUID", f.name()));
                            }
                            self.intrinsic_literals(at, path, &call)
                        }
                        Ok(PathOrIntrinsic::Path(_)) => {}
                        Err(e) => self.push(at, format!("\"{path}\": {e}")),
                    },
                    None => self.push(at, format!("\"{path}\" must be a reference path or an intrinsic function (a string)")),
                }
            }
        }
        for field in ["Next", "End"] {
            if s.contains_key(field) {
                self.push(
                    at,
                    format!("a Fail state ends the execution, so it takes no \"{field}\""),
                );
            }
        }
    }

    fn parallel(&mut self, name: &str, at: &str, s: &Map<String, Value>, scope: &Scope) {
        match s.get("Branches") {
            Some(Value::Array(branches)) if !branches.is_empty() => {
                for (i, b) in branches.iter().enumerate() {
                    let inner = scope.nested(format!("branch {} of \"{name}\"", i + 1));
                    self.branch(at, b, &inner, false);
                }
            }
            Some(_) => self.push(
                at,
                "\"Branches\" must be a non-empty array of branches (each with StartAt and States)",
            ),
            None => self.push(
                at,
                "\"Branches\" is missing: a Parallel state needs at least one branch",
            ),
        }
    }

    fn map(&mut self, name: &str, at: &str, s: &Map<String, Value>, scope: &Scope) {
        match (s.get("ItemProcessor"), s.get("Iterator")) {
            (Some(_), Some(_)) => self.push(
                at,
                "has both \"ItemProcessor\" and the older \"Iterator\"; keep ItemProcessor",
            ),
            (None, None) => self.push(
                at,
                "needs \"ItemProcessor\" (or the older \"Iterator\"): the states run for each item",
            ),
            (Some(p), None) | (None, Some(p)) => {
                let inner = scope.nested(format!("the item processor of \"{name}\""));
                self.next_isolated = p.pointer("/ProcessorConfig/Mode")
                    == Some(&Value::String("DISTRIBUTED".into()));
                self.branch(at, p, &inner, true);
                self.next_isolated = false;
            }
        }
        if s.contains_key("ItemSelector") && s.contains_key("Parameters") {
            self.push(
                at,
                "has both \"ItemSelector\" and the older \"Parameters\"; keep ItemSelector",
            );
        }
        if let Some(v) = s.get("ItemsPath") {
            self.reference_path_field(at, "ItemsPath", v, false, false);
        }
        for (lit, path) in [
            ("MaxConcurrency", "MaxConcurrencyPath"),
            (
                "ToleratedFailurePercentage",
                "ToleratedFailurePercentagePath",
            ),
            ("ToleratedFailureCount", "ToleratedFailureCountPath"),
        ] {
            if s.contains_key(lit) && s.contains_key(path) {
                self.push(at, format!("has both \"{lit}\" and \"{path}\"; keep one"));
            }
            if let Some(v) = s.get(path) {
                self.reference_path_field(at, path, v, false, false);
            }
        }
        if let Some(v) = s.get("MaxConcurrency") {
            self.non_negative_int(at, "MaxConcurrency", v);
        }
        if let Some(v) = s.get("ToleratedFailureCount") {
            self.non_negative_int(at, "ToleratedFailureCount", v);
        }
        if let Some(v) = s.get("ToleratedFailurePercentage") {
            match v.as_f64() {
                Some(p) if (0.0..=100.0).contains(&p) => {}
                _ => self.push(
                    at,
                    format!(
                        "\"ToleratedFailurePercentage\" must be a number from 0 to 100, got {v}"
                    ),
                ),
            }
        }
        for field in ["ItemSelector", "Parameters"] {
            if let Some(v) = s.get(field)
                && !v.is_object()
            {
                self.push(at, format!("\"{field}\" of a Map state must be an object (the template of each item's input), got {v}"));
            }
        }
        match s.get("Label") {
            None => {}
            Some(Value::String(label)) => {
                // Developer Guide, "Map state in Distributed mode": "Label: ... up to 40
                // characters ... can't contain whitespace, brackets, wildcards, special characters
                // or control characters" (the same characters as in names).
                if label.chars().count() > 40 {
                    self.push(at, "\"Label\" is at most 40 characters long");
                }
                if let Some(c) = label.chars().find(|c| forbidden_in_label(*c)) {
                    self.push(at, format!("\"Label\" must not contain {c:?} (no whitespace, brackets, wildcards, special or control characters)"));
                }
            }
            Some(_) => self.push(at, "\"Label\" must be a string"),
        }
        if let Some(v) = s.get("ItemReader") {
            self.item_reader(at, v);
        }
        if let Some(v) = s.get("ItemBatcher") {
            self.item_batcher(at, v);
        }
        if let Some(v) = s.get("ResultWriter") {
            self.result_writer(at, v);
        }
    }

    /// An integer field of a Distributed Map's configuration, or its `...Path`: not both, the
    /// literal within `range`, the path a reference path.
    fn int_or_path(
        &mut self,
        at: &str,
        within: &str,
        m: &Map<String, Value>,
        field: &str,
        range: std::ops::RangeInclusive<u64>,
    ) {
        let path = format!("{field}Path");
        if m.contains_key(field) && m.contains_key(&path) {
            self.push(
                at,
                format!("{within} has both \"{field}\" and \"{path}\"; keep one"),
            );
        }
        if let Some(v) = m.get(field)
            && !v.as_u64().is_some_and(|n| range.contains(&n))
        {
            self.push(
                at,
                format!(
                    "{within}: \"{field}\" must be an integer from {} to {}, got {v}",
                    range.start(),
                    range.end()
                ),
            );
        }
        if let Some(v) = m.get(&path) {
            self.reference_path_field(at, &format!("{within} {path}"), v, false, false);
        }
    }

    /// `ItemReader` (Developer Guide, "ItemReader (Map)"): where a Distributed Map reads its items.
    fn item_reader(&mut self, at: &str, v: &Value) {
        let Value::Object(m) = v else {
            self.push(
                at,
                format!("\"ItemReader\" must be an object with a Resource, got {v}"),
            );
            return;
        };
        for key in m.keys() {
            match key.as_str() {
                "Resource" | "ReaderConfig" | "Parameters" => {}
                "Arguments" => self.push(at, "\"ItemReader.Arguments\" is a JSONata field; this engine runs JSONPath definitions only (use Parameters)"),
                other => self.push(at, format!("\"ItemReader\" takes Resource, ReaderConfig and Parameters, not \"{other}\"")),
            }
        }
        // "Resource: the Amazon S3 API action Step Functions must invoke": GetObject (one JSON,
        // JSONL, CSV, Parquet or manifest file) or ListObjectsV2 (the objects under a prefix).
        let resource = m.get("Resource").and_then(Value::as_str);
        match resource {
            Some("arn:aws:states:::s3:getObject" | "arn:aws:states:::s3:listObjectsV2") => {}
            Some(r) => self.push(at, format!("\"ItemReader.Resource\" must be arn:aws:states:::s3:getObject or arn:aws:states:::s3:listObjectsV2, got {r:?}")),
            None => self.push(at, "\"ItemReader\" needs \"Resource\": arn:aws:states:::s3:getObject or arn:aws:states:::s3:listObjectsV2"),
        }
        match m.get("Parameters") {
            None => self.push(
                at,
                "\"ItemReader\" needs \"Parameters\" naming the Bucket (and Key or Prefix)",
            ),
            Some(p @ Value::Object(_)) => self.template_field(at, "ItemReader.Parameters", p),
            Some(p) => self.push(
                at,
                format!("\"ItemReader.Parameters\" must be an object, got {p}"),
            ),
        }
        let config = match m.get("ReaderConfig") {
            None => None,
            Some(Value::Object(c)) => Some(c),
            Some(c) => {
                self.push(
                    at,
                    format!("\"ItemReader.ReaderConfig\" must be an object, got {c}"),
                );
                None
            }
        };
        let input_type = config.and_then(|c| c.get("InputType"));
        if resource == Some("arn:aws:states:::s3:getObject") && input_type.is_none() {
            self.push(at, "\"ItemReader\" with s3:getObject needs \"ReaderConfig.InputType\" (CSV, JSON, JSONL, MANIFEST or PARQUET)");
        }
        let Some(c) = config else { return };
        let within = "\"ItemReader.ReaderConfig\"";
        for (key, value) in c {
            let allowed: Option<&[&str]> = match key.as_str() {
                "InputType" => Some(&["CSV", "JSON", "JSONL", "MANIFEST", "PARQUET"]),
                "CSVHeaderLocation" => Some(&["FIRST_ROW", "GIVEN"]),
                "CSVDelimiter" => Some(&["COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB"]),
                "ManifestType" => Some(&["ATHENA_DATA", "S3_INVENTORY"]),
                "CSVHeaders" | "MaxItems" | "MaxItemsPath" => None,
                other => {
                    self.push(at, format!("{within} takes InputType, CSVHeaderLocation, CSVHeaders, CSVDelimiter, ManifestType, MaxItems or MaxItemsPath, not \"{other}\""));
                    continue;
                }
            };
            if let Some(allowed) = allowed
                && !value.as_str().is_some_and(|v| allowed.contains(&v))
            {
                self.push(
                    at,
                    format!(
                        "{within}: \"{key}\" must be one of {}, got {value}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let is_csv = c.get("InputType").and_then(Value::as_str) == Some("CSV");
        let header_location = c.get("CSVHeaderLocation").and_then(Value::as_str);
        if c.contains_key("CSVHeaderLocation") && !is_csv {
            self.push(
                at,
                format!("{within}: \"CSVHeaderLocation\" is only for \"InputType\": \"CSV\""),
            );
        }
        match (header_location, c.get("CSVHeaders")) {
            (Some("GIVEN"), None) => self.push(at, format!("{within}: \"CSVHeaderLocation\": \"GIVEN\" needs \"CSVHeaders\" (the column names)")),
            (Some("GIVEN"), Some(Value::Array(h))) if !h.is_empty() && h.iter().all(Value::is_string) => {}
            (Some("GIVEN"), Some(h)) => self.push(at, format!("{within}: \"CSVHeaders\" must be a non-empty array of column names, got {h}")),
            (_, Some(_)) => self.push(at, format!("{within}: \"CSVHeaders\" is only taken with \"CSVHeaderLocation\": \"GIVEN\"")),
            (_, None) => {}
        }
        // "MaxItems: ... up to 100,000,000"; MaxItemsPath reads it from the input.
        self.int_or_path(at, within, c, "MaxItems", 0..=100_000_000);
    }

    /// `ItemBatcher` (Developer Guide, "ItemBatcher (Map)"): items handed to each child execution
    /// in batches. At least one limit; "MaxInputBytesPerBatch: ... up to 256 KiB".
    fn item_batcher(&mut self, at: &str, v: &Value) {
        let Value::Object(m) = v else {
            self.push(at, format!("\"ItemBatcher\" must be an object, got {v}"));
            return;
        };
        let within = "\"ItemBatcher\"";
        for key in m.keys() {
            if !matches!(
                key.as_str(),
                "MaxItemsPerBatch"
                    | "MaxItemsPerBatchPath"
                    | "MaxInputBytesPerBatch"
                    | "MaxInputBytesPerBatchPath"
                    | "BatchInput"
            ) {
                self.push(at, format!("{within} takes MaxItemsPerBatch(Path), MaxInputBytesPerBatch(Path) and BatchInput, not \"{key}\""));
            }
        }
        if ![
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
        ]
        .iter()
        .any(|f| m.contains_key(*f))
        {
            self.push(at, format!("{within} needs at least one of MaxItemsPerBatch, MaxItemsPerBatchPath, MaxInputBytesPerBatch, MaxInputBytesPerBatchPath"));
        }
        self.int_or_path(at, within, m, "MaxItemsPerBatch", 1..=MAX_INT);
        self.int_or_path(at, within, m, "MaxInputBytesPerBatch", 1..=262_144);
        match m.get("BatchInput") {
            None => {}
            Some(b @ Value::Object(_)) => self.template_field(at, "ItemBatcher.BatchInput", b),
            Some(b) => self.push(
                at,
                format!("{within}: \"BatchInput\" must be an object, got {b}"),
            ),
        }
    }

    /// `ResultWriter` (Developer Guide, "ResultWriter (Map)"): where a Distributed Map writes its
    /// results (`arn:aws:states:::s3:putObject` with a Bucket and a Prefix) and in which form
    /// (`WriterConfig`).
    fn result_writer(&mut self, at: &str, v: &Value) {
        let Value::Object(m) = v else {
            self.push(at, format!("\"ResultWriter\" must be an object, got {v}"));
            return;
        };
        let within = "\"ResultWriter\"";
        for key in m.keys() {
            match key.as_str() {
                "Resource" | "Parameters" | "WriterConfig" => {}
                "Arguments" => self.push(at, "\"ResultWriter.Arguments\" is a JSONata field; this engine runs JSONPath definitions only (use Parameters)"),
                other => self.push(at, format!("{within} takes Resource, Parameters and WriterConfig, not \"{other}\"")),
            }
        }
        match (m.get("Resource"), m.get("Parameters")) {
            (None, None) if m.contains_key("WriterConfig") => {}
            (None, None) => self.push(at, format!("{within} needs \"Resource\": \"arn:aws:states:::s3:putObject\" with Parameters, or a WriterConfig")),
            (None, Some(_)) => self.push(at, format!("{within}: \"Parameters\" needs \"Resource\": \"arn:aws:states:::s3:putObject\"")),
            (Some(r), p) => {
                if r.as_str() != Some("arn:aws:states:::s3:putObject") {
                    self.push(at, format!("{within}: \"Resource\" must be \"arn:aws:states:::s3:putObject\", got {r}"));
                }
                match p {
                    Some(Value::Object(params)) => {
                        for field in ["Bucket", "Prefix"] {
                            if !params.contains_key(field) && !params.contains_key(&format!("{field}.$")) {
                                self.push(at, format!("{within}: \"Parameters\" needs \"{field}\" (or \"{field}.$\")"));
                            }
                        }
                        self.template_field(at, "ResultWriter.Parameters", p.unwrap_or(&Value::Null));
                    }
                    Some(other) => self.push(at, format!("{within}: \"Parameters\" must be an object with Bucket and Prefix, got {other}")),
                    None => self.push(at, format!("{within} with a Resource needs \"Parameters\" with Bucket and Prefix")),
                }
            }
        }
        match m.get("WriterConfig") {
            None => {}
            Some(Value::Object(c)) => {
                for (key, value) in c {
                    let allowed: &[&str] = match key.as_str() {
                        "OutputType" => &["JSON", "JSONL"],
                        "Transformation" => &["NONE", "COMPACT", "FLATTEN"],
                        other => {
                            self.push(at, format!("{within}: \"WriterConfig\" takes OutputType and Transformation, not \"{other}\""));
                            continue;
                        }
                    };
                    if !value.as_str().is_some_and(|v| allowed.contains(&v)) {
                        self.push(
                            at,
                            format!(
                                "{within}: \"WriterConfig.{key}\" must be one of {}, got {value}",
                                allowed.join(", ")
                            ),
                        );
                    }
                }
            }
            Some(c) => self.push(
                at,
                format!("{within}: \"WriterConfig\" must be an object, got {c}"),
            ),
        }
    }

    fn branch(&mut self, at: &str, b: &Value, scope: &Scope, is_map: bool) {
        let Value::Object(m) = b else {
            self.push(
                at,
                format!(
                    "{} must be an object with StartAt and States",
                    scope.machine()
                ),
            );
            return;
        };
        for key in m.keys() {
            let ok = matches!(key.as_str(), "StartAt" | "States" | "Comment")
                || (is_map && key == "ProcessorConfig");
            if !ok {
                self.push(
                    at,
                    format!("\"{key}\" is not allowed in {}", scope.machine()),
                );
            }
        }
        if let Some(pc) = m.get("ProcessorConfig") {
            match pc {
                Value::Object(cfg) => {
                    if let Some(mode) = cfg.get("Mode")
                        && !matches!(mode.as_str(), Some("INLINE" | "DISTRIBUTED"))
                    {
                        self.push(
                            at,
                            "\"ProcessorConfig.Mode\" must be \"INLINE\" or \"DISTRIBUTED\"",
                        );
                    }
                    if let Some(t) = cfg.get("ExecutionType")
                        && !matches!(t.as_str(), Some("STANDARD" | "EXPRESS"))
                    {
                        self.push(
                            at,
                            "\"ProcessorConfig.ExecutionType\" must be \"STANDARD\" or \"EXPRESS\"",
                        );
                    }
                }
                _ => self.push(at, "\"ProcessorConfig\" must be an object"),
            }
        }
        self.machine(m, scope);
    }

    fn error_equals(&mut self, at: &str, what: &str, v: Option<&Value>) -> Option<bool> {
        let Some(Value::Array(names)) = v else {
            self.push(
                at,
                format!("{what}: \"ErrorEquals\" must be a non-empty array of error names"),
            );
            return None;
        };
        if names.is_empty() {
            self.push(
                at,
                format!("{what}: \"ErrorEquals\" must list at least one error name"),
            );
            return None;
        }
        let mut has_all = false;
        for n in names {
            match n.as_str() {
                Some(error::ALL) => has_all = true,
                Some(name) if name.starts_with("States.") && !KNOWN_ERRORS.contains(&name) => {
                    self.push(at, format!("{what}: \"{name}\" is not a predefined error name (names starting with \"States.\" are reserved)"));
                }
                Some(_) => {}
                None => self.push(at, format!("{what}: error names must be strings")),
            }
        }
        if has_all && names.len() > 1 {
            self.push(
                at,
                format!("{what}: \"States.ALL\" must appear alone in ErrorEquals"),
            );
        }
        Some(has_all)
    }

    fn retry(&mut self, at: &str, v: Option<&Value>) {
        let Some(v) = v else { return };
        let Value::Array(retriers) = v else {
            self.push(at, "\"Retry\" must be an array of retriers");
            return;
        };
        for (i, r) in retriers.iter().enumerate() {
            let what = format!("retrier {}", i + 1);
            let Value::Object(m) = r else {
                self.push(at, format!("{what} must be an object"));
                continue;
            };
            if self.error_equals(at, &what, m.get("ErrorEquals")) == Some(true)
                && i + 1 != retriers.len()
            {
                self.push(
                    at,
                    format!("{what}: the retrier with \"States.ALL\" must be the last one"),
                );
            }
            for (key, value) in m {
                match key.as_str() {
                    "ErrorEquals" => {}
                    // AWS's own schema and samples put a Comment in retriers (statelint agrees).
                    "Comment" => {
                        if !value.is_string() {
                            self.push(at, format!("{what}: \"Comment\" must be a string"));
                        }
                    }
                    "IntervalSeconds" => self.positive_int(at, &format!("{what} IntervalSeconds"), value),
                    "MaxAttempts" => self.non_negative_int(at, &format!("{what} MaxAttempts"), value),
                    "BackoffRate" => match value.as_f64() {
                        Some(r) if r >= 1.0 => {}
                        _ => self.push(at, format!("{what}: \"BackoffRate\" must be a number of at least 1.0, got {value}")),
                    },
                    "MaxDelaySeconds" => match value.as_u64() {
                        Some(n) if (1..31_622_401).contains(&n) => {}
                        _ => self.push(at, format!("{what}: \"MaxDelaySeconds\" must be a positive integer below 31622401, got {value}")),
                    },
                    "JitterStrategy" => {
                        if !matches!(value.as_str(), Some("FULL" | "NONE")) {
                            self.push(at, format!("{what}: \"JitterStrategy\" must be \"FULL\" or \"NONE\", got {value}"));
                        }
                    }
                    other => self.push(
                        at,
                        format!("{what}: unknown field \"{other}\" (allowed: ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy, Comment)"),
                    ),
                }
            }
        }
    }

    fn catch(&mut self, at: &str, v: Option<&Value>, states: &Map<String, Value>, scope: &Scope) {
        let Some(v) = v else { return };
        let Value::Array(catchers) = v else {
            self.push(at, "\"Catch\" must be an array of catchers");
            return;
        };
        for (i, c) in catchers.iter().enumerate() {
            let what = format!("catcher {}", i + 1);
            let Value::Object(m) = c else {
                self.push(at, format!("{what} must be an object"));
                continue;
            };
            if self.error_equals(at, &what, m.get("ErrorEquals")) == Some(true)
                && i + 1 != catchers.len()
            {
                self.push(
                    at,
                    format!("{what}: the catcher with \"States.ALL\" must be the last one"),
                );
            }
            match m.get("Next") {
                Some(Value::String(n)) if !states.contains_key(n) => self.push(
                    at,
                    format!(
                        "{what} goes to \"{n}\", which is not one of the states{}",
                        scope.suffix()
                    ),
                ),
                Some(Value::String(_)) => {}
                Some(_) => self.push(at, format!("{what}: \"Next\" must be a state name")),
                None => self.push(
                    at,
                    format!("{what} needs \"Next\": the state that handles the error"),
                ),
            }
            if let Some(rp) = m.get("ResultPath") {
                self.reference_path_field(at, &format!("{what} ResultPath"), rp, true, true);
            }
            if let Some(c) = m.get("Comment")
                && !c.is_string()
            {
                self.push(at, format!("{what}: \"Comment\" must be a string"));
            }
            if let Some(a) = m.get("Assign") {
                self.assign_field(at, &format!("{what} Assign"), a);
            }
            for key in m.keys() {
                if !matches!(
                    key.as_str(),
                    "ErrorEquals" | "Next" | "ResultPath" | "Comment" | "Assign"
                ) {
                    self.push(at, format!("{what}: unknown field \"{key}\" (allowed: ErrorEquals, Next, ResultPath, Comment, Assign)"));
                }
            }
        }
    }
}

/// The states reachable from `start` through Next, Default, Choice rules and Catch.
fn reachable<'a>(start: &'a str, states: &'a Map<String, Value>) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name) {
            continue;
        }
        let Some(s) = states.get(name) else { continue };
        for target in successors(s) {
            if states.contains_key(target) && !seen.contains(target) {
                queue.push_back(target);
            }
        }
    }
    seen
}

/// Whether a Task `Resource` has the shape of an ARN Step Functions can run: `arn:PARTITION:SERVICE:
/// REGION:ACCOUNT:RESOURCE` (Developer Guide, "Task workflow state": "Resource: a URI, especially
/// an ARN that uniquely identifies the specific task to execute"). Service integrations have no
/// region nor account (`arn:aws:states:::sqs:sendMessage.waitForTaskToken`, `arn:aws:states:::
/// aws-sdk:s3:getObject`); an activity is `arn:aws:states:REGION:ACCOUNT:activity:NAME`. A
/// `${...}` placeholder (DefinitionSubstitutions, filled in at deploy time) is taken as it is.
fn check_resource(r: &str) -> Result<(), String> {
    // A `${name}` placeholder (DefinitionSubstitutions) is filled in at deployment; an unclosed
    // `${` is no placeholder, and what it leaves is no ARN.
    if let Some(i) = r.find("${") {
        if r[i..].contains('}') {
            return Ok(());
        }
        return Err("has an unclosed \"${\" (a placeholder is written ${name})".into());
    }
    let Some(rest) = r.strip_prefix("arn:") else {
        return Err("is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)".into());
    };
    let fields: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = fields.as_slice() else {
        return Err(
            "is a malformed ARN: it needs six ':'-separated fields (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)"
                .into(),
        );
    };
    if partition.is_empty() || service.is_empty() {
        return Err(
            "is a malformed ARN: the partition (aws) and the service must not be empty".into(),
        );
    }
    if resource.is_empty() {
        return Err("is a malformed ARN: it names no resource after the account".into());
    }
    // Lambda API Reference, "Invoke": a function ARN ends in function:NAME, optionally followed
    // by ":" and a version number or alias ($LATEST, or letters, digits, '-' and '_').
    if *service == "lambda"
        && let Some(function) = resource.strip_prefix("function:")
    {
        let (name, qualifier) = match function.split_once(':') {
            Some((n, q)) => (n, Some(q)),
            None => (function, None),
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let qualifier_ok = qualifier.is_none_or(|q| {
            q == "$LATEST"
                || (!q.is_empty()
                    && q.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        });
        if !name_ok || !qualifier_ok {
            return Err("is a malformed Lambda function ARN: write arn:aws:lambda:REGION:ACCOUNT:function:NAME, optionally followed by :VERSION or :ALIAS (letters, digits, '-' and '_')".into());
        }
    }
    if *service == "states" {
        let parts: Vec<&str> = resource.split(':').collect();
        if region.is_empty() && account.is_empty() {
            // A service integration: SERVICE:API[.sync|.sync:2|.waitForTaskToken].
            if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
                return Err("is a malformed service integration: write arn:aws:states:::SERVICE:API (such as arn:aws:states:::lambda:invoke)".into());
            }
        } else if parts.first() == Some(&"activity") && (parts.len() != 2 || parts[1].is_empty()) {
            return Err(
                "is a malformed activity ARN: write arn:aws:states:REGION:ACCOUNT:activity:NAME"
                    .into(),
            );
        }
    }
    Ok(())
}

/// The variables the states of one machine assign (in `Assign`, Choice rules and catchers).
fn assigned_variables(states: &Map<String, Value>) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut add = |assign: Option<&Value>| {
        if let Some(Value::Object(m)) = assign {
            out.extend(
                m.keys()
                    .map(|k| k.strip_suffix(".$").unwrap_or(k).to_string()),
            );
        }
    };
    for state in states.values() {
        add(state.get("Assign"));
        for list in ["Choices", "Catch"] {
            if let Some(Value::Array(items)) = state.get(list) {
                items.iter().for_each(|i| add(i.get("Assign")));
            }
        }
    }
    out
}

/// The variables read by the paths and intrinsic functions in `v` (a state, without the machines
/// it holds): strings under `...Path`, `Variable` and `....$` keys.
fn referenced_variables(v: &Value, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if !matches!(k.as_str(), "Branches" | "ItemProcessor" | "Iterator") {
                    referenced_variables(v, Some(k), out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| referenced_variables(i, key, out)),
        Value::String(text) => {
            let Some(key) = key else { return };
            let takes_path = key.ends_with(".$")
                || (key.ends_with("Path") && key != "ResultPath")
                || key == "Variable";
            if !takes_path {
                return;
            }
            let paths: Vec<Path> = if Intrinsic::looks_like(text) {
                Intrinsic::parse(text)
                    .map(|i| i.paths().into_iter().cloned().collect())
                    .unwrap_or_default()
            } else {
                Path::parse(text).into_iter().collect()
            };
            for p in paths {
                out.extend(p.variables().into_iter().map(str::to_string));
            }
        }
        _ => {}
    }
}

/// Characters a Map `Label` (like a state machine or execution name) cannot hold.
fn forbidden_in_label(c: char) -> bool {
    c.is_whitespace() || c.is_control() || "?*<>{}[]\"#%\\^|~`$&,;:/".contains(c)
}

/// A state that can end its machine: Succeed, Fail, or `"End": true`. A state that needs `Next` or
/// `End` and has neither counts too: that problem is reported already, and a second one would
/// only repeat it.
fn is_terminal(s: &Value) -> bool {
    let kind = s.get("Type").and_then(Value::as_str);
    matches!(kind, Some("Succeed" | "Fail"))
        || s.get("End") == Some(&Value::Bool(true))
        || (matches!(kind, Some("Task" | "Pass" | "Wait" | "Parallel" | "Map"))
            && s.get("Next").is_none())
}

/// Every state a state may go to (Next, Default, Choice rules, Catch), in a stable order.
pub fn successors(s: &Value) -> Vec<&str> {
    let mut targets: Vec<Option<&Value>> = vec![s.get("Next")];
    if let Some(Value::Array(rules)) = s.get("Choices") {
        targets.extend(rules.iter().map(|r| r.get("Next")));
    }
    targets.push(s.get("Default"));
    if let Some(Value::Array(catchers)) = s.get("Catch") {
        targets.extend(catchers.iter().map(|c| c.get("Next")));
    }
    let mut seen = BTreeSet::new();
    targets
        .into_iter()
        .filter_map(|t| t.and_then(Value::as_str))
        .filter(|t| seen.insert(*t))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(v: Value) -> Vec<String> {
        lint_value(&v).iter().map(|p| p.to_string()).collect()
    }

    fn assert_has(v: Value, want: &[&str]) {
        let got = problems(v);
        for w in want {
            assert!(
                got.iter().any(|p| p.contains(w)),
                "missing {w:?} in {got:#?}"
            );
        }
    }

    #[test]
    fn a_clean_definition_has_no_problems() {
        let v = json!({
            "Comment": "ok", "StartAt": "A", "TimeoutSeconds": 60,
            "States": {
                "A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                      "TimeoutSeconds": 10, "HeartbeatSeconds": 5,
                      "Retry": [{"ErrorEquals": ["X"]}, {"ErrorEquals": ["States.ALL"], "JitterStrategy": "FULL", "MaxDelaySeconds": 5}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "F"}],
                      "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "W"}], "Default": "S"},
                "W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "P"},
                "P": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}], "Next": "M"},
                "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                      "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}, "End": true},
                "S": {"Type": "Succeed"},
                "F": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "States.Format('{}', $.error.Cause)"}
            }
        });
        assert_eq!(problems(v), Vec::<String>::new());
    }

    #[test]
    fn transitions_and_reachability() {
        assert_has(
            json!({"StartAt": "Nope", "States": {
                "A": {"Type": "Pass", "Next": "Missing"},
                "B": {"Type": "Pass"},
                "C": {"Type": "Pass", "Next": "A", "End": true},
                "D": {"Type": "Succeed", "Next": "A"},
                "E": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": true, "Next": "Gone"}], "Default": "Away", "End": true}
            }}),
            &[
                "\"StartAt\" names \"Nope\"",
                "State \"A\": \"Next\" names \"Missing\"",
                "State \"B\": needs \"Next\"",
                "State \"C\": has both \"Next\" and \"End\"",
                "State \"D\": \"Next\" is not allowed in a Succeed state",
                "Choice rule 1 goes to \"Gone\"",
                "\"Default\" names \"Away\"",
                "a Choice state takes no \"End\"",
            ],
        );
        assert_has(
            json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "Orphan": {"Type": "Succeed"}}}),
            &["State \"Orphan\": it is never reached"],
        );
        // A state reached only through Catch is reachable.
        let v = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": true},
            "H": {"Type": "Succeed"}}});
        assert_eq!(problems(v), Vec::<String>::new());
    }

    #[test]
    fn field_combinations() {
        assert_has(
            json!({"StartAt": "F", "States": {
                "F": {"Type": "Fail", "ResultPath": "$.x", "Error": "E", "ErrorPath": "$.e"},
                "W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2020-01-01T00:00:00Z", "End": true},
                "W2": {"Type": "Wait", "End": true},
                "W3": {"Type": "Wait", "Timestamp": "yesterday", "End": true},
                "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "TimeoutSeconds": 10, "TimeoutSecondsPath": "$.t", "End": true},
                "T3": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "TimeoutSeconds": 10, "HeartbeatSeconds": 10, "End": true},
                "T2": {"Type": "Task", "End": true, "TimeoutSeconds": 0},
                "M": {"Type": "Map", "End": true, "ItemSelector": {}, "Parameters": {}},
                "P": {"Type": "Pass", "ResultSelector": {}, "End": true}
            }}),
            &[
                "State \"F\": \"ResultPath\" is not allowed in a Fail state",
                "has both \"Error\" and \"ErrorPath\"",
                "has Seconds and Timestamp",
                "State \"W2\": needs exactly one of",
                "State \"W3\": \"Timestamp\" must be an RFC 3339",
                "has both \"TimeoutSeconds\" and \"TimeoutSecondsPath\"",
                "\"HeartbeatSeconds\" (10) must be smaller than \"TimeoutSeconds\" (10)",
                "State \"T2\": \"Resource\" is missing",
                "\"TimeoutSeconds\" must be a positive integer",
                "State \"M\": needs \"ItemProcessor\"",
                "has both \"ItemSelector\" and the older \"Parameters\"",
                "State \"P\": \"ResultSelector\" is not allowed in a Pass state",
            ],
        );
    }

    #[test]
    fn retry_and_catch_rules() {
        assert_has(
            json!({"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "End": true,
                      "Retry": [{"ErrorEquals": ["States.ALL", "X"]}, {"ErrorEquals": ["States.ALL"], "BackoffRate": 0.5, "JitterStrategy": "HALF", "Foo": 1},
                                {"ErrorEquals": []}, {"ErrorEquals": ["States.Nope"], "MaxDelaySeconds": 0}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "T"}, {"ErrorEquals": ["E"]}, {"ErrorEquals": ["E"], "Next": "T", "ResultPath": "$$.x"}]}
            }}),
            &[
                "retrier 1: \"States.ALL\" must appear alone",
                "retrier 2: the retrier with \"States.ALL\" must be the last one",
                "retrier 2: \"BackoffRate\" must be a number of at least 1.0",
                "retrier 2: \"JitterStrategy\" must be \"FULL\" or \"NONE\"",
                "retrier 2: unknown field \"Foo\"",
                "retrier 3: \"ErrorEquals\" must list at least one",
                "retrier 4: \"States.Nope\" is not a predefined error name",
                "retrier 4: \"MaxDelaySeconds\" must be a positive integer",
                "catcher 1: the catcher with \"States.ALL\" must be the last one",
                "catcher 2 needs \"Next\"",
                "\"catcher 3 ResultPath\" must point into the state input",
            ],
        );
    }

    #[test]
    fn choice_rules_are_checked() {
        assert_has(
            json!({"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [
                    {"Variable": "$.a", "Next": "S"},
                    {"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1, "Next": "S"},
                    {"Not": {"Variable": "$.a", "IsNull": true, "Next": "S"}, "Next": "S"},
                    {"And": [{"StringEquals": "x"}], "Next": "S"},
                    {"Variable": "$.a", "IsNull": true}
                ]},
                "S": {"Type": "Succeed"}
            }}),
            &[
                "Choice rule 1: a Choice rule needs one comparison operator",
                "Choice rule 2: a Choice rule has exactly one operator",
                "Choice rule 3: \"Next\" is only allowed on top-level",
                "Choice rule 4: a rule using StringEquals needs a \"Variable\"",
                "Choice rule 5 needs \"Next\"",
            ],
        );
        assert_has(
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": []}}}),
            &["\"Choices\" must be a non-empty array"],
        );
    }

    #[test]
    fn paths_templates_and_intrinsics_are_checked() {
        assert_has(
            json!({"StartAt": "P", "States": {
                "P": {"Type": "Pass", "InputPath": "a.b", "ResultPath": "$.x[*]", "OutputPath": 3,
                      "Parameters": {"a.$": "$.[", "b.$": "States.Formatt('x')", "c.$": 1}, "End": true}
            }}),
            &[
                "\"InputPath\": invalid path 'a.b'",
                "\"ResultPath\": '$.x[*]' is not a reference path",
                "\"OutputPath\" must be a path string or null",
                "\"Parameters\":",
            ],
        );
    }

    #[test]
    fn nested_branches_are_linted_with_their_location() {
        let got = problems(json!({"StartAt": "Outer", "States": {
            "Outer": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "Ok", "States": {"Ok": {"Type": "Succeed"}}},
                {"StartAt": "Inner", "States": {
                    "Inner": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}}
                }}
            ]}
        }}));
        assert!(
            got.iter().any(|p| p
                == "State \"X\" in the item processor of \"Inner\" in branch 2 of \"Outer\": \"Next\" names \"Y\", which is not one of the states in the item processor of \"Inner\" in branch 2 of \"Outer\""),
            "{got:#?}"
        );
    }

    #[test]
    fn state_names_are_unique_across_branches() {
        assert_has(
            json!({"StartAt": "P", "States": {
                "P": {"Type": "Parallel", "Next": "Done", "Branches": [
                    {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}]},
                "Done": {"Type": "Succeed"}
            }}),
            &["the name is already used by state \"Done\""],
        );
    }

    #[test]
    fn jsonata_and_unknown_fields_are_rejected_clearly() {
        assert_has(
            json!({"QueryLanguage": "JSONPath", "StartAt": "P", "Bogus": 1, "States": {
                "P": {"Type": "Pass", "Output": "{% 1 %}", "Next": "S", "QueryLanguage": "JSONPath2"},
                "S": {"Type": "Succeed", "Assign": {"x": 1}},
                "Q": {"Type": "Nope"}
            }}),
            &[
                "\"QueryLanguage\" must be \"JSONPath\" or \"JSONata\"",
                "unknown top-level field \"Bogus\"",
                "\"Output\" is a JSONata field",
                "\"Assign\" is not allowed in a Succeed state",
                "unknown Type \"Nope\"",
            ],
        );
        assert_has(json!([1]), &["must be a JSON object"]);
        assert_eq!(lint_str("{").len(), 1);
    }

    const SQS: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

    fn clean(v: Value) {
        assert_eq!(problems(v), Vec::<String>::new());
    }

    #[test]
    fn a_machine_that_can_never_end_is_refused() {
        // A -> B -> A: AWS refuses it ("no terminal state"), and so do statelint and asl-validator.
        assert_has(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}),
            &["no terminal state can be reached from StartAt \"A\""],
        );
        // Every branch and item processor on its own: a loop in one is not saved by the others.
        let got = problems(json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "Ok", "States": {"Ok": {"Type": "Succeed"}}},
                {"StartAt": "L1", "States": {
                    "L1": {"Type": "Wait", "Seconds": 1, "Next": "L2"},
                    "L2": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "L1"}], "Default": "L1"}}}
            ]}
        }}));
        assert_eq!(
            got,
            [
                "Branch 2 of \"P\": no terminal state can be reached from StartAt \"L1\" in branch 2 of \"P\": every path loops; add a Succeed or Fail state, or \"End\": true"
            ]
        );
        assert_has(
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemProcessor": {
                "StartAt": "I", "States": {"I": {"Type": "Pass", "Next": "I"}}}}}}),
            &["The item processor of \"M\": no terminal state"],
        );
        // A loop with a way out (a Choice rule, a Catch) is fine, and so is an unreachable loop
        // (reported as unreachable, not as endless).
        clean(json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": SQS, "Next": "A", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Out"}]},
            "Out": {"Type": "Fail", "Error": "E"}}}));
        let got = problems(json!({"StartAt": "S", "States": {
            "S": {"Type": "Succeed"}, "X": {"Type": "Pass", "Next": "Y"}, "Y": {"Type": "Pass", "Next": "X"}}}));
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got.iter().all(|p| p.contains("never reached")), "{got:#?}");
    }

    #[test]
    fn retriers_and_catchers_take_a_comment() {
        // AWS's schema and its samples put a Comment in retriers and catchers.
        clean(json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": SQS, "End": true,
                  "Retry": [{"ErrorEquals": ["States.Timeout"], "Comment": "slow worker", "MaxAttempts": 2}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Comment": "alert", "Next": "F"}]},
            "F": {"Type": "Fail"}}}));
        assert_has(
            json!({"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": SQS, "End": true,
                      "Retry": [{"ErrorEquals": ["X"], "Comment": 1}],
                      "Catch": [{"ErrorEquals": ["X"], "Comment": [], "Next": "T"}]}}}),
            &[
                "retrier 1: \"Comment\" must be a string",
                "catcher 1: \"Comment\" must be a string",
            ],
        );
    }

    fn distributed(extra: Value) -> Value {
        let mut m = json!({"Type": "Map", "End": true, "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}});
        if let (Value::Object(m), Value::Object(extra)) = (&mut m, extra) {
            m.extend(extra);
        }
        json!({"StartAt": "M", "States": {"M": m}})
    }

    #[test]
    fn distributed_map_fields_are_checked() {
        // The examples of the Developer Guide's ItemReader, ItemBatcher and ResultWriter pages.
        clean(distributed(json!({
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                           "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"], "MaxItems": 100},
                           "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
            "ItemBatcher": {"MaxItemsPerBatch": 10, "MaxInputBytesPerBatch": 262144, "BatchInput": {"run.$": "$.run"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": "out"},
                             "WriterConfig": {"OutputType": "JSONL", "Transformation": "FLATTEN"}},
            "ItemSelector": {"v.$": "$$.Map.Item.Value"},
            "Label": "ships",
            "ToleratedFailurePercentage": 12.5, "MaxConcurrency": 1000
        })));
        clean(distributed(json!({
            "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b", "Prefix": "in/"},
                           "ReaderConfig": {"MaxItemsPath": "$.max"}},
            "ItemBatcher": {"MaxItemsPerBatchPath": "$.n"},
            "ResultWriter": {"WriterConfig": {"OutputType": "JSON", "Transformation": "COMPACT"}}
        })));
        assert_has(
            distributed(json!({
                "ItemReader": {"Resource": "arn:aws:states:::s3:putObject", "Arguments": {},
                               "ReaderConfig": {"InputType": "XML", "CSVHeaderLocation": "LAST_ROW", "CSVHeaders": ["a"], "MaxItems": -1, "MaxItemsPath": "$.m", "Foo": 1},
                               "Parameters": []},
                "ItemBatcher": {"MaxItemsPerBatch": 0, "MaxItemsPerBatchPath": "$.n", "MaxInputBytesPerBatch": 262145, "BatchInput": "x"},
                "ResultWriter": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b"}, "WriterConfig": {"OutputType": "CSV", "Transformation": "ALL"}},
                "ItemSelector": [1],
                "Label": "has space",
                "ToleratedFailurePercentage": 101,
                "ToleratedFailureCount": -1,
                "ToleratedFailureCountPath": "$.c",
                "MaxConcurrency": 1.5, "MaxConcurrencyPath": "$.mc"
            })),
            &[
                "\"ItemReader.Resource\" must be arn:aws:states:::s3:getObject or arn:aws:states:::s3:listObjectsV2",
                "\"ItemReader.Arguments\" is a JSONata field",
                "\"ItemReader.Parameters\" must be an object",
                "\"InputType\" must be one of CSV, JSON, JSONL, MANIFEST, PARQUET, got \"XML\"",
                "\"CSVHeaderLocation\" must be one of FIRST_ROW, GIVEN",
                "\"CSVHeaderLocation\" is only for \"InputType\": \"CSV\"",
                "\"CSVHeaders\" is only taken with \"CSVHeaderLocation\": \"GIVEN\"",
                "not \"Foo\"",
                "has both \"MaxItems\" and \"MaxItemsPath\"",
                "\"MaxItems\" must be an integer from 0 to 100000000, got -1",
                "\"ItemBatcher\" has both \"MaxItemsPerBatch\" and \"MaxItemsPerBatchPath\"",
                "\"MaxItemsPerBatch\" must be an integer from 1 to 99999999, got 0",
                "\"MaxInputBytesPerBatch\" must be an integer from 1 to 262144, got 262145",
                "\"BatchInput\" must be an object",
                "\"ResultWriter\": \"Resource\" must be \"arn:aws:states:::s3:putObject\"",
                "\"ResultWriter\": \"Parameters\" needs \"Prefix\"",
                "\"WriterConfig.OutputType\" must be one of JSON, JSONL",
                "\"WriterConfig.Transformation\" must be one of NONE, COMPACT, FLATTEN",
                "\"ItemSelector\" of a Map state must be an object",
                "\"Label\" must not contain ' '",
                "\"ToleratedFailurePercentage\" must be a number from 0 to 100, got 101",
                "\"ToleratedFailureCount\" must be a non-negative integer",
                "has both \"ToleratedFailureCount\" and \"ToleratedFailureCountPath\"",
                "\"MaxConcurrency\" must be a non-negative integer",
                "has both \"MaxConcurrency\" and \"MaxConcurrencyPath\"",
            ],
        );
        assert_has(
            distributed(json!({
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"},
                               "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN"}},
                "ItemBatcher": {"BatchInput": {}},
                "ResultWriter": {"Parameters": {"Bucket": "b", "Prefix": "p"}}
            })),
            &[
                "\"CSVHeaderLocation\": \"GIVEN\" needs \"CSVHeaders\"",
                "\"ItemBatcher\" needs at least one of MaxItemsPerBatch",
                "\"ResultWriter\": \"Parameters\" needs \"Resource\"",
            ],
        );
        assert_has(
            distributed(
                json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}}, "Label": "x".repeat(41)}),
            ),
            &[
                "with s3:getObject needs \"ReaderConfig.InputType\"",
                "\"Label\" is at most 40 characters long",
            ],
        );
    }

    #[test]
    fn task_credentials() {
        clean(one_task(
            json!({"Credentials": {"RoleArn": "arn:aws:iam::111122223333:role/r"}}),
        ));
        clean(one_task(json!({"Credentials": {"RoleArn.$": "$.role"}})));
        clean(one_task(
            json!({"Credentials": {"RoleArn.$": "States.Format('arn:aws:iam::{}:role/r', $.account)"}}),
        ));
        for (creds, want) in [
            (json!(null), "\"Credentials\" must be an object"),
            (json!({}), "needs \"RoleArn\""),
            (
                json!({"RoleArn": "a", "RoleArn.$": "$.r"}),
                "has both \"RoleArn\" and \"RoleArn.$\"",
            ),
            (
                json!({"RoleArn": 1}),
                "\"Credentials.RoleArn\" must be a string",
            ),
            (json!({"RoleArn.$": "nope"}), "neither a path"),
            (json!({"RoleArn": "a", "Other": 1}), "not \"Other\""),
        ] {
            assert_has(one_task(json!({"Credentials": creds})), &[want]);
        }
    }

    fn one_task(extra: Value) -> Value {
        let mut t = json!({"Type": "Task", "Resource": SQS, "End": true});
        if let (Value::Object(t), Value::Object(extra)) = (&mut t, extra) {
            t.extend(extra);
        }
        json!({"StartAt": "T", "States": {"T": t}})
    }

    #[test]
    fn intrinsic_literals_of_the_wrong_type_are_refused() {
        let pass = |call: &str| json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Parameters": {"v.$": call}}}});
        for call in [
            "States.MathAdd(1, -1)",
            "States.MathAdd($.a, States.ArrayLength($.l))",
            "States.MathAdd(2.0, 3)",
            "States.Format('{} and {}', $.a, 1)",
            r"States.Format('\{} {}', $.a)",
            "States.ArrayRange(1, 9, 2)",
            "States.Hash($.x, 'SHA-256')",
            "States.Hash($.x, $.algorithm)",
            "States.StringSplit($.s, ',')",
            "States.Base64Decode('RGF0YQ==')",
            "States.ArrayGetItem(States.Array(1, 2), 0)",
            "States.JsonMerge($.a, $.b, false)",
            "States.MathRandom(1, 10, 42)",
            "States.UUID()",
        ] {
            assert_eq!(problems(pass(call)), Vec::<String>::new(), "{call}");
        }
        for (call, want) in [
            (
                "States.MathAdd(1, '-1')",
                "States.MathAdd: the second value (argument 2) must be an integer, but it is a string",
            ),
            (
                "States.MathAdd(1.5, 1)",
                "the first value (argument 1) must be an integer, but it is a number with a fraction",
            ),
            (
                "States.MathAdd(States.UUID(), 1)",
                "but it is a string (the result of States.UUID)",
            ),
            (
                "States.MathRandom('1', 5)",
                "States.MathRandom: the start (argument 1) must be an integer",
            ),
            (
                "States.MathRandom(5, 5)",
                "the start (5) must be less than the end (5)",
            ),
            (
                "States.ArrayRange(1, 'x', 1)",
                "the last element (argument 2) must be an integer",
            ),
            ("States.ArrayRange(1, 9, 0)", "the step must not be zero"),
            (
                "States.ArrayRange(1, 5000, 1)",
                "5000 items, more than the 1000",
            ),
            (
                "States.ArrayPartition(1, 2)",
                "the array (argument 1) must be an array, but it is an integer",
            ),
            (
                "States.ArrayPartition($.a, 0)",
                "the chunk size must be a positive integer",
            ),
            (
                "States.ArrayGetItem($.a, -1)",
                "the index must not be negative",
            ),
            (
                "States.ArrayGetItem($.a, 'x')",
                "the index (argument 2) must be an integer",
            ),
            (
                "States.ArrayLength('abc')",
                "must be an array, but it is a string",
            ),
            (
                "States.ArrayContains(true, 1)",
                "must be an array, but it is a boolean",
            ),
            (
                "States.StringSplit(1, ',')",
                "the string (argument 1) must be a string",
            ),
            (
                "States.StringSplit($.s, '')",
                "the delimiter must not be empty",
            ),
            (
                "States.StringToJson(null)",
                "must be a string, but it is null",
            ),
            (
                "States.Base64Encode(42)",
                "must be a string, but it is an integer",
            ),
            ("States.Base64Decode('!!')", "is not valid Base64"),
            ("States.Hash($.x, 'SHA-3')", "unknown algorithm 'SHA-3'"),
            (
                "States.Hash($.x, 256)",
                "the algorithm (argument 2) must be a string",
            ),
            (
                "States.JsonMerge($.a, 'b', false)",
                "the second object (argument 2) must be an object",
            ),
            (
                "States.JsonMerge($.a, $.b, true)",
                "deep merging is not supported",
            ),
            (
                "States.JsonMerge($.a, $.b, 0)",
                "the deep-merge flag (argument 3) must be a boolean",
            ),
            (
                "States.Format(1, $.a)",
                "the template (argument 1) must be a string",
            ),
            (
                "States.Format('{}', States.Array(1))",
                "a value (argument 2) must be a string or",
            ),
            (
                "States.Format('{} {}', $.a)",
                "the template has 2 {} but 1 value(s) follow it",
            ),
            (
                "States.Array(States.MathAdd(1, 'x'))",
                "States.MathAdd: the second value",
            ),
        ] {
            let got = problems(pass(call));
            assert!(
                got.iter()
                    .any(|p| p.contains(want) && p.contains("\"Parameters\": in States.")),
                "{call}: missing {want:?} in {got:#?}"
            );
        }
        // The same in a Fail state's ErrorPath / CausePath.
        assert_has(
            json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "CausePath": "States.Format('{}')"}}}),
            &[
                "\"CausePath\": in States.Format('{}'): States.Format: the template has 1 {} but 0 value(s)",
            ],
        );
    }

    #[test]
    fn task_resources_are_arns() {
        for r in [
            SQS,
            "arn:aws:states:::lambda:invoke",
            "arn:aws:states:::aws-sdk:s3:getObject",
            "arn:aws:states:::states:startExecution.sync:2",
            "arn:aws:states:us-east-1:123456789012:activity:approve",
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f",
            // Filled in at deploy time (DefinitionSubstitutions).
            "${ValidatorFunctionArn}",
        ] {
            clean(
                json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}}),
            );
        }
        for (r, want) in [
            ("", "must be a non-empty string"),
            ("r", "is not an ARN"),
            ("lambda:invoke", "is not an ARN"),
            ("arn:aws:lambda", "needs six ':'-separated fields"),
            (
                "arn::lambda:us-east-1:1:function:f",
                "the partition (aws) and the service must not be empty",
            ),
            ("arn:aws:lambda:us-east-1:1:", "names no resource"),
            ("arn:aws:states:::sqs", "malformed service integration"),
            ("arn:aws:states:::sqs:", "malformed service integration"),
            (
                "arn:aws:states:us-east-1:1:activity:",
                "malformed activity ARN",
            ),
        ] {
            assert_has(
                json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}}),
                &[want],
            );
        }
        // The local executor never calls a Resource: it still runs such a definition.
        let v = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "local", "End": true}}});
        assert!(lint_for_execution(&v).is_empty());
        assert!(!lint_value(&v).is_empty());
    }

    /// Where this linter and AWS agree and statelint (3.1.0) or asl-validator (4.0.0), the
    /// validators scripts/test runs, do not. Each is pinned here so that nobody "fixes" it to match
    /// them.
    #[test]
    fn where_this_engine_is_right_and_the_validators_are_not() {
        // statelint: "BackoffRate is 2 but should be a Float". AWS takes any number >= 1.0
        // ("BackoffRate (Optional): the multiplier ... must be greater than or equal to 1.0"),
        // and its own examples write 2.
        clean(one_task(
            json!({"Retry": [{"ErrorEquals": ["X"], "BackoffRate": 2}]}),
        ));
        // statelint: "TimeoutSeconds is 99999999 but allowed ceiling is 99999999". 99999999 is
        // the largest value of the integer fields (TimeoutSeconds, HeartbeatSeconds,
        // IntervalSeconds, MaxAttempts, Seconds, MaxConcurrency, ToleratedFailureCount), included:
        // it is the default Task timeout of Step Functions itself. asl-validator takes
        // 100000000, which AWS refuses.
        clean(one_task(
            json!({"TimeoutSeconds": 99_999_999, "HeartbeatSeconds": 99_999_998}),
        ));
        clean(
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 99_999_999, "End": true}}}),
        );
        assert_has(
            one_task(json!({"TimeoutSeconds": 100_000_000})),
            &["\"TimeoutSeconds\" must be a positive integer (1 to 99999999), got 100000000"],
        );
        // statelint takes a Choice rule with a Variable and no operator; AWS refuses it (a rule
        // is a comparison or a combinator), as does asl-validator.
        assert_has(
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "S"}], "Default": "S"}, "S": {"Type": "Succeed"}}}),
            &["Choice rule 1: a Choice rule needs one comparison operator"],
        );
    }

    #[test]
    fn assign_and_variable_references_are_checked() {
        // Assign on every state type that takes it, in Choice rules and in catchers; `$name` read
        // in paths, templates, Choice rules, intrinsic functions and filters.
        clean(json!({"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Assign": {"n": 1, "order.$": "$.order", "id.$": "States.Format('#{}', $.id)"}, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [
                    {"Variable": "$n", "NumericGreaterThanPath": "$order.min", "Assign": {"big": true}, "Next": "W"}],
                  "Default": "W", "Assign": {"big": false}},
            "W": {"Type": "Wait", "SecondsPath": "$n", "Assign": {"waited.$": "$n"}, "Next": "T"},
            "T": {"Type": "Task", "Resource": SQS, "InputPath": "$order",
                  "Parameters": {"id.$": "$id", "lines.$": "$order.lines[?(@.q > $n)]", "s.$": "States.MathAdd($n, 1)"},
                  "TimeoutSecondsPath": "$n", "Assign": {"result.$": "$"},
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"failure.$": "$.Cause"}, "Next": "F"}], "Next": "M"},
            "M": {"Type": "Map", "ItemsPath": "$order.lines", "ItemSelector": {"line.$": "$$.Map.Item.Value", "n.$": "$n"},
                  "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Assign": {"inner.$": "$n"}, "Next": "J"},
                                                              "J": {"Type": "Pass", "OutputPath": "$inner", "End": true}}},
                  "Assign": {"count.$": "States.ArrayLength($)"}, "Next": "Par"},
            "Par": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Parameters": {"c.$": "$count"}, "End": true}}}],
                    "Assign": {"parallel.$": "$[0]"}, "Next": "S"},
            "S": {"Type": "Succeed", "OutputPath": "$result"},
            "F": {"Type": "Fail", "ErrorPath": "$failure", "CausePath": "States.Format('{}', $failure)"}
        }}));
        let got = problems(json!({"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Assign": {"2x": 1, "a-b.$": "$.x", "states": 1, "ok": [], "ok.$": "$.y", "fromTop": 1},
                  "ResultPath": "$ok", "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$nope", "IsPresent": true, "Next": "Q"},
                                               {"Not": {"Variable": "$ok", "IsNull": true, "Assign": {"x": 1}}, "Next": "Q"}],
                  "Default": "Q", "Assign": []},
            "Q": {"Type": "Pass", "Parameters": {"a.$": "$missing.field", "b.$": "States.Format('{}', $alsoMissing)",
                                                 "c.$": "$.l[?(@.x == $unknown)]", "d.$": "$states.input"}, "Next": "Par"},
            "Par": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "B", "States": {
                "B": {"Type": "Pass", "Assign": {"ok": 2, "fresh": 3}, "End": true}}}]},
            "Dm": {"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "D",
                   "States": {"D": {"Type": "Pass", "Parameters": {"v.$": "$fromTop"}, "Next": "E"},
                              "E": {"Type": "Pass", "Assign": {"ok": 1}, "End": true}}}}
        }}));
        for want in [
            "State \"P\": \"Assign\": \"2x\" is not a valid variable name: a variable name starts with a letter or '_'",
            "State \"P\": \"Assign\": \"a-b.$\" is not a valid variable name: a variable name holds only letters, digits and '_', not '-'",
            "State \"P\": \"Assign\": \"states\" is not a valid variable name: \"states\" is reserved",
            "State \"P\": \"Assign\": fields 'ok' and 'ok.$' would both produce 'ok'",
            "State \"P\": \"ResultPath\" must point into the state input ($...), not a variable",
            "State \"C\": reads the variable $nope, which no state assigns",
            "State \"C\": Choice rule 2: \"Assign\" is only allowed on top-level Choice rules",
            "State \"C\": \"Assign\" must be an object of variable names and values",
            "State \"Q\": reads the variable $missing",
            "State \"Q\": reads the variable $alsoMissing",
            "State \"Q\": reads the variable $unknown",
            "State \"Q\": reads $states, which is not a valid variable name: \"states\" is reserved",
            "Branch 1 of \"Par\": assigns $ok, a variable of an outer scope",
            // A Distributed Map's iterations see no outer variable, and may use the same names.
            "State \"D\" in the item processor of \"Dm\": reads the variable $fromTop, which no state assigns",
        ] {
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {got:#?}"
            );
        }
        assert!(!got.iter().any(|p| p.contains("$fresh")), "{got:#?}");
        assert!(!got.iter().any(|p| p.contains("Dm\": assigns")), "{got:#?}");
    }

    /// Found by measuring against the public corpora (statemachine/corpora/README.md).
    #[test]
    fn corpus_findings_fail_paths_and_resources() {
        // Developer Guide, "Fail workflow state": ErrorPath/CausePath take an intrinsic function
        // that returns a string (the ASL language service's test documentFailErrorPathAndCause-
        // PathIntrinsicInvalid).
        assert_has(
            json!({"StartAt": "F", "States": {"F": {"Type": "Fail",
                "ErrorPath": "States.StringToJson($.escapedJsonString)",
                "CausePath": "States.MathAdd($.value1, $.step)"}}}),
            &[
                "\"ErrorPath\": States.StringToJson does not return a string",
                "\"CausePath\": States.MathAdd does not return a string",
            ],
        );
        clean(json!({"StartAt": "F", "States": {"F": {"Type": "Fail",
            "ErrorPath": "States.ArrayGetItem($.errors, 0)",
            "CausePath": "States.JsonToString($.detail)"}}}));
        // An unclosed `${` is no DefinitionSubstitutions placeholder (asl-validator's
        // invalid-cfn-definition-substitutions.json); Lambda qualifiers are a version or an alias
        // (Lambda API Reference, "Invoke"; asl-validator's invalid-task-alias-function.json).
        for (r, want) in [
            ("${lambdaArn", "unclosed"),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:F:",
                "malformed Lambda function ARN",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:F:$*#$7485",
                "malformed Lambda function ARN",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:F:1:2",
                "malformed Lambda function ARN",
            ),
        ] {
            assert_has(
                json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}}),
                &[want],
            );
        }
        for r in [
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${Fn}",
            "arn:aws:lambda:us-east-1:123456789012:function:F:prod-2",
            "arn:aws:lambda:us-east-1:123456789012:function:F:7",
        ] {
            clean(
                json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}}),
            );
        }
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let n = lint_value(&json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B1"}, "B": {"Type": "Pass"}, "C": {"Type": "Wait", "End": true}
        }}))
        .len();
        assert!(n >= 4, "{n}");
    }
}
