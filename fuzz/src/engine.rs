//! The fuzzing loop: pick a corpus entry, mutate it, run the target under `catch_unwind`, keep the
//! input if it shows a feature never seen, and record every panic (saved to the crash folder, printed
//! with the target, seed and a hex dump).
//!
//! Panics are captured by a panic hook rather than printed: the hook records the message and place
//! of every panic raised while an execution runs, also in threads the target starts (the validator
//! parses in a second thread), so a panic that some code catches and turns into an error still
//! counts as a crash.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::mutate::Mutator;
use crate::targets::{Features, Fnv, Target};

/// The most inputs kept per target (seeds included); a new one then replaces a random non-seed one.
const MAX_CORPUS: usize = 4096;
/// Features one tag may contribute: past that, a tag's new values (most likely values the messages
/// echo, which the shapes failed to leave out) no longer count as new.
const MAX_FEATURES_PER_TAG: usize = 512;
/// Inputs saved per distinct panic place: the first one, then only ones shorter than all before.
const MAX_SAVED_PER_SITE: usize = 4;
/// Executions spent shrinking the first input of each distinct panic place.
const MINIMIZE_BUDGET: u64 = 20_000;
/// An execution slower than this is saved (`{target}-slow-{n}.bin`) and reported (not a failure).
const SLOW: Duration = Duration::from_secs(1);

/// One panic raised during an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicReport {
    pub message: String,
    /// `file:line:column`.
    pub location: String,
    pub thread: String,
}

impl std::fmt::Display for PanicReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "panicked at {} (thread {}): {}",
            self.location, self.thread, self.message
        )
    }
}

thread_local! {
    /// Panics of the execution running on this thread; `None` outside executions.
    static CAPTURE: RefCell<Option<Vec<PanicReport>>> = const { RefCell::new(None) };
    /// This thread runs executions: its panics outside them are its own (a test's assertion).
    static FUZZ_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
/// Executions running now (in any thread).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Panics of other threads while executions run (threads started by a target: the validator's
/// reader), collected by the next execution to finish.
static FOREIGN: Mutex<Vec<PanicReport>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let mut pending = Some(PanicReport {
                message: info
                    .payload_as_str()
                    .unwrap_or("(a panic payload that is not text)")
                    .to_string(),
                location: info.location().map(|l| l.to_string()).unwrap_or_default(),
                thread: std::thread::current()
                    .name()
                    .unwrap_or("unnamed")
                    .to_string(),
            });
            let _ = CAPTURE.try_with(|c| {
                if let Ok(mut c) = c.try_borrow_mut()
                    && let Some(panics) = c.as_mut()
                {
                    panics.extend(pending.take());
                }
            });
            let Some(report) = pending else { return };
            let fuzz_thread = FUZZ_THREAD.try_with(|f| f.get()).unwrap_or(false);
            if !fuzz_thread && ACTIVE.load(Ordering::SeqCst) > 0 {
                lock_foreign().push(report);
                return;
            }
            previous(info);
        }));
    });
}

fn lock_foreign() -> std::sync::MutexGuard<'static, Vec<PanicReport>> {
    FOREIGN.lock().unwrap_or_else(|e| e.into_inner())
}

struct Active;

