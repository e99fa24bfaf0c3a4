//! The lint of JSONata states (see [`crate::jsonata`]), run by [`crate::lint`] before its own
//! checks.
//!
//! [`check`] reports what only JSONata changes, with the state it concerns:
//!
//! - `QueryLanguage` is `JSONPath` or `JSONata`; a JSONata definition cannot hold a JSONPath state
//!   (the other way round is allowed);
//! - the JSONPath fields (`InputPath`, `Parameters`, `ResultSelector`, `ResultPath`, `OutputPath`,
//!   the `...Path` fields, Pass `Result`, Map `ItemsPath`) are errors in a JSONata state, and the
//!   JSONata fields (`Arguments`, `Output`, `Items`, a Choice rule's `Condition`) in a JSONPath one;
//! - a JSONata Choice rule is a `Condition` (no `Variable` nor comparison operator, nor
//!   `And`/`Or`/`Not`), with `Next` and optionally `Assign` and `Output`;
//! - every `{% %}` expression parses (its syntax error is reported with the state and the field);
//!   field names do not end in `.$`; `Assign` names are variable names; the fields that take a
//!   number or a timestamp take a literal or one expression.
//!
//! It then hands the linter a copy of the definition in which each JSONata state is written the
//! way the JSONPath checks read it (expressions and JSONata-only fields taken out, a Choice rule's
//! `Condition` replaced by a rule that always holds), so that those checks (transitions,
//! reachability, Retry and Catch, variable scopes, Map and Task fields...) apply to JSONata states
//! too without being written twice, and without reporting a JSONata field as unknown.

use serde_json::{Map, Value, json};

use crate::jsonata::{JSONATA, JSONPATH, Template, effective_language, expression_text};
use crate::problem::Problem;
use crate::variables::check_name as check_variable_name;

/// Reports the JSONata problems of a definition and returns the copy the JSONPath checks read.
pub(crate) fn check(v: &Value, problems: &mut Vec<Problem>) -> Value {
    let Value::Object(top) = v else {
        return v.clone();
    };
    let top_language = match top.get("QueryLanguage") {
        Some(Value::String(l)) if l == JSONATA => JSONATA,
        _ => JSONPATH,
    };
    let mut shadow = top.clone();
    if let Some(states) = top.get("States") {
        shadow.insert("States".into(), machine(states, "", top_language, problems));
    }
    Value::Object(shadow)
}

fn machine(states: &Value, suffix: &str, top: &str, problems: &mut Vec<Problem>) -> Value {
    let Value::Object(states) = states else {
        return states.clone();
    };
    let mut out = Map::new();
    for (name, state) in states {
        let at = format!("state \"{name}\"{suffix}");
        let Value::Object(m) = state else {
            out.insert(name.clone(), state.clone());
            continue;
        };
        let mut l = StateLint {
            at,
            problems: &mut *problems,
        };
        let mut shadow = if effective_language(state, top) == JSONATA {
            l.jsonata_state(m)
        } else {
            if top == JSONATA && m.get("QueryLanguage").and_then(Value::as_str) == Some(JSONPATH) {
                l.push("a JSONata state machine (\"QueryLanguage\": \"JSONata\" at the top level) cannot hold JSONPath states; write this state in JSONata, or make the definition JSONPath and set \"QueryLanguage\": \"JSONata\" on its JSONata states");
            }
            l.jsonpath_state(m)
        };
        // The machines it holds, whatever its own language: their states follow the definition's.
        if let Some(Value::Array(branches)) = m.get("Branches") {
            let inner: Vec<Value> = branches
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    nested(
                        b,
                        &format!(" in branch {} of \"{name}\"{suffix}", i + 1),
                        top,
                        problems,
                    )
                })
                .collect();
            shadow.insert("Branches".into(), Value::Array(inner));
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(p) = m.get(key) {
                let suffix = format!(" in the item processor of \"{name}\"{suffix}");
                shadow.insert(key.into(), nested(p, &suffix, top, problems));
            }
        }
        out.insert(name.clone(), Value::Object(shadow));
    }
    Value::Object(out)
}

