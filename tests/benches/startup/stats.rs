//! Per-cell statistics, and the one grid of (column, subject) cells everything loops over.

use crate::runner::Sample;
use crate::subjects::SUBJECTS;

/// One value per (column, subject) cell.
pub(crate) struct Grid<T> {
    columns: usize,
    cells: Vec<T>,
}

impl<T> Grid<T> {
    pub(crate) fn new(columns: usize, mut make: impl FnMut(usize, usize) -> T) -> Grid<T> {
        let cells = cells(columns).map(|(c, s)| make(c, s)).collect();
        Grid { columns, cells }
    }

    pub(crate) fn get(&self, column: usize, subject: usize) -> &T {
        &self.cells[column * SUBJECTS.len() + subject]
    }

    pub(crate) fn get_mut(&mut self, column: usize, subject: usize) -> &mut T {
        &mut self.cells[column * SUBJECTS.len() + subject]
    }

    pub(crate) fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> Grid<U> {
        Grid {
            columns: self.columns,
            cells: self.cells.iter().map(&mut f).collect(),
        }
    }
}

/// Every (column, subject) pair, column by column.
pub(crate) fn cells(columns: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..columns).flat_map(|c| (0..SUBJECTS.len()).map(move |s| (c, s)))
}

/// Median and 95th percentile (nearest rank).
#[derive(Clone, Copy)]
pub(crate) struct Summary {
    pub(crate) median: f64,
    pub(crate) p95: f64,
}

impl Summary {
    fn of(values: impl Iterator<Item = f64>) -> Summary {
        let mut sorted: Vec<f64> = values.collect();
        sorted.sort_by(f64::total_cmp);
        Summary {
            median: percentile(&sorted, 0.5),
            p95: percentile(&sorted, 0.95),
        }
    }
}

/// What one cell's runs come to.
#[derive(Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) ready: Summary,
    pub(crate) exited: Summary,
    pub(crate) cpu: Summary,
    pub(crate) faults: Summary,
    pub(crate) runs: usize,
}

impl Stats {
    pub(crate) fn of(runs: &[Sample]) -> Stats {
        Stats {
            ready: Summary::of(runs.iter().map(|s| s.ready)),
            exited: Summary::of(runs.iter().map(|s| s.exited)),
            cpu: Summary::of(runs.iter().map(|s| s.cpu)),
            faults: Summary::of(runs.iter().map(|s| s.faults)),
            runs: runs.len(),
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
