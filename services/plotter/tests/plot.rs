//! The plotter as the worker calls it: a dataset spec, a filtered canonical CSV, a folder of PNGs.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sluice_plotter::{HEIGHT, WIDTH, plot, plot_with_buckets};
use sluice_proto::ErrorName;
use sluice_spec::config::{Config, Dataset};

/// A dataset spec with the given columns and plots (TOML fragments).
fn dataset(columns: &[(&str, &str)], plots: &str) -> Dataset {
    let mut toml = String::from("[[dataset]]\nname = \"stocks\"\n");
    for (name, ty) in columns {
        let _ = write!(
            toml,
            "[[dataset.columns]]\nname = \"{name}\"\ntype = \"{ty}\"\n"
        );
    }
    toml.push_str(plots);
    let config =
        Config::parse(Path::new("sluice.toml"), &toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    config.datasets.into_iter().next().unwrap()
}

fn stocks() -> Dataset {
    dataset(
        &[
            ("date", "date"),
            ("low", "float"),
            ("high", "float"),
            ("volume", "integer"),
        ],
        "[[dataset.plot]]\nx = \"date\"\ny = [\"low\", \"high\"]\ntitle = \"Low and High\"\n\
         x_label = \"Trading day\"\ny_label = \"Price (USD)\"\n\
         [[dataset.plot]]\nx = \"date\"\ny = [\"volume\"]\ntitle = \"Volume (shares)\"\n",
    )
}

/// A year of daily prices that wander, like the examples' stock file.
fn stocks_csv(days: i64) -> String {
    let mut csv = String::from("date,low,high,volume\n");
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    let mut price = 120.0f64;
    for d in 0..days {
        let date = start + chrono::Duration::days(d);
        price += ((d * 7919 % 113) as f64 - 56.0) / 40.0;
        let low = price - 1.5 - (d % 5) as f64 * 0.3;
        let high = price + 1.2 + (d % 3) as f64 * 0.4;
        let volume = 1_000_000 + (d * 104_729 % 500_000);
        let _ = writeln!(csv, "{date},{low:.2},{high:.2},{volume}");
    }
    csv
}

struct Run {
    _dir: tempfile::TempDir,
    out: PathBuf,
    names: Vec<String>,
}

fn run(ds: &Dataset, csv: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("filtered.csv");
    std::fs::write(&input, csv).unwrap();
    let out = dir.path().join("plots");
    let names = plot(ds, &input, &out).unwrap_or_else(|e| panic!("{e}"));
    Run {
        _dir: dir,
        out,
        names,
    }
}

struct Image {
    width: u32,
    height: u32,
    /// RGB, row by row.
    pixels: Vec<[u8; 3]>,
}

impl Image {
    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        self.pixels[(y * self.width + x) as usize]
    }
    fn distinct_colours(&self) -> usize {
        self.pixels.iter().collect::<HashSet<_>>().len()
    }
    /// How many pixels are within a small distance of `c`.
    fn count_near(&self, c: [u8; 3]) -> usize {
        self.pixels.iter().filter(|p| near(**p, c)).count()
    }
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12)
}

const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];

/// Checks the PNG signature and IHDR size from the raw bytes, then decodes it.
fn load_png(path: &Path) -> Image {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 600));
    assert_eq!((width, height), (WIDTH, HEIGHT));

    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    Image {
        width,
        height,
        pixels,
    }
}

#[test]
fn draws_one_png_per_plot_in_order() {
    let run = run(&stocks(), &stocks_csv(365));
    assert_eq!(run.names, ["1-low-and-high.png", "2-volume-shares.png"]);
    for name in &run.names {
        let img = load_png(&run.out.join(name));
        assert_eq!((img.width, img.height), (1200, 600));
        // White background, and far more than a handful of colours: text, grid, anti-aliased lines.
        assert_eq!(img.at(2, 2), [255, 255, 255]);
        assert!(
            img.distinct_colours() > 20,
            "{name}: {} colours",
            img.distinct_colours()
        );
    }
    // Two series in two distinct colours, each drawn as a long line (not just a legend swatch).
    let img = load_png(&run.out.join(&run.names[0]));
    assert!(
        img.count_near(BLUE) > 1500,
        "blue pixels: {}",
        img.count_near(BLUE)
    );
    assert!(
        img.count_near(ORANGE) > 1500,
        "orange pixels: {}",
        img.count_near(ORANGE)
    );
    let img = load_png(&run.out.join(&run.names[1]));
    assert!(img.count_near(BLUE) > 1500);
    assert!(
        img.count_near(ORANGE) < 50,
        "the volume chart has one series"
    );
}

