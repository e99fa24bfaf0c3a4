//! M4 downsampling: a line chart of millions of points drawn from a few thousand.
//!
//! The x range is cut into buckets (about two per horizontal pixel). For each bucket the chart only
//! needs four points to draw the same pixels as the full data: the leftmost point (where the line
//! enters the bucket), the rightmost point (where it leaves), and the lowest and highest points (how
//! far the line swings inside it). Keeping those four per bucket is the M4 aggregation of Jugel et
//! al. (VLDB 2014); memory is bounded by the bucket count, not by the row count.
//!
//! "Leftmost" and "rightmost" are by x, not by arrival, so a file whose rows are not sorted by x
//! still draws a correct line: buckets are emitted left to right and the points inside a bucket
//! are sorted by x.

/// One point of a series: (x, y).
pub type Point = (f64, f64);

/// The four points kept for one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Smallest x (the earliest seen on ties).
    pub first: Point,
    /// Smallest y (the earliest seen on ties).
    pub min: Point,
    /// Largest y (the earliest seen on ties).
    pub max: Point,
    /// Largest x (the latest seen on ties, so sorted input keeps its natural last point).
    pub last: Point,
}

impl Bucket {
    fn new(p: Point) -> Self {
        Bucket {
            first: p,
            min: p,
            max: p,
            last: p,
        }
    }

    fn add(&mut self, p: Point) {
        if p.0 < self.first.0 {
            self.first = p;
        }
        if p.0 >= self.last.0 {
            self.last = p;
        }
        if p.1 < self.min.1 {
            self.min = p;
        }
        if p.1 > self.max.1 {
            self.max = p;
        }
    }
}

/// The M4 aggregate of one series over a fixed x range.
#[derive(Debug, Clone)]
pub struct M4 {
    x_min: f64,
    /// Half the width of the x range: halves keep `x_max - x_min` finite even for ranges that
    /// span most of the f64 line.
    half_width: f64,
    buckets: Vec<Option<Bucket>>,
    points_seen: u64,
}

impl M4 {
    /// An empty aggregate of `buckets` buckets (at least one) over `[x_min, x_max]`.
    pub fn new(x_min: f64, x_max: f64, buckets: usize) -> Self {
        M4 {
            x_min,
            half_width: x_max / 2.0 - x_min / 2.0,
            buckets: vec![None; buckets.max(1)],
            points_seen: 0,
        }
    }

    /// The bucket of an x value; values outside the range go to the nearest end bucket.
    fn bucket_of(&self, x: f64) -> usize {
        let last = self.buckets.len() - 1;
        let usable = self.half_width.is_finite() && self.half_width > 0.0;
        if !usable {
            return 0;
        }
        let t = (x / 2.0 - self.x_min / 2.0) / self.half_width;
        // `as usize` saturates (negative and NaN become 0), so no input can index out of range.
        ((t * self.buckets.len() as f64) as usize).min(last)
    }

    /// Adds one point.
    pub fn add(&mut self, x: f64, y: f64) {
        let i = self.bucket_of(x);
        match &mut self.buckets[i] {
            Some(b) => b.add((x, y)),
            slot @ None => *slot = Some(Bucket::new((x, y))),
        }
        self.points_seen += 1;
    }

    /// How many points were added (before downsampling).
    pub fn points_seen(&self) -> u64 {
        self.points_seen
    }

    /// The kept buckets, left to right (empty buckets are skipped).
    pub fn buckets(&self) -> impl Iterator<Item = &Bucket> {
        self.buckets.iter().flatten()
    }

    /// The points to draw, sorted by x: at most four per bucket, without repeats.
    pub fn points(&self) -> Vec<Point> {
        let mut out: Vec<Point> = Vec::new();
        for b in self.buckets() {
            let mut four = [b.first, b.min, b.max, b.last];
            // Stable: on equal x the line goes first -> min -> max -> last, as it arrived.
            four.sort_by(|a, b| a.0.total_cmp(&b.0));
            for p in four {
                if out.last() != Some(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The smallest and largest y added, or `None` when no point was added. Exact, since every
    /// bucket keeps its own minimum and maximum.
    pub fn y_range(&self) -> Option<(f64, f64)> {
        self.buckets().fold(None, |acc, b| match acc {
            None => Some((b.min.1, b.max.1)),
            Some((lo, hi)) => Some((lo.min(b.min.1), hi.max(b.max.1))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_first_min_max_last_per_bucket() {
        // Two buckets over [0, 10): [0, 5) and [5, 10].
        let mut m = M4::new(0.0, 10.0, 2);
        for (x, y) in [
            (0.0, 5.0),
            (1.0, 9.0),
            (2.0, -3.0),
            (3.0, 4.0),
            (4.0, 6.0),
            (5.0, 1.0),
            (9.0, 2.0),
        ] {
            m.add(x, y);
        }
        let b: Vec<&Bucket> = m.buckets().collect();
        assert_eq!(b.len(), 2);
        assert_eq!(
            *b[0],
            Bucket {
                first: (0.0, 5.0),
                min: (2.0, -3.0),
                max: (1.0, 9.0),
                last: (4.0, 6.0)
            }
        );
        assert_eq!(
            *b[1],
            Bucket {
                first: (5.0, 1.0),
                min: (5.0, 1.0),
                max: (9.0, 2.0),
                last: (9.0, 2.0)
            }
        );
        // The points in between (3, 4) are dropped; the rest come out sorted by x.
        assert_eq!(
            m.points(),
            vec![
                (0.0, 5.0),
                (1.0, 9.0),
                (2.0, -3.0),
                (4.0, 6.0),
                (5.0, 1.0),
                (9.0, 2.0)
            ]
        );
        assert_eq!(m.y_range(), Some((-3.0, 9.0)));
        assert_eq!(m.points_seen(), 7);
    }

    #[test]
    fn unsorted_input_comes_out_sorted_by_x() {
        let mut m = M4::new(0.0, 100.0, 4);
        let xs = [73.0, 5.0, 99.0, 41.0, 12.0, 60.0, 0.0, 100.0, 27.0, 88.0];
        for x in xs {
            m.add(x, x * 2.0);
        }
        let pts = m.points();
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0), "{pts:?}");
        assert_eq!(pts.first(), Some(&(0.0, 0.0)));
        assert_eq!(pts.last(), Some(&(100.0, 200.0)));
    }

    #[test]
    fn memory_is_bounded_by_buckets_not_points() {
        let mut m = M4::new(0.0, 1_000_000.0, 100);
        for i in 0..1_000_000 {
            let x = f64::from(i);
            m.add(x, (x / 1000.0).sin());
        }
        assert!(m.points().len() <= 400);
        assert_eq!(m.points_seen(), 1_000_000);
    }

    #[test]
    fn degenerate_ranges_do_not_panic() {
        // All x equal: everything lands in one bucket.
        let mut m = M4::new(3.0, 3.0, 10);
        m.add(3.0, 1.0);
        m.add(3.0, 2.0);
        assert_eq!(m.buckets().count(), 1);
        // A range as wide as f64 allows, and points outside the range.
        let mut m = M4::new(-f64::MAX, f64::MAX, 10);
        m.add(f64::MAX, 1.0);
        m.add(-f64::MAX, 2.0);
        m.add(0.0, 3.0);
        assert_eq!(m.buckets().count(), 3);
        let mut m = M4::new(0.0, 1.0, 10);
        m.add(-5.0, 1.0);
        m.add(5.0, 1.0);
        assert_eq!(m.buckets().count(), 2);
        assert_eq!(M4::new(0.0, 1.0, 10).y_range(), None);
    }
}
