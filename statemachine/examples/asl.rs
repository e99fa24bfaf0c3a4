//! Runs the `sluice statemachine` commands without the sluice binary:
//!
//! ```text
//! cargo run -p sluice-statemachine --example asl -- lint FILE
//! cargo run -p sluice-statemachine --example asl -- render FILE
//! cargo run -p sluice-statemachine --example asl -- exec FILE INPUT_JSON RESPONDER_FILE [--json] [--fast]
//! ```

use std::path::Path;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let code = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["lint", file, ..] => sluice_statemachine::cli::lint(Path::new(file)).await,
        ["render", file, ..] => sluice_statemachine::cli::render(Path::new(file)).await,
        ["exec", file, input, responder, ..] => {
            sluice_statemachine::cli::exec(
                Path::new(file),
                input,
                Path::new(responder),
                flag("--json"),
                flag("--fast"),
            )
            .await
        }
        _ => {
            eprintln!(
                "usage: asl lint FILE | asl render FILE | asl exec FILE INPUT_JSON RESPONDER_FILE [--json] [--fast]"
            );
            2
        }
    };
    std::process::exit(code);
}