fn nested(b: &Value, suffix: &str, top: &str, problems: &mut Vec<Problem>) -> Value {
    let mut b = b.clone();
    if let Value::Object(m) = &mut b
        && let Some(states) = m.get("States").cloned()
    {
        m.insert("States".into(), machine(&states, suffix, top, problems));
    }
    b
}

/// The fields of JSONPath states, and what JSONata states write instead.
const JSONPATH_ONLY: &[(&str, &str)] = &[
    ("InputPath", "read $states.input in Arguments or Output"),
    (
        "Parameters",
        "use Arguments (Task, Parallel) or ItemSelector (Map)",
    ),
    ("ResultSelector", "use Output with $states.result"),
    (
        "ResultPath",
        "use Output (or Assign) with $states.input and $states.result",
    ),
    ("OutputPath", "use Output"),
    ("Result", "use Output"),
    ("ItemsPath", "use Items"),
    ("TimeoutSecondsPath", "give TimeoutSeconds as an expression"),
    (
        "HeartbeatSecondsPath",
        "give HeartbeatSeconds as an expression",
    ),
    ("SecondsPath", "give Seconds as an expression"),
    ("TimestampPath", "give Timestamp as an expression"),
    ("ErrorPath", "give Error as an expression"),
    ("CausePath", "give Cause as an expression"),
    ("MaxConcurrencyPath", "give MaxConcurrency as an expression"),
    (
        "ToleratedFailureCountPath",
        "give ToleratedFailureCount as an expression",
    ),
    (
        "ToleratedFailurePercentagePath",
        "give ToleratedFailurePercentage as an expression",
    ),
];

/// Fields that take a number (or, in a JSONata state, one expression).
const NUMBERS: &[&str] = &[
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "Seconds",
    "MaxConcurrency",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
];

/// A placeholder for a numeric field given as an expression, for the JSONPath checks that need
/// the field to be there (a Wait state needs exactly one of Seconds and Timestamp).
const PLACEHOLDER_TIMESTAMP: &str = "2016-03-14T01:59:00Z";

struct StateLint<'p> {
    at: String,
    problems: &'p mut Vec<Problem>,
}