impl Active {
    fn enter() -> Active {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one input, noting its features; `Err` holds every panic it raised (none is printed).
pub fn run_guarded(
    exec: fn(&[u8], &mut Features),
    input: &[u8],
    features: &mut Features,
) -> Result<(), Vec<PanicReport>> {
    install_hook();
    FUZZ_THREAD.with(|f| f.set(true));
    let _active = Active::enter();
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    features.clear();
    let result = panic::catch_unwind(AssertUnwindSafe(|| exec(input, features)));
    let own = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    // A panic in a thread the target started comes first: it is the cause (the validator's reader
    // thread panicking makes `thread::scope` panic in this thread too).
    let mut panics: Vec<PanicReport> = std::mem::take(&mut *lock_foreign());
    panics.extend(own);
    match result {
        Ok(()) if panics.is_empty() => Ok(()),
        Ok(_) => Err(panics),
        Err(payload) => {
            if panics.is_empty() {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(a panic payload that is not text)".into());
                panics.push(PanicReport {
                    message,
                    location: String::new(),
                    thread: String::new(),
                });
            }
            Err(panics)
        }
    }
}

/// How to run one target.
#[derive(Debug, Clone)]
pub struct Options {
    /// Executions (the seeds first, then mutated inputs).
    pub runs: u64,
    /// Makes the whole run reproducible; each target mixes in its name.
    pub seed: u64,
    /// Where crashing (and very slow) inputs are saved; `None`: nowhere.
    pub crash_dir: Option<PathBuf>,
    /// Print each new kind of crash as it is found (target, seed, panic, hex dump).
    pub verbose: bool,
    /// Shrink the first input of each kind of crash at the end (saved as `...-min.bin`).
    pub minimize: bool,
}

/// One kind of crash: the first panic place, with the first input and the shortest one seen.
#[derive(Debug, Clone)]
pub struct Crash {
    /// 0-based execution number of the first occurrence.
    pub exec: u64,
    pub panics: Vec<PanicReport>,
    pub input: Vec<u8>,
    /// The shortest input seen (after minimizing, when asked).
    pub smallest: Vec<u8>,
    /// Executions that panicked at this place.
    pub count: u64,
    pub saved: Vec<PathBuf>,
}

impl Crash {
    /// The place that identifies this kind of crash.
    pub fn site(&self) -> &str {
        self.panics.first().map_or("", |p| p.location.as_str())
    }
}

/// What one run of a target did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    /// The seed of this target's generator (the run's seed mixed with the target name).
    pub seed: u64,
    pub execs: u64,
    pub elapsed: Duration,
    /// Executions that panicked.
    pub crashes: u64,
    /// One entry per distinct panic place, in order of discovery.
    pub kinds: Vec<Crash>,
    pub corpus: usize,
    /// Distinct features seen.
    pub features: usize,
    pub slowest: Duration,
    pub slow_saved: Vec<PathBuf>,
}

impl Report {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// FNV-1a of a name, to give each target its own stream of the run's seed.
fn name_seed(name: &str) -> u64 {
    let mut h = Fnv::new();
    h.write(name.as_bytes());
    h.finish()
}

/// Fuzzes one target.
pub fn fuzz(target: &Target, opts: &Options) -> Report {
    let seed = opts.seed ^ name_seed(target.name);
    let mut rng = fastrand::Rng::with_seed(seed);
    let seeds = target.seed_corpus();
    let mutator = Mutator::new(target, &seeds);
    let fixed = seeds.len();
    let mut corpus = seeds;
    let mut seen: HashSet<u64> = HashSet::new();
    let mut features = Features::default();
    let mut per_tag: HashMap<u16, usize> = HashMap::new();
    let mut kinds: Vec<Crash> = Vec::new();
    let mut by_site: HashMap<String, usize> = HashMap::new();
    let mut crashes = 0;
    let mut slowest = Duration::ZERO;
    let mut slow_saved = Vec::new();
    let mut input = Vec::new();
    let started = Instant::now();

    for exec in 0..opts.runs {
        input.clear();
        match usize::try_from(exec).ok().filter(|&i| i < fixed) {
            Some(i) => input.extend_from_slice(&corpus[i]),
            None => mutator.mutate(&mut rng, &corpus, fixed, &mut input),
        }
        let t = Instant::now();
        let result = run_guarded(target.exec, &input, &mut features);
        let took = t.elapsed();
        if took > slowest {
            slowest = took;
            if took > SLOW
                && slow_saved.len() < MAX_SAVED_PER_SITE
                && let Some(dir) = &opts.crash_dir
                && let Some(p) = save(dir, &format!("{}-slow", target.name), &input)
            {
                if opts.verbose {
                    eprintln!(
                        "slow input: target {} seed {} exec {exec}: {:.2?}, saved {}",
                        target.name,
                        opts.seed,
                        took,
                        p.display()
                    );
                }
                slow_saved.push(p);
            }
        }
        match result {
            Ok(()) => {
                let mut new = false;
                for &f in features.as_slice() {
                    let tag = (f >> 48) as u16;
                    let count = per_tag.entry(tag).or_insert(0);
                    if *count < MAX_FEATURES_PER_TAG && seen.insert(f) {
                        *count += 1;
                        new = true;
                    }
                }
                if new && exec >= fixed as u64 {
                    if corpus.len() < MAX_CORPUS {
                        corpus.push(input.clone());
                    } else {
                        let at = fixed + rng.usize(..corpus.len() - fixed);
                        corpus[at] = input.clone();
                    }
                }
            }
            Err(panics) => {
                crashes += 1;
                let site = panics[0].location.clone();
                match by_site.get(&site) {
                    Some(&k) => {
                        let kind = &mut kinds[k];
                        kind.count += 1;
                        if input.len() < kind.smallest.len() {
                            kind.smallest = input.clone();
                            if kind.saved.len() < MAX_SAVED_PER_SITE
                                && let Some(dir) = &opts.crash_dir
                            {
                                kind.saved.extend(save(dir, target.name, &input));
                            }
                        }
                    }
                    None => {
                        let saved: Vec<PathBuf> = opts
                            .crash_dir
                            .as_deref()
                            .and_then(|dir| save(dir, target.name, &input))
                            .into_iter()
                            .collect();
                        let kind = Crash {
                            exec,
                            panics,
                            input: input.clone(),
                            smallest: input.clone(),
                            count: 1,
                            saved,
                        };
                        if opts.verbose {
                            eprintln!("{}", describe_crash(target.name, opts.seed, &kind));
                        }
                        by_site.insert(site, kinds.len());
                        kinds.push(kind);
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();

    if opts.minimize {
        for kind in &mut kinds {
            let site = kind.site().to_string();
            let small = minimize(target.exec, &kind.smallest, &site, MINIMIZE_BUDGET);
            if small.len() < kind.smallest.len() {
                kind.smallest = small;
            }
            if let Some(dir) = &opts.crash_dir {
                kind.saved
                    .extend(save(dir, &format!("{}-min", target.name), &kind.smallest));
            }
        }
    }

    Report {
        target: target.name,
        seed,
        execs: opts.runs,
        elapsed,
        crashes,
        kinds,
        corpus: corpus.len(),
        features: seen.len(),
        slowest,
        slow_saved,
    }
}

/// Shrinks a crashing input while it still panics at `site`: removes chunks (halves, quarters...,
/// single bytes), then simplifies bytes to `0`/`a`, within `budget` executions.
pub fn minimize(exec: fn(&[u8], &mut Features), input: &[u8], site: &str, budget: u64) -> Vec<u8> {
    let mut best = input.to_vec();
    let mut spent = 0;
    let mut features = Features::default();
    let mut crashes = |candidate: &[u8], spent: &mut u64| -> bool {
        *spent += 1;
        matches!(run_guarded(exec, candidate, &mut features), Err(p) if p[0].location == site)
    };
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut at = 0;
        while at < best.len() && spent < budget {
            let end = (at + chunk).min(best.len());
            let mut candidate = Vec::with_capacity(best.len() - (end - at));
            candidate.extend_from_slice(&best[..at]);
            candidate.extend_from_slice(&best[end..]);
            if crashes(&candidate, &mut spent) {
                best = candidate;
            } else {
                at += chunk;
            }
        }
        if chunk == 1 || spent >= budget {
            break;
        }
        chunk /= 2;
    }
    for simple in [b'0', b'a'] {
        for i in 0..best.len() {
            if spent >= budget {
                break;
            }
            if best[i] == simple || best[i].is_ascii_alphanumeric() {
                continue;
            }
            let mut candidate = best.clone();
            candidate[i] = simple;
            if crashes(&candidate, &mut spent) {
                best = candidate;
            }
        }
    }
    best
}

/// Saves an input as `{dir}/{stem}-{n}.bin` with the first free `n`.
fn save(dir: &Path, stem: &str, input: &[u8]) -> Option<PathBuf> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return None;
    }
    for n in 1.. {
        let path = dir.join(format!("{stem}-{n}.bin"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write as _;
                return match f.write_all(input) {
                    Ok(()) => Some(path),
                    Err(e) => {
                        eprintln!("cannot write {}: {e}", path.display());
                        None
                    }
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                eprintln!("cannot create {}: {e}", path.display());
                return None;
            }
        }
    }
    None
}

/// A crash as a paragraph: target, seed, where it panicked, the saved files and a hex dump.
pub fn describe_crash(target: &str, seed: u64, kind: &Crash) -> String {
    let mut s = format!(
        "CRASH target {target} seed {seed} exec {}: {} execution(s) panicked here",
        kind.exec, kind.count
    );
    for p in &kind.panics {
        let _ = write!(s, "\n  {p}");
    }
    for path in &kind.saved {
        let _ = write!(s, "\n  saved {}", path.display());
    }
    let _ = write!(
        s,
        "\n  input ({} bytes):\n{}",
        kind.input.len(),
        hexdump(&kind.input, 1024)
    );
    if kind.smallest.len() < kind.input.len() {
        let _ = write!(
            s,
            "\n  smallest input ({} bytes):\n{}",
            kind.smallest.len(),
            hexdump(&kind.smallest, 1024)
        );
    }
    s
}

/// `xxd`-style dump of the first `max` bytes.
pub fn hexdump(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for (row, chunk) in bytes[..bytes.len().min(max)].chunks(16).enumerate() {
        let _ = write!(s, "  {:08x}  ", row * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
            if i == 7 {
                s.push(' ');
            }
        }
        s.push_str(" |");
        for &b in chunk {
            s.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        s.push_str("|\n");
    }
    if bytes.len() > max {
        let _ = writeln!(s, "  ... {} more bytes", bytes.len() - max);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics_on_bug(data: &[u8], f: &mut Features) {
        f.add("len", data.len().min(4) as u64);
        if data.windows(3).any(|w| w == b"BUG") {
            panic!("found the bug");
        }
    }

    fn panics_in_a_thread(data: &[u8], _: &mut Features) {
        std::thread::scope(|s| {
            s.spawn(|| {
                if data == b"x" {
                    panic!("in the reader");
                }
            });
        });
    }

    const TOY: Target = Target {
        name: "toy",
        about: "panics on BUG",
        exec: panics_on_bug,
        seeds: || vec![b"a BUx".to_vec(), b"hello".to_vec()],
        tokens: &["G"],
        json: false,
        max_len: 64,
    };

    /// The panic hook and the record of other threads' panics are process-wide: the tests that
    /// panic on purpose run one at a time, or one test's thread panic is collected by another.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn panics_are_captured_with_their_place() {
        let _serial = serial();
        let mut f = Features::default();
        assert!(run_guarded(panics_on_bug, b"fine", &mut f).is_ok());
        assert_eq!(f.as_slice().len(), 1);
        let p = run_guarded(panics_on_bug, b"a BUG", &mut f).unwrap_err();
        assert_eq!(p[0].message, "found the bug");
        assert!(p[0].location.contains("engine.rs"), "{}", p[0].location);
    }

    #[test]
    fn a_panic_in_a_thread_of_the_target_comes_first() {
        let _serial = serial();
        let mut f = Features::default();
        assert!(run_guarded(panics_in_a_thread, b"y", &mut f).is_ok());
        let p = run_guarded(panics_in_a_thread, b"x", &mut f).unwrap_err();
        assert_eq!(p[0].message, "in the reader", "{p:?}");
    }

    #[test]
    fn a_run_finds_the_bug_reproducibly_and_shrinks_it() {
        let _serial = serial();
        let opts = Options {
            runs: 20_000,
            seed: 42,
            crash_dir: None,
            verbose: false,
            minimize: true,
        };
        let a = fuzz(&TOY, &opts);
        let b = fuzz(&TOY, &opts);
        assert!(a.crashes > 0, "the toy bug was not found");
        assert_eq!(
            (a.crashes, a.corpus, a.features, a.kinds[0].exec),
            (b.crashes, b.corpus, b.features, b.kinds[0].exec),
            "same seed, same run"
        );
        assert_eq!(a.kinds.len(), 1);
        assert_eq!(a.kinds[0].smallest, b"BUG");
    }

    #[test]
    fn hexdump_shows_offsets_bytes_and_text() {
        let d = hexdump(b"ab\x00\xff", 16);
        assert_eq!(
            d,
            "  00000000  61 62 00 ff                                       |ab..|\n"
        );
    }
}