#[test]
fn a_header_only_file_draws_an_empty_chart_with_a_caption() {
    let run = run(&stocks(), "date,low,high,volume\n");
    assert_eq!(run.names.len(), 2);
    let img = load_png(&run.out.join(&run.names[0]));
    // The title and caption are there (dark and grey text), no series line (only the swatches).
    assert!(img.distinct_colours() > 10);
    assert!(
        img.count_near(BLUE) < 200,
        "blue pixels: {}",
        img.count_near(BLUE)
    );
    // The caption sits in the middle of the plotting area: grey text around the centre.
    let centre_text = (250..350)
        .flat_map(|y| (400..800).map(move |x| (x, y)))
        .filter(|&(x, y)| near(img.at(x, y), [110, 110, 110]))
        .count();
    assert!(centre_text > 100, "caption pixels: {centre_text}");
}

#[test]
fn an_empty_file_draws_empty_charts() {
    let run = run(&stocks(), "");
    assert_eq!(run.names.len(), 2);
    for name in &run.names {
        assert!(load_png(&run.out.join(name)).distinct_colours() > 10);
    }
}

/// The row of pixels at which a horizontal line of `colour` runs across most of the chart.
fn horizontal_lines(img: &Image, colour: [u8; 3]) -> Vec<u32> {
    (0..img.height)
        .filter(|&y| {
            (0..img.width)
                .filter(|&x| near(img.at(x, y), colour))
                .count()
                > 600
        })
        .collect()
}

#[test]
fn all_equal_y_draws_a_flat_line_in_the_middle() {
    let ds = dataset(
        &[("t", "datetime"), ("v", "float")],
        "[[dataset.plot]]\nx = \"t\"\ny = [\"v\"]\n",
    );
    let mut csv = String::from("t,v\n");
    for m in 0..300 {
        let _ = writeln!(csv, "2024-03-05T{:02}:{:02}:00,42.5", 9 + m / 60, m % 60);
    }
    let run = run(&ds, &csv);
    assert_eq!(run.names, ["1-stocks-v-chart-1.png"]);
    let img = load_png(&run.out.join(&run.names[0]));
    let rows = horizontal_lines(&img, BLUE);
    assert!(!rows.is_empty() && rows.len() <= 3, "{rows:?}");
    // The plotting area spans roughly y = 90..530; a padded flat range puts the line mid-way.
    assert!((280..340).contains(&rows[0]), "{rows:?}");
}

#[test]
fn one_row_and_equal_x_do_not_panic() {
    let ds = stocks();
    let run1 = run(&ds, "date,low,high,volume\n2024-01-02,1.5,2.5,100\n");
    let img = load_png(&run1.out.join(&run1.names[0]));
    // A single point has no line, so it is drawn as a dot.
    assert!(
        img.count_near(BLUE) > 20,
        "blue pixels: {}",
        img.count_near(BLUE)
    );
    let run2 = run(
        &ds,
        "date,low,high,volume\n2024-01-02,1.5,2.5,100\n2024-01-02,1.0,3.5,200\n2024-01-02,1.2,2.0,50\n",
    );
    assert!(load_png(&run2.out.join(&run2.names[0])).count_near(ORANGE) > 20);
    let numeric = dataset(
        &[("x", "integer"), ("y", "integer")],
        "[[dataset.plot]]\nx = \"x\"\ny = [\"y\"]\n",
    );
    let run3 = run(&numeric, "x,y\n0,0\n0,0\n");
    load_png(&run3.out.join(&run3.names[0]));
}

#[test]
fn nulls_are_skipped() {
    let ds = stocks();
    let csv = "date,low,high,volume\n\
               2024-01-01,1,2,10\n\
               ,5,6,10\n\
               2024-01-02,,3,10\n\
               2024-01-03,2,,10\n\
               2024-01-04,1.5,2.5,\n";
    let run = run(&ds, csv);
    let img = load_png(&run.out.join(&run.names[0]));
    assert!(img.count_near(BLUE) > 100);
    assert!(img.count_near(ORANGE) > 100);

    // Every x null: a caption says so; every y null: likewise.
    let all_x_null = run_caption_check(&ds, "date,low,high,volume\n,1,2,3\n,4,5,6\n");
    let all_y_null = run_caption_check(&ds, "date,low,high,volume\n2024-01-01,,,\n2024-01-02,,,\n");
    assert!(
        all_x_null > 100 && all_y_null > 100,
        "{all_x_null} {all_y_null}"
    );
}

/// Grey caption pixels in the middle of the first chart.
fn run_caption_check(ds: &Dataset, csv: &str) -> usize {
    let run = run(ds, csv);
    let img = load_png(&run.out.join(&run.names[0]));
    (250..350)
        .flat_map(|y| (350..850).map(move |x| (x, y)))
        .filter(|&(x, y)| near(img.at(x, y), [110, 110, 110]))
        .count()
}

