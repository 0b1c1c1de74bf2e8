//! Medians and ranges of repeated measurements, and how the table shows them.

/// Repeated measurements of one quantity.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (the mean of the middle two for an even count); NaN when empty.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::max)
    }

    /// "12.3 ms (11.9–13.0)" with `unit` and the given decimals.
    pub fn show(&self, unit: &str, decimals: usize) -> String {
        if self.0.is_empty() {
            return "–".into();
        }
        if self.0.len() == 1 {
            return format!("{:.decimals$} {unit}", self.median());
        }
        format!(
            "{:.decimals$} {unit} ({:.decimals$}–{:.decimals$})",
            self.median(),
            self.min(),
            self.max()
        )
    }
}

/// ours / reference of the medians, "1.04×".
pub fn ratio(ours: &Samples, reference: &Samples) -> String {
    let r = ours.median() / reference.median();
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Samples {
        let mut s = Samples::default();
        values.iter().for_each(|v| s.push(*v));
        s
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(of(&[3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(of(&[4.0, 1.0, 3.0, 2.0]).median(), 2.5);
        assert!(of(&[]).median().is_nan());
    }

    #[test]
    fn shows_median_and_range_and_ratio() {
        let a = of(&[10.0, 12.0, 11.0]);
        assert_eq!(a.show("ms", 1), "11.0 ms (10.0–12.0)");
        assert_eq!(ratio(&a, &of(&[10.0])), "1.10×");
        assert_eq!(ratio(&a, &of(&[])), "–");
    }
}