impl StateLint<'_> {
    fn push(&mut self, message: impl Into<String>) {
        self.problems.push(Problem::new(self.at.clone(), message));
    }

    /// A JSONPath state: the JSONata fields are errors (and left out of the copy).
    fn jsonpath_state(&mut self, m: &Map<String, Value>) -> Map<String, Value> {
        let mut shadow = m.clone();
        for field in ["Arguments", "Output", "Items"] {
            if shadow.remove(field).is_some() {
                self.push(format!("\"{field}\" is a JSONata field, not allowed in a JSONPath state: set \"QueryLanguage\": \"JSONata\" on the state (or the definition) to use it"));
            }
        }
        if let Some(Value::Array(rules)) = shadow.get_mut("Choices") {
            for (i, rule) in rules.iter_mut().enumerate() {
                if let Value::Object(r) = rule
                    && r.remove("Condition").is_some()
                {
                    self.push(format!("Choice rule {}: \"Condition\" is a JSONata field; a JSONPath Choice rule compares a \"Variable\" (or set \"QueryLanguage\": \"JSONata\" on the state)", i + 1));
                    r.remove("Output");
                    if !r
                        .keys()
                        .any(|k| k != "Next" && k != "Assign" && k != "Comment")
                    {
                        r.insert("Variable".into(), json!("$"));
                        r.insert("IsPresent".into(), json!(true));
                    }
                }
            }
        }
        for holder in ["ItemReader", "ResultWriter"] {
            if let Some(Value::Object(h)) = shadow.get_mut(holder)
                && let Some(args) = h.remove("Arguments")
            {
                self.push(format!("\"{holder}.Arguments\" is a JSONata field: a JSONPath state writes \"{holder}.Parameters\""));
                h.entry("Parameters").or_insert(args);
            }
        }
        shadow
    }

    /// A JSONata state: its own checks, and the copy for the JSONPath checks.
    fn jsonata_state(&mut self, m: &Map<String, Value>) -> Map<String, Value> {
        let kind = m.get("Type").and_then(Value::as_str).unwrap_or_default();
        let mut shadow = m.clone();
        for (field, instead) in JSONPATH_ONLY {
            if shadow.remove(*field).is_some() {
                self.push(format!(
                    "\"{field}\" is a JSONPath field, not allowed in a JSONata state ({instead})"
                ));
            }
        }
        // The JSONata data flow fields.
        let takes_arguments = matches!(kind, "Task" | "Parallel");
        if let Some(v) = shadow.remove("Arguments") {
            if takes_arguments {
                self.template("Arguments", &v);
            } else {
                self.push(format!(
                    "\"Arguments\" is not allowed in a {kind} state (only Task and Parallel take Arguments)"
                ));
            }
        }
        if let Some(v) = shadow.remove("Output") {
            if kind == "Fail" {
                self.push("\"Output\" is not allowed in a Fail state: it ends the execution");
            } else {
                self.template("Output", &v);
            }
        }
        for field in ["Items", "ItemSelector"] {
            if kind == "Map"
                && let Some(v) = shadow.remove(field)
            {
                self.template(field, &v);
                if field == "Items" && !(v.is_array() || is_expression(&v)) {
                    self.push("\"Items\" must be an array or a JSONata expression \"{% ... %}\" giving one");
                }
                if field == "ItemSelector" && !(v.is_object() || is_expression(&v)) {
                    self.push(
                        "\"ItemSelector\" must be an object or a JSONata expression \"{% ... %}\"",
                    );
                }
            }
        }
        if let Some(a) = shadow.get("Assign").cloned() {
            shadow.insert("Assign".into(), self.assign("Assign", &a));
        }
        // Literal-or-expression fields.
        for field in NUMBERS {
            match shadow.get(*field) {
                Some(v @ Value::String(s)) if expression_text(s).is_some() => {
                    self.template(field, &v.clone());
                    if *field == "Seconds" {
                        shadow.insert((*field).into(), json!(0));
                    } else {
                        shadow.remove(*field);
                    }
                }
                Some(Value::String(s)) => {
                    self.push(format!("\"{field}\" must be a number or a JSONata expression \"{{% ... %}}\", got {s:?}"));
                    shadow.remove(*field);
                }
                _ => {}
            }
        }
        if let Some(v @ Value::String(s)) = shadow.get("Timestamp").cloned().as_ref()
            && expression_text(s).is_some()
        {
            self.template("Timestamp", v);
            shadow.insert("Timestamp".into(), json!(PLACEHOLDER_TIMESTAMP));
        }
        for field in ["Error", "Cause"] {
            if let Some(v @ Value::String(_)) = shadow.get(field).cloned().as_ref() {
                self.template(field, v);
            }
        }
        if let Some(Value::Array(rules)) = shadow.get("Choices").cloned() {
            let rules: Vec<Value> = rules
                .iter()
                .enumerate()
                .map(|(i, r)| self.choice_rule(i + 1, r))
                .collect();
            shadow.insert("Choices".into(), Value::Array(rules));
        }
        if let Some(Value::Array(catchers)) = shadow.get("Catch").cloned() {
            let catchers: Vec<Value> = catchers
                .iter()
                .enumerate()
                .map(|(i, c)| self.catcher(i + 1, c))
                .collect();
            shadow.insert("Catch".into(), Value::Array(catchers));
        }
        for holder in ["ItemReader", "ResultWriter"] {
            if let Some(Value::Object(h)) = shadow.get_mut(holder) {
                if h.remove("Parameters").is_some() {
                    self.problems.push(Problem::new(self.at.clone(), format!("\"{holder}.Parameters\" is a JSONPath field: a JSONata state writes \"{holder}.Arguments\"")));
                }
                if let Some(args) = h.remove("Arguments") {
                    let mut l = StateLint {
                        at: self.at.clone(),
                        problems: &mut *self.problems,
                    };
                    l.template(&format!("{holder}.Arguments"), &args);
                    let stand_in = if is_expression(&args) {
                        // The whole Arguments is one expression: its fields are known only when it
                        // runs; the JSONPath checks see the fields the resource needs.
                        let get_object = h
                            .get("Resource")
                            .and_then(Value::as_str)
                            .is_some_and(|r| r.ends_with(":s3:getObject"));
                        if holder == "ItemReader" && get_object {
                            serde_json::json!({"Bucket": "expression", "Key": "expression"})
                        } else {
                            serde_json::json!({"Bucket": "expression", "Prefix": "expression"})
                        }
                    } else {
                        literal(&args)
                    };
                    h.insert("Parameters".into(), stand_in);
                }
            }
        }
        // Numeric fields of a Distributed Map's configuration may be expressions too.
        for (holder, fields) in [
            ("ItemReader", &["ReaderConfig"][..]),
            ("ItemBatcher", &[][..]),
        ] {
            if let Some(Value::Object(h)) = shadow.get_mut(holder) {
                let at = self.at.clone();
                let problems = &mut *self.problems;
                let mut strip = |o: &mut Map<String, Value>| {
                    let exprs: Vec<String> = o
                        .iter()
                        .filter(|(_, v)| is_expression(v))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in exprs {
                        if let Some(v) = o.remove(&k)
                            && let Err(e) = Template::compile(&v)
                        {
                            problems
                                .push(Problem::new(at.clone(), format!("\"{holder}.{k}\": {e}")));
                        }
                        // A limit given as an expression is still a limit (an ItemBatcher needs one):
                        // the JSONPath checks see a valid stand-in.
                        if matches!(
                            k.as_str(),
                            "MaxItems" | "MaxItemsPerBatch" | "MaxInputBytesPerBatch"
                        ) {
                            o.insert(k, Value::from(1));
                        }
                    }
                };
                strip(h);
                for f in fields {
                    if let Some(Value::Object(inner)) = h.get_mut(*f) {
                        strip(inner);
                    }
                }
            }
        }
        shadow
    }

    /// A field whose strings may be expressions: each parses, and no field name ends in `.$`.
    fn template(&mut self, field: &str, v: &Value) {
        if let Err(e) = Template::compile(v) {
            self.push(format!(
                "\"{field}\": the JSONata expression is not valid: {e}"
            ));
        }
        let mut dollar = Vec::new();
        dollar_keys(v, field, &mut dollar);
        for key in dollar {
            self.push(format!("\"{key}\": a JSONata state does not mark fields with .$ (JSONPath); write the name without .$ and the value as \"{{% ... %}}\""));
        }
    }

    /// `Assign` of a JSONata state, rule or catcher; returns what the JSONPath checks should see
    /// (the valid names, so that the variable scopes are checked across both languages).
    fn assign(&mut self, what: &str, v: &Value) -> Value {
        let Value::Object(m) = v else {
            self.push(format!(
                "\"{what}\" must be an object of variable names and values, got {v}"
            ));
            return json!({});
        };
        let mut names = Map::new();
        for (key, value) in m {
            match check_variable_name(key) {
                Ok(()) => {
                    names.insert(key.clone(), Value::Null);
                }
                Err(why) => self.push(format!(
                    "\"{what}\": \"{key}\" is not a valid variable name: {why}"
                )),
            }
            self.template(&format!("{what}.{key}"), value);
        }
        Value::Object(names)
    }

    fn choice_rule(&mut self, n: usize, rule: &Value) -> Value {
        let Value::Object(r) = rule else {
            return rule.clone();
        };
        let mut shadow = Map::new();
        for (key, value) in r {
            match key.as_str() {
                "Next" | "Comment" => {
                    shadow.insert(key.clone(), value.clone());
                }
                "Condition" => match value {
                    Value::String(s) if expression_text(s).is_some() => {
                        self.template(&format!("Choice rule {n} Condition"), value)
                    }
                    _ => self.push(format!("Choice rule {n}: \"Condition\" must be a JSONata expression \"{{% ... %}}\" giving true or false, got {value}")),
                },
                "Output" => self.template(&format!("Choice rule {n} Output"), value),
                "Assign" => {
                    let names = self.assign(&format!("Choice rule {n} Assign"), value);
                    shadow.insert("Assign".into(), names);
                }
                "Variable" | "And" | "Or" | "Not" => self.push(format!("Choice rule {n}: \"{key}\" is JSONPath; a JSONata Choice rule is a \"Condition\": \"{{% ... %}}\"")),
                other if crate::choice::is_operator(other) => self.push(format!("Choice rule {n}: the JSONPath comparison \"{other}\" is not allowed in a JSONata state; write the comparison in a \"Condition\": \"{{% ... %}}\"")),
                other => self.push(format!("Choice rule {n}: unknown field \"{other}\" (a JSONata rule takes Condition, Next, Assign, Output, Comment)")),
            }
        }
        if !r.contains_key("Condition") {
            self.push(format!(
                "Choice rule {n} needs a \"Condition\": \"{{% ... %}}\" (JSONata)"
            ));
        }
        // For the JSONPath checks: a rule that always holds, with the same Next and Assign names.
        shadow.insert("Variable".into(), json!("$"));
        shadow.insert("IsPresent".into(), json!(true));
        Value::Object(shadow)
    }

    fn catcher(&mut self, n: usize, c: &Value) -> Value {
        let Value::Object(m) = c else {
            return c.clone();
        };
        let mut shadow = m.clone();
        if shadow.remove("ResultPath").is_some() {
            self.push(format!("catcher {n}: \"ResultPath\" is a JSONPath field, not allowed in a JSONata state (use Output with $states.errorOutput)"));
        }
        if let Some(o) = shadow.remove("Output") {
            self.template(&format!("catcher {n} Output"), &o);
        }
        if let Some(a) = shadow.get("Assign").cloned() {
            let names = self.assign(&format!("catcher {n} Assign"), &a);
            shadow.insert("Assign".into(), names);
        }
        Value::Object(shadow)
    }
}

