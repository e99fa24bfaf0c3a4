//! Checks a definition the way `statelint` does, and reports every problem found, each as a
//! sentence naming the state (and the branch it sits in).
//!
//! It works on the raw JSON so that it can report several problems at once and explain fields the
//! typed model would not even read: unknown or misplaced fields, missing `Next`/`End`, transitions
//! to states that do not exist, unreachable states, malformed Choice rules, paths, payload
//! templates, intrinsic calls, Retry/Catch rules (`States.ALL` alone and last) and field
//! combinations (`Seconds` xor `Timestamp`..., `HeartbeatSeconds` < `TimeoutSeconds`). Parallel
//! branches and Map item processors are checked recursively.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use crate::choice::{Condition, parse_timestamp};
use crate::error;
use crate::model::DEFAULT_TASK_TIMEOUT_SECONDS;
use crate::path::{Path, Root};
pub use crate::problem::Problem;
use crate::template::{PathOrIntrinsic, PayloadTemplate};

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
    let mut l = Linter {
        problems: Vec::new(),
        names: HashMap::new(),
    };
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
            "Next",
            "End",
        ],
        "Pass" => &["ResultPath", "Parameters", "Result", "Next", "End"],
        "Choice" => &["Choices", "Default"],
        "Wait" => &[
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
}

impl Linter {
    fn push(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(location, message));
    }

    fn query_language(&mut self, at: &str, v: &Value) {
        match v.as_str() {
            Some("JSONPath") => {}
            Some("JSONata") => self.push(
                at,
                "QueryLanguage \"JSONata\" is not supported: this engine runs JSONPath definitions only (remove QueryLanguage or set it to \"JSONPath\")",
            ),
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
                Ok(_) => {}
                Err(e) => self.push(at, format!("\"{field}\": {e}")),
            },
            _ => self.push(at, format!("\"{field}\" must be a reference path string{}", if nullable { " or null" } else { "" })),
        }
    }

    fn template_field(&mut self, at: &str, field: &str, v: &Value) {
        if let Err(e) = PayloadTemplate::compile(v) {
            self.push(at, format!("\"{field}\": {e}"));
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
                "Assign" => {
                    "workflow variables (\"Assign\") are not supported by this engine".to_string()
                }
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
            Some(Value::String(r)) if !r.is_empty() => {}
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
                    Some(text) => {
                        if let Err(e) = PathOrIntrinsic::parse(text) {
                            self.push(at, format!("\"{path}\": {e}"));
                        }
                    }
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
                self.branch(at, p, &inner, true);
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
        if let Some(v) = s.get("Label")
            && !v.is_string()
        {
            self.push(at, "\"Label\" must be a string");
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
                        format!("{what}: unknown field \"{other}\" (allowed: ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy)"),
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
            for key in m.keys() {
                if !matches!(key.as_str(), "ErrorEquals" | "Next" | "ResultPath") {
                    self.push(at, format!("{what}: unknown field \"{key}\" (allowed: ErrorEquals, Next, ResultPath)"));
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
            "T": {"Type": "Task", "Resource": "r", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": true},
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
                "T": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 10, "TimeoutSecondsPath": "$.t", "End": true},
                "T3": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 10, "HeartbeatSeconds": 10, "End": true},
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
                "T": {"Type": "Task", "Resource": "r", "End": true,
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
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "Bogus": 1, "States": {
                "P": {"Type": "Pass", "Output": "{% 1 %}", "Assign": {}, "End": true},
                "Q": {"Type": "Nope"}
            }}),
            &[
                "QueryLanguage \"JSONata\" is not supported",
                "unknown top-level field \"Bogus\"",
                "\"Output\" is a JSONata field",
                "workflow variables (\"Assign\")",
                "unknown Type \"Nope\"",
            ],
        );
        assert_has(json!([1]), &["must be a JSON object"]);
        assert_eq!(lint_str("{").len(), 1);
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