#[test]
fn unsorted_rows_draw_the_same_chart_as_sorted_rows() {
    let ds = dataset(
        &[("x", "float"), ("y", "float")],
        "[[dataset.plot]]\nx = \"x\"\ny = [\"y\"]\ntitle = \"Wave\"\n",
    );
    let rows: Vec<(f64, f64)> = (0..20_000)
        .map(|i| {
            (
                f64::from(i) * 0.5,
                (f64::from(i) / 300.0).sin() * 100.0 + f64::from(i) * 1e-4,
            )
        })
        .collect();
    let mut sorted = String::from("x,y\n");
    for (x, y) in &rows {
        let _ = writeln!(sorted, "{x},{y}");
    }
    // A fixed shuffle: stride through the rows by a step coprime with their count.
    let mut shuffled = String::from("x,y\n");
    for k in 0..rows.len() {
        let (x, y) = rows[(k * 7_919) % rows.len()];
        let _ = writeln!(shuffled, "{x},{y}");
    }
    let a = run(&ds, &sorted);
    let b = run(&ds, &shuffled);
    let (a, b) = (
        load_png(&a.out.join("1-wave.png")),
        load_png(&b.out.join("1-wave.png")),
    );
    assert!(a.count_near(BLUE) > 2000);
    assert!(
        a.pixels == b.pixels,
        "the shuffled file drew a different chart"
    );
}

#[test]
fn extreme_values_do_not_panic() {
    let ds = dataset(
        &[("x", "float"), ("y", "float")],
        "[[dataset.plot]]\nx = \"x\"\ny = [\"y\"]\n",
    );
    let run = run(&ds, "x,y\n-1.7e308,1.7e308\n1.7e308,-1.7e308\n0,0\n");
    load_png(&run.out.join(&run.names[0]));
}

#[test]
fn a_missing_column_or_a_bad_value_is_an_error_naming_it() {
    let ds = stocks();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("filtered.csv");

    std::fs::write(&input, "date,low,volume\n2024-01-01,1,2\n").unwrap();
    let e = plot(&ds, &input, dir.path()).unwrap_err();
    assert_eq!(e.error, ErrorName::Internal);
    assert!(
        e.cause.contains("filtered.csv") && e.cause.contains("\"high\""),
        "{}",
        e.cause
    );

    std::fs::write(
        &input,
        "date,low,high,volume\n2024-01-01,1,2,3\n2024-01-02,1,two,3\n",
    )
    .unwrap();
    let e = plot(&ds, &input, dir.path()).unwrap_err();
    assert!(
        e.cause.contains("line 3") && e.cause.contains("\"high\"") && e.cause.contains("two"),
        "{}",
        e.cause
    );

    let e = plot(&ds, &dir.path().join("missing.csv"), dir.path()).unwrap_err();
    assert!(e.cause.contains("missing.csv"), "{}", e.cause);
}

#[test]
fn a_dataset_without_plots_writes_nothing() {
    let ds = dataset(&[("x", "float")], "");
    let run = run(&ds, "x\n1\n");
    assert!(run.names.is_empty());
    assert!(!run.out.exists());
}

#[test]
fn downsampling_draws_the_same_pixels_as_every_point() {
    let ds = dataset(
        &[("x", "float"), ("y", "float")],
        "[[dataset.plot]]\nx = \"x\"\ny = [\"y\"]\ntitle = \"Noise\"\n",
    );
    // 30,000 points of a noisy wave: about 28 points per pixel column.
    let mut csv = String::from("x,y\n");
    let mut noise = 12345u64;
    for i in 0..30_000 {
        noise = noise
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let y = (f64::from(i) / 2000.0).sin() * 50.0
            + (noise >> 40) as f64 / (1u64 << 24) as f64 * 20.0;
        let _ = writeln!(csv, "{i},{y}");
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("filtered.csv");
    std::fs::write(&input, csv).unwrap();
    plot(&ds, &input, &dir.path().join("m4")).unwrap();
    // As many buckets as points: nothing is dropped.
    plot_with_buckets(&ds, &input, None, &dir.path().join("all"), 30_000).unwrap();
    let m4 = load_png(&dir.path().join("m4/1-noise.png"));
    let all = load_png(&dir.path().join("all/1-noise.png"));
    let differ = m4
        .pixels
        .iter()
        .zip(&all.pixels)
        .filter(|(a, b)| a != b)
        .count();
    let drawn = all.count_near(BLUE);
    assert!(drawn > 50_000, "{drawn}");
    // M4 keeps every pixel column's entry, exit, lowest and highest point; the only differences
    // are single pixels where a bucket straddles two columns.
    assert!(
        differ * 100 < drawn,
        "{differ} of {drawn} line pixels differ"
    );
}