fn is_expression(v: &Value) -> bool {
    v.as_str().is_some_and(|s| expression_text(s).is_some())
}

/// The value with every expression replaced by a plain string (for the JSONPath checks).
fn literal(v: &Value) -> Value {
    match v {
        Value::String(s) if expression_text(s).is_some() => json!("expression"),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), literal(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(literal).collect()),
        other => other.clone(),
    }
}

fn dollar_keys(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let here = format!("{at}.{k}");
                if k.ends_with(".$") {
                    out.push(here.clone());
                }
                dollar_keys(v, &here, out);
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| dollar_keys(v, &format!("{at}[{i}]"), out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::lint::lint_value;

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

    use super::*;

    const SQS: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

    #[test]
    fn a_clean_jsonata_definition_has_no_problems() {
        let v = json!({
            "QueryLanguage": "JSONata", "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": SQS,
                      "Arguments": {"QueueUrl": "q", "MessageBody": {"token": "{% $states.context.Task.Token %}", "n": "{% $states.input.n %}"}},
                      "TimeoutSeconds": "{% $states.input.timeout %}", "HeartbeatSeconds": 5,
                      "Output": "{% $merge([$states.input, {'result': $states.result}]) %}",
                      "Assign": {"count": "{% $states.result.count %}"},
                      "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Output": "{% $states.errorOutput %}", "Assign": {"failed": true}, "Next": "F"}],
                      "Next": "C"},
                "C": {"Type": "Choice", "Choices": [
                        {"Condition": "{% $count > 1 %}", "Assign": {"big": true}, "Output": {"c": "{% $count %}"}, "Next": "W"}],
                      "Default": "M", "Assign": {"big": false}, "Output": "{% $states.input %}"},
                "W": {"Type": "Wait", "Seconds": "{% $count %}", "Next": "M"},
                "M": {"Type": "Map", "Items": "{% $states.input.items %}", "MaxConcurrency": "{% 2 %}",
                      "ToleratedFailurePercentage": "{% 10 %}",
                      "ItemSelector": {"value": "{% $states.context.Map.Item.Value %}", "count": "{% $count %}"},
                      "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Output": "{% $states.input.value %}", "End": true}}},
                      "Next": "P"},
                "P": {"Type": "Parallel", "Arguments": {"all": "{% $states.input %}"},
                      "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Wait", "Timestamp": "{% '2016-03-14T01:59:00Z' %}", "End": true}}}],
                      "Next": "S"},
                "S": {"Type": "Succeed", "Output": {"done": true}},
                "F": {"Type": "Fail", "Error": "{% $states.input.Error %}", "Cause": "literal cause"}
            }
        });
        assert_eq!(problems(v), Vec::<String>::new());
        // A JSONata state in a JSONPath definition, reading a variable a JSONPath state assigns.
        let v = json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Assign": {"x.$": "$.x"}, "Next": "B"},
            "B": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $x %}", "Assign": {"y": 1}, "Next": "C"},
            "C": {"Type": "Pass", "Parameters": {"y.$": "$y"}, "End": true}
        }});
        assert_eq!(problems(v), Vec::<String>::new());
    }

    #[test]
    fn jsonpath_fields_are_errors_in_jsonata_states_and_back() {
        assert_has(
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
                "P": {"Type": "Pass", "InputPath": "$.a", "Parameters": {"a.$": "$.a"}, "Result": 1,
                      "ResultPath": "$.r", "OutputPath": "$.o", "Next": "T"},
                "T": {"Type": "Task", "Resource": SQS, "ResultSelector": {"a.$": "$.a"}, "TimeoutSecondsPath": "$.t",
                      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "F"}], "Next": "M"},
                "M": {"Type": "Map", "ItemsPath": "$.items", "End": true,
                      "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}},
                "F": {"Type": "Fail", "ErrorPath": "$.e", "Output": 1}
            }}),
            &[
                "State \"P\": \"InputPath\" is a JSONPath field, not allowed in a JSONata state",
                "State \"P\": \"Parameters\" is a JSONPath field",
                "State \"P\": \"Result\" is a JSONPath field",
                "State \"P\": \"ResultPath\" is a JSONPath field",
                "State \"P\": \"OutputPath\" is a JSONPath field",
                "State \"T\": \"ResultSelector\" is a JSONPath field",
                "State \"T\": \"TimeoutSecondsPath\" is a JSONPath field",
                "State \"T\": catcher 1: \"ResultPath\" is a JSONPath field",
                "State \"M\": \"ItemsPath\" is a JSONPath field",
                "State \"F\": \"ErrorPath\" is a JSONPath field",
                "State \"F\": \"Output\" is not allowed in a Fail state",
            ],
        );
        assert_has(
            json!({"StartAt": "P", "States": {
                "P": {"Type": "Pass", "Output": "{% 1 %}", "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "T"}]},
                "T": {"Type": "Task", "Resource": SQS, "Arguments": {}, "End": true}
            }}),
            &[
                "State \"P\": \"Output\" is a JSONata field, not allowed in a JSONPath state",
                "State \"C\": Choice rule 1: \"Condition\" is a JSONata field",
                "State \"T\": \"Arguments\" is a JSONata field",
            ],
        );
    }

    #[test]
    fn choice_rules_query_language_and_syntax() {
        let got = problems(
            json!({"QueryLanguage": "JSONata", "StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [
                    {"Variable": "$.a", "StringEquals": "x", "Next": "S"},
                    {"And": [{"Condition": "{% true %}"}], "Next": "S"},
                    {"Condition": "$.a == 1", "Next": "S"},
                    {"Condition": "{% $states.input.a = %}", "Next": "S"},
                    {"Next": "S", "Bogus": 1}
                ], "Default": "J"},
                "J": {"Type": "Pass", "QueryLanguage": "JSONPath", "Next": "W"},
                "W": {"Type": "Wait", "Seconds": "5", "Next": "X"},
                "X": {"Type": "Pass", "Output": {"a.$": "{% 1 %}", "b": ["{% ) %}"]},
                      "Assign": {"2x": "{% 1 %}", "ok": "{% 1 + %}"}, "Next": "Y"},
                "Y": {"Type": "Pass", "QueryLanguage": "YAML", "Next": "S"},
                "S": {"Type": "Succeed"}
            }}),
        );
        for want in [
            "State \"C\": Choice rule 1: \"Variable\" is JSONPath; a JSONata Choice rule is a \"Condition\"",
            "State \"C\": Choice rule 1: the JSONPath comparison \"StringEquals\" is not allowed in a JSONata state",
            "State \"C\": Choice rule 2: \"And\" is JSONPath",
            "State \"C\": Choice rule 3: \"Condition\" must be a JSONata expression",
            "State \"C\": \"Choice rule 4 Condition\": the JSONata expression is not valid",
            "State \"C\": Choice rule 5: unknown field \"Bogus\"",
            "State \"C\": Choice rule 5 needs a \"Condition\"",
            "State \"J\": a JSONata state machine",
            "State \"W\": \"Seconds\" must be a number or a JSONata expression",
            "State \"Y\": \"QueryLanguage\" must be \"JSONPath\" or \"JSONata\"",
            "State \"X\": \"Output.a.$\": a JSONata state does not mark fields with .$",
            "State \"X\": \"Output\": the JSONata expression is not valid: in field 'b[0]'",
            "State \"X\": \"Assign\": \"2x\" is not a valid variable name",
            "State \"X\": \"Assign.ok\": the JSONata expression is not valid",
        ] {
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {got:#?}"
            );
        }
        // The problems are reported with the state, in branches too.
        assert_has(
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
                "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": "{% [ %}", "End": true}}}]}}}),
            &["State \"B\" in branch 1 of \"P\": \"Output\": the JSONata expression is not valid"],
        );
    }

    #[test]
    fn the_jsonpath_checks_still_apply_to_jsonata_states() {
        assert_has(
            json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
                "A": {"Type": "Pass", "Output": "{% 1 %}", "Next": "Nowhere"},
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "Gone"}]},
                "W": {"Type": "Wait", "End": true},
                "T": {"Type": "Task", "Resource": SQS, "HeartbeatSeconds": 10, "TimeoutSeconds": 5, "End": true},
                "Q": {"Type": "Pass", "Arguments": {}, "End": true}
            }}),
            &[
                "State \"A\": \"Next\" names \"Nowhere\"",
                "State \"C\": Choice rule 1 goes to \"Gone\"",
                "State \"W\": needs exactly one of",
                "\"HeartbeatSeconds\" (10) must be smaller than \"TimeoutSeconds\" (5)",
                "State \"Q\": \"Arguments\" is not allowed in a Pass state",
                "State \"C\": it is never reached",
            ],
        );
        // Variables assigned by JSONata states count for the scope checks.
        assert_has(
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
                "P": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Par"},
                "Par": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "B", "States": {
                    "B": {"Type": "Pass", "Assign": {"x": 2}, "End": true}}}]}
            }}),
            &["Branch 1 of \"Par\": assigns $x, a variable of an outer scope"],
        );
    }

    #[test]
    fn a_limit_or_arguments_given_as_an_expression_count() {
        // The ASL language service's documentMapJSONata case: AWS accepts it.
        let problems = crate::lint::lint_str(&serde_json::json!({
            "QueryLanguage": "JSONata",
            "StartAt": "Map",
            "States": {"Map": {
                "Type": "Map",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                    "Arguments": {"Bucket": "b"}},
                "ItemBatcher": {"MaxItemsPerBatch": "{% 2 + 3 %}"},
                "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                    "Arguments": "{% {'Bucket': 'b', 'Prefix': 'out'} %}"},
                "End": true}}
        }).to_string());
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn the_copy_for_the_jsonpath_checks() {
        let mut problems = Vec::new();
        let shadow = check(
            &json!({"QueryLanguage": "JSONata", "StartAt": "W", "States": {
                "W": {"Type": "Wait", "Seconds": "{% 1 %}", "Output": "{% 2 %}", "Assign": {"a": "{% 3 %}", "b-c": 1}, "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "W", "Assign": {"d": 1}}]}
            }}),
            &mut problems,
        );
        assert_eq!(
            shadow["States"]["W"],
            json!({"Type": "Wait", "Seconds": 0, "Assign": {"a": null}, "Next": "C"})
        );
        assert_eq!(
            shadow["States"]["C"]["Choices"][0],
            json!({"Variable": "$", "IsPresent": true, "Next": "W", "Assign": {"d": null}})
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
